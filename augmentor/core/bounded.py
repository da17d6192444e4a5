"""Every text file the tool reads goes through here, with its size checked before a byte is read.

A run's ``config.json`` or ``state.json``, a recipe, a directions folder's info, ``manifest.jsonl``, stdin:
all are user input, and a sparse 20 GB file (no blocks on disk) or a stream of zeros with no newline would
otherwise be read whole. Whole files are checked against their cap from ``stat`` (the apparent size, so a
sparse file is refused at once); JSON Lines and stdin are read line by line with each line's length capped.
The caps sit in ``core.limits`` with the others and each refusal names the variable that lifts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from augmentor.core.errors import UserError
from augmentor.core.limits import JSON_BYTES, JSONL_BYTES, LINE_BYTES, STDIN_BYTES, Cap, human_bytes


class InputTooLarge(UserError):
    """A file or stream over its cap: refused whatever the reader would otherwise forgive (a manifest that does
    not parse is ignored; one of 20 GB is not)."""


def _check_size(path: Path, cap: Cap, what: str) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({(exc.strerror or type(exc).__name__).lower()})") from None
    if size > cap.value():
        raise InputTooLarge(
            f"{path}: {human_bytes(size)} is too large for {what} (at most {human_bytes(cap.value())}); "
            f"give the file the tool wrote, or {cap.lift()}"
        )
    return size


def read_text(path: Path, what: str = "a text file", cap: Cap = JSON_BYTES) -> str:
    """The whole of a small text file, after checking its size."""
    _check_size(path, cap, what)
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap.value() + 1)  # the file may have grown since stat
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({(exc.strerror or type(exc).__name__).lower()})") from None
    if len(data) > cap.value():
        raise InputTooLarge(f"{path}: more than {human_bytes(cap.value())} for {what}; or {cap.lift()}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_json(text: str, where: str, what: str) -> Any:
    """``json.loads`` with every way it can fail as one line naming ``where``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: {what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise UserError(f"{where}: {what} holds a number too long to read") from None
    except RecursionError:
        raise UserError(f"{where}: {what} is nested too deeply") from None


def read_json(path: Path, what: str = "a JSON file", cap: Cap = JSON_BYTES) -> Any:
    """A small JSON file, size-checked, parsed; any failure one line naming ``path``."""
    return parse_json(read_text(path, what, cap), str(path), what)


def iter_lines(handle: IO[bytes], where: str, what: str, total: Cap, line_cap: Cap = LINE_BYTES) -> Iterator[str]:
    """The lines of a binary stream as text, each at most ``line_cap`` bytes and all together at most
    ``total``: a stream of zeros without a newline is refused after one line's worth, not read whole."""
    read = 0
    number = 0
    while True:
        line = handle.readline(line_cap.value() + 1)
        if not line:
            return
        number += 1
        read += len(line)
        if len(line) > line_cap.value() and not line.endswith(b"\n"):
            raise InputTooLarge(
                f"{where}: line {number} of {what} is longer than {human_bytes(line_cap.value())}; "
                f"give the file the tool wrote, or {line_cap.lift()}"
            )
        if read > total.value():
            raise InputTooLarge(f"{where}: {what} is longer than {human_bytes(total.value())}; or {total.lift()}")
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{where}: line {number} of {what} is not UTF-8 text ({exc.reason})") from None


def read_jsonl(path: Path, what: str = "a JSON Lines file") -> list[Any]:
    """Every record of a JSON Lines file (blank lines skipped), size- and line-checked."""
    _check_size(path, JSONL_BYTES, what)
    records = []
    with open(path, "rb") as handle:
        for number, line in enumerate(iter_lines(handle, str(path), what, JSONL_BYTES), start=1):
            if line.strip():
                records.append(parse_json(line, f"{path}: line {number}", what))
    return records


def read_stdin_lines(what: str = "the paths on stdin") -> list[str]:
    """The non-blank lines of stdin, stripped, with stdin's total and line length capped."""
    import sys

    stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
    if stream is None:  # a text stream (tests, embedding): read it through the same caps
        import io

        stream = io.BytesIO(sys.stdin.read(STDIN_BYTES.value() + 1).encode())
    return [line.strip() for line in iter_lines(stream, "stdin", what, STDIN_BYTES) if line.strip()]
