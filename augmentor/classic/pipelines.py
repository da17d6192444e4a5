"""Pipeline files in albumentations' own ``A.save`` format: safe load, validation, description.

A file is parsed with ``yaml.safe_load`` / ``json`` and every transform name is checked against
albumentations' registry before anything is constructed, so a hostile file executes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augmentor.classic.bounds import check_arguments
from augmentor.core.errors import UserError
from augmentor.core.limits import PIPELINE_BYTES, PIPELINE_DEPTH, PIPELINE_TRANSFORMS

# Transforms that mirror the image: turned off for classes where a mirror changes the meaning.
FLIP_TRANSFORMS = frozenset({"HorizontalFlip", "VerticalFlip", "Transpose", "D4", "SquareSymmetry"})


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline: its id for the manifest and its albumentations dict (picklable)."""

    name: str
    spec: dict[str, Any]  # the ``transform`` part of an A.save document
    source: str | None = field(default=None, compare=False)  # the file it was read from; None for presets

    def build(self):
        """A fresh albumentations object."""
        from augmentor.classic.albu import A

        return A.from_dict({"transform": self.spec})

    def without_flips(self) -> Pipeline:
        """The same pipeline with every mirroring transform removed."""
        return Pipeline(f"{self.name}-noflip", _drop_flips(self.spec))

    def dump(self, data_format: str = "yaml") -> str:
        """The pipeline as albumentations' own ``A.save`` writes it."""
        from augmentor.classic.albu import A

        buffer = io.StringIO()
        A.save(self.build(), buffer, data_format=data_format)
        return buffer.getvalue()


def seed_compose(compose: Any, seed: int) -> None:
    """Make ``compose``'s next call reproducible from ``seed``, every transform drawing from one stream.

    Not ``compose.set_random_seed(seed)``: albumentations 2.0.8 gives each child transform its own
    generator seeded with the same ``seed``, so every child's first draw is the same number and
    "apply with probability p" decisions (and parameters) are perfectly correlated across transforms.
    """
    import numpy as np

    compose.set_random_state(np.random.default_rng(seed), random.Random(seed))


def _drop_flips(spec: dict[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    if "transforms" in spec:
        spec["transforms"] = [_drop_flips(t) for t in spec["transforms"] if _short_name(t) not in FLIP_TRANSFORMS]
    return spec


def _short_name(spec: dict[str, Any]) -> str:
    return str(spec.get("__class_fullname__", "")).rsplit(".", 1)[-1]


def load_pipeline(spec: str, *, probe: bool = True, image_shape: tuple[int, int, int] | None = None) -> Pipeline:
    """A preset name or a YAML/JSON file written by ``A.save`` (or by ``augmentor pipeline show``).

    A file's arguments are checked against the caps (``augmentor.classic.bounds``), then, with ``probe``, the
    pipeline is tried once in a child process under a time and a memory limit (``probe_pipeline``), on a
    64×64×3 image and, given ``image_shape`` (height, width, channels), on one of the data's own size. A
    caller that learns the data's size only later passes ``probe=False`` and calls ``probe_pipeline`` then.
    """
    from augmentor.classic.presets import PRESET_NAMES, build_preset

    if spec in PRESET_NAMES:
        from augmentor.classic.albu import A

        return Pipeline(spec, A.to_dict(build_preset(spec))["transform"])
    path = Path(spec)
    if not path.is_file():
        raise UserError(
            f"{spec}: not a preset ({', '.join(PRESET_NAMES)}) and no such pipeline file; "
            "write one with `augmentor pipeline show medium > my.yaml`"
        )
    document = _parse(path)
    _validate(document, path)
    pipeline = Pipeline(f"{path.name}@{_digest(document['transform'])}", document["transform"], source=spec)
    try:
        pipeline.build()
    except Exception as exc:  # noqa: BLE001 - albumentations validates with pydantic: say which and why
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: invalid transform arguments: {first_line}") from None
    if probe:
        probe_pipeline(pipeline, image_shape)
    return pipeline


def probe_pipeline(pipeline: Pipeline, image_shape: tuple[int, int, int] | None = None) -> None:
    """Try a pipeline read from a file once in a child process, refusing it if that runs out of time or memory
    (``augmentor.classic.probe``); presets pass untried. Once per pipeline and image size per process."""
    from augmentor.classic.probe import probe_pipeline as probe

    probe(pipeline, image_shape)


def _digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


# A pipeline level nests as {transform: {transforms: [ {...} ]}}: a few flow brackets per level, plus an
# argument's own list; A.save writes YAML in block style, so real files use far fewer.
_FLOW_LEVELS_PER_DEPTH = 4
_FLOW_LEVELS_MIN = 64
_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _refuse_deep_brackets(text: str, path: Path) -> None:
    """PyYAML's scanner is quadratic in flow nesting (100 KB of ``[`` takes seconds): bound the nesting from the
    brackets alone, before any parser sees the text. Brackets inside quoted strings count too, so this
    over-estimates, which only matters far above what a real pipeline holds."""
    limit = max(_FLOW_LEVELS_MIN, _FLOW_LEVELS_PER_DEPTH * PIPELINE_DEPTH.value())
    depth = 0
    for bracket in re.sub(r"[^\[\]{}]+", "", text):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        if depth > limit:
            raise UserError(
                f"{path}: nested too deeply to be a pipeline (brackets more than {limit} deep); "
                f"give the file A.save wrote, or "
                f"{PIPELINE_DEPTH.lift()}"
            )


def _yaml_load(text: str) -> Any:
    """``yaml.safe_load`` parsed once (with libyaml where installed), refusing aliases on the node graph:
    A.save never writes them, and a few hundred bytes of nested aliases expand to gigabytes ("billion laughs")."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        seen: set[int] = set()
        stack = [root]
        while stack:  # an alias is the composer handing out its anchor's node again
            node = stack.pop()
            if id(node) in seen:
                raise yaml.composer.ComposerError(
                    None, None, "YAML aliases (*name) are refused in pipeline files", node.start_mark
                )
            seen.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
            elif isinstance(node, yaml.MappingNode):
                stack.extend(item for pair in node.value for item in pair)
        return loader.construct_document(root)  # plain data only: !!python/* tags are refused here
    finally:
        loader.dispose()


def _refuse_non_json(document: Any, path: Path) -> None:
    """Only what JSON can hold: str keys; str, number, bool, null, list and mapping values. YAML also gives
    dates, bytes, sets and non-string keys, which A.save never writes and the pipeline id cannot hash."""
    stack: list[tuple[Any, str]] = [(document, "the top level")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise UserError(
                        f"{path}: key {key!r} at {where} is not a string ({type(key).__name__}); "
                        "give the file A.save wrote"
                    )
                name = key if key.isprintable() else repr(key)
                stack.append((value, name if where == "the top level" else f"{where}.{name}"))
        elif isinstance(node, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))
        elif not isinstance(node, _PLAIN_SCALARS):
            raise UserError(
                f"{path}: {where} holds {type(node).__name__} data, which a pipeline file cannot; "
                "give the file A.save wrote"
            )


def _one_line(error: Exception) -> str:
    """A parser's complaint on one line: YAML's own message quotes the offending lines below it."""
    problem, mark = getattr(error, "problem", None), getattr(error, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())


def _parse(path: Path) -> dict[str, Any]:
    import yaml

    if path.stat().st_size > PIPELINE_BYTES.value():
        raise UserError(
            f"{path}: {path.stat().st_size:,} bytes is too large for a pipeline file "
            f"(at most {PIPELINE_BYTES.value():,}); give the file A.save wrote, or {PIPELINE_BYTES.lift()}"
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    _refuse_deep_brackets(text, path)
    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        document = json.loads(text) if kind == "JSON" else _yaml_load(text)
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a pipeline; give the file A.save wrote") from None
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(exc, "problem", "") or str(exc)
        if "tag" not in tag:  # an unhashable key, a malformed !!set …: not an object, just not valid
            raise UserError(f"{path}: not valid {kind} ({_one_line(exc)}); give the file A.save wrote") from None
        raise UserError(
            f"{path}: refused: the file holds a YAML tag that would create Python objects ({tag.strip()}); "
            "pipeline files may only hold plain data as written by A.save"
        ) from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: JSONDecodeError, a 5000-digit integer, a bad date
        problem = _one_line(exc).split("; use sys.set_int_max_str_digits")[0]  # not the user's fix to make
        raise UserError(f"{path}: not valid {kind} ({problem}); give the file A.save wrote") from None
    _refuse_non_json(document, path)
    if not isinstance(document, dict) or not isinstance(document.get("transform"), dict):
        raise UserError(f"{path}: no top-level 'transform' mapping; expected the format albumentations' A.save writes")
    return document


def _validate(document: dict[str, Any], path: Path) -> None:
    from albumentations.core.serialization import NON_SERIALIZABLE_REGISTRY, SERIALIZABLE_REGISTRY

    from augmentor.classic.albu import A  # noqa: F401 - fills albumentations' registry

    count = 0

    def visit(node: Any, where: str, depth: int = 0) -> None:
        nonlocal count
        count += 1
        if depth > PIPELINE_DEPTH.value():
            raise UserError(
                f"{path}: more than {PIPELINE_DEPTH.value()} levels at {where}; flatten the pipeline, or "
                f"{PIPELINE_DEPTH.lift()}"
            )
        if count > PIPELINE_TRANSFORMS.value():
            raise UserError(
                f"{path}: more than {PIPELINE_TRANSFORMS.value()} transforms at {where}; shorten the pipeline, or "
                f"{PIPELINE_TRANSFORMS.lift()}"
            )
        if not isinstance(node, dict) or "__class_fullname__" not in node:
            raise UserError(f"{path}: {where} is not a transform (no __class_fullname__)")
        name = _short_name(node)
        if name in NON_SERIALIZABLE_REGISTRY:
            raise UserError(f"{path}: {where} is {name}, which runs arbitrary code and is refused")
        if name not in SERIALIZABLE_REGISTRY:
            close = difflib.get_close_matches(name, list(SERIALIZABLE_REGISTRY), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"{path}: unknown transform {name!r} at {where}{hint}")
        check_arguments(node, name, where, path)  # Resize(100000, 100000) is 16 bytes of YAML and 10 GB per image
        children = node.get("transforms")
        if children is not None:
            if not isinstance(children, list):
                raise UserError(f"{path}: 'transforms' of {where} must be a list")
            for i, child in enumerate(children):
                visit(child, f"{where}.transforms[{i}]", depth + 1)

    visit(document["transform"], "transform")


def describe(pipeline: Pipeline) -> list[dict[str, Any]]:
    """One row per transform: depth, name, probability and its non-default-looking arguments."""
    rows: list[dict[str, Any]] = []

    def visit(node: dict[str, Any], depth: int) -> None:
        name = _short_name(node)
        args = {
            k: v
            for k, v in node.items()
            if k not in ("__class_fullname__", "p", "transforms") and v not in (None, {}, [])
        }
        rows.append(
            {
                "depth": depth,
                "transform": name,
                "p": node.get("p"),
                "args": args,
                "flip": name in FLIP_TRANSFORMS,
            }
        )
        for child in node.get("transforms", []):
            visit(child, depth + 1)

    visit(pipeline.spec, 0)
    return rows
