"""Output folders that appear whole or not at all.

Everything is written into a hidden sibling staging folder, which replaces ``--out`` with one rename
when the work is complete. A run killed midway leaves only the staging folder, which the next run
removes; the final name never holds a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from augmentor.core.errors import UserError

_STAGING_TAG = ".partial-"


def check_output(
    out: Path, overwrite: bool, source: str | Path | None = None, reads: Iterable[str | Path | None] = ()
) -> None:
    """Refuse an ``--out`` that exists and is not an empty folder, unless ``overwrite``; never the folder
    the command runs in or one above it (replacing it would pull the ground from under the run), never
    what the command reads (the dataset ``source``, a run, a directions folder: ``reads``), a folder inside
    one or one holding one, and never a folder a live training holds (``--overwrite`` included)."""
    here = Path.cwd().resolve()
    target = follow_link(out).resolve()
    if target == here or target in here.parents:
        raise UserError(f"{out}: is the current folder or one above it; give --out a new folder's name")
    if source is not None and str(source) != "-" and Path(source).exists():
        read = Path(source).resolve()
        # Inside it, the output becomes a class folder of the next read; holding it, --overwrite deletes it.
        if target == read or read in target.parents or target in read.parents:
            raise UserError(f"{out}: overlaps the dataset it reads ({source}); give --out a folder outside {source}")
    refuse_overlap(out, reads)
    refuse_live_run(out)
    check_writable(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose another --out")
    if any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: the output folder exists and is not empty; pass --overwrite to replace it")


def follow_link(out: Path) -> Path:
    """Where a symlinked ``--out`` points (the output replaces the link's target, the link stays valid);
    ``out`` itself otherwise."""
    return Path(os.path.realpath(out)) if out.is_symlink() else out


def refuse_overlap(out: Path, reads: Iterable[str | Path | None]) -> None:
    """Refuse an output (folder or file) that is, sits inside or holds anything the command reads: writing
    it would destroy or change the input while it is in use (``sample RUN --out RUN``, ``--grid
    RUN/model.safetensors``)."""
    target = Path(os.path.realpath(out))
    for read in reads:
        if read is None or str(read) == "-" or not Path(read).exists():
            continue
        source = Path(os.path.realpath(read))
        if target == source or source in target.parents or target in source.parents:
            raise UserError(f"{out}: overlaps {read}, which this command uses; give an output outside it")


# Set by ``core.runs.claim_run_folder``: the run folders this process holds (its own claim is not a live
# other run).
CLAIMED_BY_THIS_PROCESS: set[Path] = set()


def held_by_live_run(folder: Path) -> bool:
    """True when another process holds ``folder`` as a training run folder (its flock, ``claim_run_folder``).

    A lock is taken for a run's only when it stays taken for a few tries: ``_folder_lock`` holds a parent
    folder for milliseconds while a staging folder is claimed, which is not a run."""
    if not folder.is_dir() or Path(os.path.realpath(folder)) in CLAIMED_BY_THIS_PROCESS:
        return False
    try:
        import fcntl

        handle = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        return False
    try:
        for _ in range(5):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return False  # free (released when the descriptor closes)
            except BlockingIOError:
                time.sleep(0.02)
            except OSError:
                return False
        return True
    finally:
        os.close(handle)


def refuse_live_run(out: Path) -> None:
    """Refuse an output that is or sits inside a run folder a live training is writing (``--overwrite``
    would pull its checkpoints from under it). Under torchrun only rank 0 looks: the run folder it claims
    for the job would read as another run's to the other ranks."""
    if os.environ.get("RANK", "0") != "0":
        return
    target = Path(os.path.realpath(out))
    for folder in (target, *target.parents):
        if held_by_live_run(folder):
            raise UserError(
                f"{out}: {'is' if folder == target else 'is inside'} the run folder {folder}, which a training "
                "process is writing now; wait for it to finish or give another output"
            )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(out: Path) -> None:
    """Delete staging folders that killed runs left beside ``out``."""
    if not out.parent.is_dir():
        return
    for entry, pid in _staging_folders(out):
        if pid is None or not _pid_alive(pid) or pid == os.getpid():
            _remove(entry)


def _remove(entry: Path) -> None:
    """Delete a staging entry whatever it is: a folder, or a file or a link left by an interrupted publish
    (``shutil.rmtree`` refuses a link, which would stay and block its ``--out`` for good)."""
    if entry.is_symlink() or entry.is_file():
        entry.unlink(missing_ok=True)
    else:
        shutil.rmtree(entry, ignore_errors=True)


def _staging_folders(out: Path) -> list[tuple[Path, int | None]]:
    """Staging folders beside ``out`` and the pid each is named by (None: not a pid)."""
    prefix = f".{out.name}{_STAGING_TAG}"
    found = []
    for entry in out.parent.iterdir():
        if entry.name.startswith(prefix):
            pid_text = entry.name[len(prefix) :].split("-")[0]
            found.append((entry, int(pid_text) if pid_text.isdigit() else None))
    return found


def _live_writer(out: Path) -> int | None:
    """The pid of another live process whose staging folder for ``out`` exists: a stale entry (a dead pid,
    or a previous output set aside by ``publish``) is never taken for a live writer."""
    for entry, pid in _staging_folders(out):
        if pid is not None and pid != os.getpid() and not entry.name.endswith("-old") and _pid_alive(pid):
            return pid
    return None


@contextlib.contextmanager
def staged_output(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging folder; on success it becomes ``out`` (replacing it with ``overwrite``)."""
    staging = open_staging(out, overwrite)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, out, overwrite)


def open_staging(out: Path, overwrite: bool) -> Path:
    """A new empty staging folder beside ``out``, named by this process (``staged_output``'s first half)."""
    check_output(out, overwrite)
    out = follow_link(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out.parent):  # look and claim as one step: two runs started together cannot both pass
        remove_stale_staging(out)
        writer = _live_writer(out)
        if writer is not None:  # refused now, not after this run's work is done and its rename fails
            raise UserError(
                f"{out}: another augmentor process (pid {writer}) is writing it now; wait for it to finish or "
                "give another --out"
            )
        staging = out.parent / f".{out.name}{_STAGING_TAG}{os.getpid()}"
        staging.mkdir()
    return staging


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on ``folder`` for a few milliseconds (released by the kernel if the process dies);
    where flock is missing or refused (not POSIX, some network mounts), no lock."""
    try:
        import fcntl

        handle = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        # Held for milliseconds by others; waited for up to 10 s, never forever (a lock this process holds
        # through another descriptor would otherwise block it for good).
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        yield
    finally:
        os.close(handle)  # closing the last descriptor releases the lock


def publish(staging: Path, out: Path, overwrite: bool) -> None:
    """Rename a complete staging folder to ``out`` (``staged_output``'s last step), replacing what was there
    only with ``overwrite``: a run that wrote ``out`` meanwhile keeps its output and this run says so."""
    out = follow_link(out)
    if not overwrite:
        try:
            os.rename(staging, out)  # atomic; fails when another run has filled ``out`` since the check
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            raise UserError(
                f"{out}: another run wrote it while this one was working; nothing was replaced. "
                "Rerun with another --out, or with --overwrite to replace it"
            ) from None
        return
    old = out.parent / f".{out.name}{_STAGING_TAG}{os.getpid()}-old" if out.exists() else None
    try:
        if old is not None:
            os.replace(out, old)
        os.replace(staging, out)
    except OSError as exc:  # another program filled ``out`` between the two renames
        shutil.rmtree(staging, ignore_errors=True)
        kept = ""
        if old is not None and old.exists():
            try:  # the previous output goes back (named by this pid, it would be cleaned as stale later)
                os.replace(old, out)
            except OSError:
                kept = f"; the previous output is in {old}"
        raise UserError(
            f"{out}: could not be replaced ({(exc.strerror or type(exc).__name__).lower()}): something else wrote "
            f"it meanwhile; rerun with another --out{kept}"
        ) from None
    if old is not None:
        _remove(old)


def check_output_file(path: Path, overwrite: bool, reads: Iterable[str | Path | None] = ()) -> None:
    """Refuse to replace an existing file unless ``overwrite``, a place that cannot take it, a file that is
    or sits inside what the command reads (``reads``), and a file inside a live training's run folder."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name")
    refuse_overlap(path, reads)
    refuse_live_run(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path}: exists; pass --overwrite to replace it")
    check_writable(path)


def check_writable(path: Path) -> None:
    """Refuse an output whose nearest existing folder cannot take new entries (a read-only mount, /proc, a
    file where a folder should be), before any work rather than when the result is written. The probe is
    the real thing: a folder made and removed there (permission bits alone say yes to root on /proc)."""
    folder = path.parent
    while not folder.exists():  # missing folders are made on writing; the nearest existing one must take them
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{path}: {folder} is a file, not a folder; choose another place")
    try:
        probe = tempfile.mkdtemp(prefix=".augmentor-probe-", dir=folder)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise UserError(f"{path}: cannot write in {folder} ({reason}); choose a writable place") from None
    os.rmdir(probe)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename it into place."""
    write_lines_atomic(path, [data])


def write_lines_atomic(path: Path, parts: Iterable[bytes | str]) -> None:
    """``write_file_atomic`` of ``parts`` joined, written as they come: a manifest of a million lines is never
    one string in memory. Text is written as UTF-8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            for part in parts:
                handle.write(part.encode() if isinstance(part, str) else part)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
