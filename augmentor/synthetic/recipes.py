"""Recipes as files: the augmentation a study chose, usable by ``gain --recipe`` and ``expand --recipe``.

A recipe is a gain arm (its sources and how their images are labelled), the share of each batch it was measured
at, the settings of the generators it trains and where it was chosen. ``augmentor study`` writes the one it
recommends to ``DIR/recipe.json``; the built-in ``best`` is the same kind of file (``recipe_files/best.json``),
what the first study (the script that became ``augmentor study``) chose on Fashion-MNIST's development
draws. A file is read with a size cap and every field checked: a recipe from elsewhere is user input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from augmentor.core import jsonio
from augmentor.core.bounded import read_json
from augmentor.core.errors import UserError

RECIPE_FORMAT = 1
LEGACY_BETA = 1.0  # the VAE KL weight of recipes written before files recorded one
BUILT_IN = Path(__file__).with_name("recipe_files")
RECIPE_LIMIT = 64 << 10  # bytes: a recipe is a few lines


@dataclass(frozen=True)
class Recipe:
    """A gain arm (``vae-jitter@soft``), the synthetic share it was chosen at, its generators' settings."""

    name: str
    arm: str
    share: float
    gen_steps: int = 600
    gen_width: int = 32
    gen_init: str | None = None  # the run the generators start from (transfer), None: from scratch
    gen_augment: str | None = None  # the generators also trained on classic copies (train's --augment)
    gen_ada_target: float | None = None  # the DCGANs' adaptive DiffAugment target (None: DiffAugment always on)
    gen_beta: float = 0.1  # the VAEs' KL weight (a file without one was chosen with the plain VAE's 1)
    budget: str = "3000/N passes over the real subset, within 30..300"
    chosen_on: str = ""

    @property
    def sources(self) -> list[str]:
        """The arm's sources without their label mode, as ``expand --with`` takes them (before ``:RUN``)."""
        return self.arm.partition("@")[0].split("+")

    @property
    def classic_only(self) -> bool:
        from augmentor.synthetic.sources import CLASSIC_KINDS

        return all(source.partition(":")[0] in CLASSIC_KINDS for source in self.sources)

    def document(self) -> dict[str, Any]:
        """The recipe as its file holds it."""
        fields = asdict(self)
        generator = {"steps": fields.pop("gen_steps"), "width": fields.pop("gen_width"), "beta": fields.pop("gen_beta")}
        for name in ("init", "augment", "ada_target"):
            value = fields.pop(f"gen_{name}")
            if value is not None:
                generator[name] = value
        return {"format": RECIPE_FORMAT, **fields, "generator": generator}


def write_recipe(path: Path, recipe: Recipe) -> None:
    """Save ``recipe`` as a recipe file (written to a temporary name, then renamed)."""
    from augmentor.core.outdir import write_file_atomic

    write_file_atomic(path, (jsonio.dumps(recipe.document(), indent=2) + "\n").encode())


@cache
def built_in_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in BUILT_IN.glob("*.json")))


def load_recipe(text: str) -> Recipe:
    """The recipe ``text`` names: a built-in name (``best``) or a recipe file's path."""
    if text in built_in_names():
        return _read(BUILT_IN / f"{text}.json", text)
    path = Path(text)
    if path.suffix != ".json" or not path.is_file():
        raise UserError(
            f"--recipe {text!r} is neither a built-in recipe ({', '.join(built_in_names())}) nor a recipe .json file "
            "(augmentor study writes one: DIR/recipe.json)"
        )
    return _read(path, text)


def _read(path: Path, shown: str) -> Recipe:
    """A recipe file, every field checked (one line naming the file and the field on error)."""
    from augmentor.synthetic.sources import parse_source

    fix = "write it again with augmentor study, or fix the field"
    try:
        if path.stat().st_size > RECIPE_LIMIT:
            raise UserError(f"{path}: {path.stat().st_size:,} bytes is no recipe (a few lines); {fix}")
    except OSError as exc:
        raise UserError(f"{path}: not a readable recipe file ({exc}); {fix}") from None
    try:
        document = read_json(path, "a recipe file")
    except UserError as exc:
        reason = exc.message.removeprefix(f"{path}: ")
        raise UserError(f"{path}: not a readable recipe file ({reason}); {fix}") from None
    if not isinstance(document, dict) or document.get("format") != RECIPE_FORMAT:
        raise UserError(f"{path}: not a recipe file of format {RECIPE_FORMAT}; {fix}")
    generator = document.get("generator", {})
    values = {
        "name": document.get("name", shown),
        "arm": document.get("arm"),
        "share": document.get("share"),
        "gen_steps": generator.get("steps", 600) if isinstance(generator, dict) else None,
        "gen_width": generator.get("width", 32) if isinstance(generator, dict) else None,
        "gen_init": generator.get("init") if isinstance(generator, dict) else None,
        "gen_augment": generator.get("augment") if isinstance(generator, dict) else None,
        "gen_ada_target": generator.get("ada_target") if isinstance(generator, dict) else None,
        "gen_beta": generator.get("beta", LEGACY_BETA) if isinstance(generator, dict) else None,
        "budget": document.get("budget", ""),
        "chosen_on": document.get("chosen_on", ""),
    }
    checks = {
        "name": isinstance(values["name"], str) and len(values["name"]) <= 200,
        "arm": isinstance(values["arm"], str) and 0 < len(values["arm"]) <= 500,
        "share": isinstance(values["share"], (int, float)) and 0 < values["share"] < 1,
        "generator.steps": isinstance(values["gen_steps"], int) and 1 <= values["gen_steps"] <= 10**6,
        "generator.width": isinstance(values["gen_width"], int) and 4 <= values["gen_width"] <= 512,
        "generator.init": values["gen_init"] is None or (isinstance(values["gen_init"], str) and values["gen_init"]),
        "generator.augment": values["gen_augment"] is None
        or (isinstance(values["gen_augment"], str) and 0 < len(values["gen_augment"]) <= 500),
        "generator.ada_target": values["gen_ada_target"] is None
        or (
            isinstance(values["gen_ada_target"], (int, float))
            and not isinstance(values["gen_ada_target"], bool)
            and 0 <= values["gen_ada_target"] <= 1
        ),
        "generator.beta": isinstance(values["gen_beta"], (int, float))
        and not isinstance(values["gen_beta"], bool)
        and 0 <= values["gen_beta"] <= 1e3,
        "budget": isinstance(values["budget"], str) and len(values["budget"]) <= 500,
        "chosen_on": isinstance(values["chosen_on"], str) and len(values["chosen_on"]) <= 2000,
    }
    for field, fine in checks.items():
        if not fine:
            raise UserError(f"{path}: its {field} is not usable; {fix}")
    body, _, labels = values["arm"].partition("@")
    if labels not in ("", "soft", "hard"):
        raise UserError(f"{path}: its arm {values['arm']!r} ends in @{labels}; use @soft or @hard; {fix}")
    for source in body.split("+"):  # a source gain cannot run is refused here, naming itself
        parse_source(source, where=f"{path}: arm", allow_gated=True, need_run=False)
    return Recipe(**values)


def split_recipe_run(text: str) -> tuple[str, str]:
    """``best:RUN`` or ``study/recipe.json:RUN`` → (the recipe, the run); the run may be empty."""
    if ".json:" in text:
        name, _, run = text.partition(".json:")
        return name + ".json", run
    if text.endswith(".json"):
        return text, ""
    name, _, run = text.partition(":")
    return name, run


def recipe_sources(text: str) -> list[str]:
    """``best:RUN`` (or ``FILE.json:RUN``) → the recipe's sources with the run, as ``expand --with`` takes them."""
    from augmentor.synthetic.sources import CLASSIC_KINDS

    name, run = split_recipe_run(text)
    recipe = load_recipe(name)
    generative = [s for s in recipe.sources if s.partition(":")[0] not in CLASSIC_KINDS]
    if generative and not run:
        kinds = ", ".join(s.split(":")[0] for s in generative)
        raise UserError(f"--recipe {text!r}: name the run of its generator ({kinds}), e.g. --recipe {name}:runs/vae")
    out = []
    for source in recipe.sources:
        kind, _, number = source.partition(":")
        out.append(source if kind in CLASSIC_KINDS else f"{kind}:{run}" + (f":{number}" if number else ""))
    return out
