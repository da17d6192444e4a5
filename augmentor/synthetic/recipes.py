"""Named recipes: the generative augmentation the gain study chose, usable by ``gain`` and ``expand``.

A recipe is a gain arm (its sources and how their images are labelled) plus the share of each batch it
was measured at. ``best`` is what ``bench/study.py`` chose on development draws (validation split, never
test); the README gives its measured effect. Change it only with a new study.
"""

from __future__ import annotations

from dataclasses import dataclass

from augmentor.core.errors import UserError


@dataclass(frozen=True)
class Recipe:
    """A gain arm (``vae-jitter@soft``) and the synthetic share it was chosen at."""

    name: str
    arm: str
    share: float
    chosen_on: str

    @property
    def sources(self) -> list[str]:
        """The arm's sources without their label mode, as ``expand --with`` takes them (before ``:RUN``)."""
        body = self.arm.rpartition("@")[0] if "@" in self.arm else self.arm
        return body.split("+")


RECIPES = {
    "best": Recipe(
        name="best",
        arm="vae",
        share=0.5,
        chosen_on="bench/study.py on Fashion-MNIST, 10 per class, 4 development draws (validation split)",
    ),
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or a one-line error listing the known ones."""
    if name not in RECIPES:
        raise UserError(f"--recipe {name!r} is unknown; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_sources(text: str) -> list[str]:
    """``best:RUN`` → the recipe's sources with the run, as ``expand --with`` takes them."""
    name, _, run = text.partition(":")
    recipe = get_recipe(name)
    generative = [s for s in recipe.sources if not s.startswith("classic")]
    if generative and not run:
        kinds = ", ".join(s.split(":")[0] for s in generative)
        raise UserError(f"--recipe {text!r}: name the run of its generator ({kinds}), e.g. --recipe {name}:runs/vae")
    out = []
    for source in recipe.sources:
        kind, _, number = source.partition(":")
        out.append(source if kind == "classic" else f"{kind}:{run}" + (f":{number}" if number else ""))
    return out
