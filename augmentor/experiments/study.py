"""``augmentor study``: the gain protocol as one command on the user's own data, with a plan written first.

1. **Plan.** Before any training, ``DIR/plan.json`` (and its sha256 in ``DIR/plan.sha256``) fixes the data
   (its fingerprint), N, the validation split, the budget rule, the candidates of both sides, the shares, the
   development and confirmation seeds, and the decision rule. A resumed or repeated study with another plan is
   refused: a changed plan is a new study in a new folder.
2. **Development** (``gain --development``: validation split only, test never read): the classic side and the
   generative side each try the same number of candidates at the same shares on the same development draws;
   each side's best (arm, share) by mean validation accuracy over draws and N is kept.
3. **Confirmation**: ``real``, ``real-long``, the tuned classic and the chosen generative recipe on fresh draws
   whose seeds no gain or study default uses, scored once on test. The chosen recipe against the tuned classic:
   the paired t-interval, Wilcoxon's p and the sign count. The first line of ``report.md`` is the answer; the
   recommended arm is written as ``DIR/recipe.json`` (``gain --recipe``, ``expand --recipe`` take it).

Every draw's numbers go to ``DIR/runs.jsonl`` (development rows marked so); ``--resume`` goes on after the last
finished stage.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from augmentor import __version__
from augmentor.core import jsonio
from augmentor.core.bounded import read_json, read_jsonl, read_text
from augmentor.core.console import warn
from augmentor.core.errors import UserError
from augmentor.core.outdir import check_output, write_file_atomic
from augmentor.data.imageset import fingerprint
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset
from augmentor.experiments.gain import (
    DEVELOPMENT_SEEDS,
    GainConfig,
    check_init_unseen,
    default_real_epochs,
    fit_to_data,
    run_experiment,
    split_data,
    write_report,
)
from augmentor.experiments.stats import paired_comparison
from augmentor.report.gain_report import generator_groups
from augmentor.synthetic.recipes import Recipe, write_recipe

# Both sides search the same number of candidates, at the same shares, on the same draws.
# RandAugment's shape stands in for `medium` since 2026-12-05 (medium never won a committed study; the issue asks
# for a RandAugment setting on the classic side): still three classic candidates against three generative ones.
CLASSIC_CANDIDATES = ("classic:light", "classic:heavy", "classic:randaugment")
GENERATIVE_CANDIDATES = ("vae", "vae@soft", "vae-jitter@soft")
# Below this many training images in a class, a fixed held-out split is too small to choose on: development
# draw d validates on fold d of as many disjoint folds as there are development draws (each image once).
CROSS_VALIDATE_BELOW = 40
CONFIRMATION_SEED = 2000  # confirmation draw d: seed 2000 + d, never a gain default (0…) or development (1000…)
PLAN_FORMAT = 1
DECISION_RULE = (
    "the chosen generative recipe is recommended when its paired 95% t-interval against the tuned classic, over "
    "the confirmation draws of every N, lies above zero; otherwise the tuned classic is, unless its own interval "
    "against real-only lies below zero (then no augmentation)"
)


@dataclass(frozen=True)
class StudyConfig:
    """``augmentor study`` options (field names = flag names)."""

    per_class: tuple[int, ...] | None = None  # None: gain's defaults the data holds
    dev_draws: int = 4
    draws: int = 10
    shares: tuple[float, ...] = (0.25, 0.5)
    classic: tuple[str, ...] = CLASSIC_CANDIDATES
    generative: tuple[str, ...] = GENERATIVE_CANDIDATES
    real_epochs: tuple[float, ...] | None = None  # None: gain's rule, 3000/N passes within 30..300
    budget: int | None = None  # or optimiser steps of the real-only arm
    batch_size: int = 128
    gen_steps: int = 600
    gen_width: int = 32
    gen_init: str | None = None  # a run every generator starts from (transfer), None: from scratch
    gen_ada_target: float | None = None  # adaptive DiffAugment for the DCGANs, None: DiffAugment always on
    gen_augment: str | None = None  # generators train on classic-augmented copies too (a preset), None: not
    gen_beta: float = 0.1  # every VAE's KL weight
    quality_steps: int | None = None  # each generator's CAS classifier (None: the real arm's budget; 0 off)
    validation_per_class: int | None = None
    first_seed: int = CONFIRMATION_SEED
    flip: bool = True
    device: str = "auto"
    workers: int = 0

    def validate(self) -> None:
        if len(self.classic) != len(self.generative):
            raise UserError(
                f"--classic has {len(self.classic)} candidates and --generative {len(self.generative)}: a fair study "
                "searches both sides with the same number"
            )
        from augmentor.experiments.arms import parse_arm

        if any(not parse_arm(c).classic_only for c in self.classic):
            raise UserError(
                f"--classic {','.join(self.classic)!r}: every candidate is a classic arm (classic pipelines, mixup, "
                "cutmix), e.g. classic:heavy or mixup:0.4"
            )
        if any(parse_arm(c).classic_only for c in self.generative):
            raise UserError(f"--generative {','.join(self.generative)!r}: every candidate has a generative source")
        if self.dev_draws < 2 or self.draws < 2:
            raise UserError("--dev-draws and --draws: give at least 2 (an interval needs two paired draws)")

    def gain(self, **changes: Any) -> GainConfig:
        """The gain experiment's config these settings make, with ``changes``."""
        base = GainConfig(
            per_class=self.per_class,
            real_epochs=self.real_epochs,
            budget=self.budget,
            batch_size=self.batch_size,
            gen_steps=self.gen_steps,
            gen_width=self.gen_width,
            gen_init=self.gen_init,
            gen_ada_target=self.gen_ada_target,
            gen_augment=self.gen_augment,
            gen_beta=self.gen_beta,
            quality_steps=self.quality_steps,
            validation_per_class=self.validation_per_class,
            flip=self.flip,
            device=self.device,
            workers=self.workers,
            budget_curve=False,
        )
        return replace(base, **changes)


@dataclass
class StudyResult:
    """The answer, the plan's digest, both sides' choices and the confirmation's comparisons."""

    answer: str
    command: str
    plan_sha256: str
    choice: dict[str, Any]
    comparisons: list[dict[str, Any]]
    out: Path
    # The confirmation's generators by kind and subset size: their samples' CAS on test beside the real subset's.
    generator_quality: list[dict[str, Any]] = field(default_factory=list)


def run_study(
    src: str,
    config: StudyConfig,
    out: Path,
    *,
    read_options: ReadOptions | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> StudyResult:
    """Plan, develop, confirm (module docstring); each stage's results in ``out``, the answer in ``report.md``."""
    config.validate()
    if resume and overwrite:
        raise UserError(f"{out}: --resume continues the study in it, --overwrite replaces it; give one of them")
    if resume and not (out / "plan.json").is_file():
        raise UserError(f"{out}: holds no study plan (plan.json) to resume; start it without --resume")
    if not resume:
        check_output(out, overwrite, source=src)
    dataset = open_dataset(src, read_options or ReadOptions())
    sized, rule = fit_to_data(config.gain(), dataset.train, src)
    check_init_unseen(sized, dataset.train, dataset.test, src)
    folds = (
        0
        if config.validation_per_class
        else cross_validation_folds(dataset.train.class_counts(), sized.per_class, config.dev_draws)
    )
    config = replace(config, per_class=sized.per_class, validation_per_class=sized.validation_per_class)
    if folds:
        rule = (
            f"cross-validated: a class has under {CROSS_VALIDATE_BELOW} training images, so development draw d "
            f"validates on fold d of {folds} disjoint stratified folds (every image once); confirmation keeps a "
            f"held-out split of {config.validation_per_class} per class"
        )
    plan = make_plan(src, config, fingerprint(dataset.train), rule, folds)
    if not resume:
        check_fresh_seeds(out, plan)
    digest = _write_or_check_plan(out, plan, resume)
    if not resume:
        _say_how_long(plan, dataset.train, config)
    development = _develop(src, dataset, config, rule, out / "development", folds)
    choice = choose(development["summary"], config)
    confirmation = _confirm(src, dataset, config, rule, choice, out / "confirmation")
    comparisons = compare(confirmation["runs"], choice)
    answer, recipe = decide(choice, comparisons)
    if recipe is not None:
        generators = {
            "gen_steps": config.gen_steps,
            "gen_width": config.gen_width,
            "gen_init": config.gen_init,
            "gen_augment": config.gen_augment,
            "gen_ada_target": config.gen_ada_target,
            "gen_beta": config.gen_beta,
        }
        write_recipe(out / "recipe.json", replace(recipe, **generators))
    command = apply_command(src, recipe, out / "recipe.json", len(dataset.train), flip=config.flip)
    _write_runs(out, development["runs"], confirmation["runs"])
    quality = generator_quality(confirmation.get("generators", []))
    result = StudyResult(answer, command, digest, choice, comparisons, out, quality)
    _write_report(out, result, config, rule)
    return result


def cross_validation_folds(counts: dict[str, int], per_class: tuple[int, ...], folds: int) -> int:
    """How many folds development validates on (``folds``: one per development draw), or 0 for the fixed
    held-out split: cross-validation when the smallest class holds under CROSS_VALIDATE_BELOW images and what
    its largest fold leaves still holds the largest N (with no --validation-per-class given: the caller)."""
    smallest = min(counts.values())
    if smallest >= CROSS_VALIDATE_BELOW or smallest < folds:
        return 0
    largest_fold = -(-smallest // folds)
    return folds if smallest - largest_fold >= max(per_class) else 0


def make_plan(src: str, config: StudyConfig, data_print: str, rule: str, folds: int = 0) -> dict[str, Any]:
    """Everything the study will do, fixed before its first training."""
    epochs = {str(n): (config.gain().epochs_at(n) or default_real_epochs(n)) for n in config.per_class}
    trainings = _trainings(config)
    return {
        "format": PLAN_FORMAT,
        "augmentor_version": __version__,
        "data": {"source": src, "train_fingerprint": data_print},
        "per_class": list(config.per_class),
        "validation": {
            "per_class": config.validation_per_class,
            "rule": rule,
            **({"development_folds": folds} if folds else {}),
        },
        "budget": (
            {"steps": config.budget}
            if config.budget is not None
            else {"real_passes": epochs, "rule": "given (--real-epochs)" if config.real_epochs else "3000/N in 30..300"}
        ),
        "candidates": {"classic": list(config.classic), "generative": list(config.generative)},
        "shares": list(config.shares),
        "generator": {
            "steps": config.gen_steps,
            "width": config.gen_width,
            **_init_record(config.gen_init),
            **({"ada_target": config.gen_ada_target} if config.gen_ada_target is not None else {}),
            **({"augment": config.gen_augment} if config.gen_augment is not None else {}),
            "beta": config.gen_beta,
        },
        "development": {"draws": config.dev_draws, "seeds": [DEVELOPMENT_SEEDS + d for d in range(config.dev_draws)]},
        "confirmation": {
            "draws": config.draws,
            "seeds": [config.first_seed + d for d in range(config.draws)],
            "arms": "real, real-long, the tuned classic, the chosen generative recipe",
            "read_on_test": "once",
        },
        "selection": "each side's (arm, share) with the highest mean validation accuracy over development draws and N",
        "decision_rule": DECISION_RULE,
        "settings": {k: v for k, v in asdict(config).items() if k in ("batch_size", "flip")},
        "trainings": trainings,
    }


def check_fresh_seeds(out: Path, plan: dict[str, Any]) -> None:
    """Refuse confirmation draws that a study beside ``out`` (a sibling folder) already read on test: the same
    data, an N in common and a seed in common would be a second look at the same draws, not a confirmation."""
    seeds, sizes = set(plan["confirmation"]["seeds"]), set(plan["per_class"])
    parent = out.resolve().parent
    if not parent.is_dir():
        return
    for other in sorted(parent.iterdir()):
        read = (other / "confirmation" / "results.json").is_file() or (other / "runs.jsonl").is_file()
        if other == out.resolve() or not read:
            continue  # a study whose confirmation never ran read nothing on test (a committed one keeps runs.jsonl)
        try:
            earlier = read_json(other / "plan.json", "a study's plan")
            same_data = earlier["data"]["train_fingerprint"] == plan["data"]["train_fingerprint"]
            reused = seeds & set(earlier["confirmation"]["seeds"]) if sizes & set(earlier["per_class"]) else set()
        except (UserError, KeyError, TypeError):
            continue  # not a study's plan
        if same_data and reused:
            fresh = max(max(earlier["confirmation"]["seeds"]), max(seeds)) + 1
            raise UserError(
                f"{other}: that study already read confirmation seeds {min(reused)}…{max(reused)} of this data on "
                f"test; a study on them is a second look, not a confirmation: give --first-seed {fresh} (fresh "
                "draws), or run it away from that folder to reproduce it"
            )


def _init_record(init: str | None) -> dict[str, Any]:
    """The plan's record of ``--gen-init``: the run and its weights' sha256 (a changed file is a changed plan)."""
    if init is None:
        return {}
    from augmentor.generative.transfer import weights_sha256

    return {"init": init, "init_sha256": weights_sha256(init)}


def _trainings(config: StudyConfig) -> dict[str, int]:
    """How many classifiers and generators each stage trains (said before the study starts)."""
    ns, candidates = len(config.per_class), len(config.classic) + len(config.generative)
    development = ns * config.dev_draws * (1 + candidates * len(config.shares))
    confirmation_shares = len(config.shares)  # at most: the two sides' shares
    confirmation = ns * config.draws * (2 + 2 * confirmation_shares)
    generative_kinds = {c.split("@")[0].split("+")[-1].split(":")[0].split("-")[0] for c in config.generative}
    generators = ns * (config.dev_draws + config.draws) * len(generative_kinds)
    return {"development": development, "confirmation": confirmation, "generators (at most)": generators}


def _write_or_check_plan(out: Path, plan: dict[str, Any], resume: bool) -> str:
    """Write the plan and its sha256, or (resuming) refuse a plan that differs from the one written first."""
    text = jsonio.dumps(plan, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    if resume:
        written = read_text(out / "plan.json", "the study's plan")
        if hashlib.sha256(written.encode()).hexdigest() != digest:
            changed = _changed_keys(json.loads(written), plan)
            raise UserError(
                f"{out}: the study's plan changed ({', '.join(changed) or 'its text'} differ from plan.json); a "
                "changed plan is a new study: give a new --out"
            )
        return digest
    out.mkdir(parents=True, exist_ok=True)
    write_file_atomic(out / "plan.json", text.encode())
    write_file_atomic(out / "plan.sha256", f"{digest}  plan.json\n".encode())
    counts = plan["trainings"]
    warn(
        f"study plan {digest[:12]} written to {out / 'plan.json'}: {counts['development']} development and "
        f"{counts['confirmation']} confirmation classifier trainings, up to {counts['generators (at most)']} "
        "generators"
    )
    return digest


def _say_how_long(plan: dict[str, Any], train: Any, config: StudyConfig) -> None:
    """The study's run time on this machine, from a probe of a few seconds, before its first training."""
    from augmentor.experiments.estimate import estimate_seconds

    if config.device not in ("cpu", "auto") or _cuda():
        warn(
            "this study runs on the GPU: no time estimate before it starts (the probe times CPU steps); the "
            "progress bar gives one after the first training"
        )
        return
    seconds = estimate_seconds(plan, train, config.batch_size, config.gen_width, config.quality_steps)
    warn(
        f"this study will take up to about {max(1, round(seconds / 60))} minutes here (a rough estimate from a "
        "timed probe; less when the two sides choose the same share)"
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _develop(src: str, dataset: Any, config: StudyConfig, rule: str, folder: Path, folds: int) -> dict[str, Any]:
    """Every candidate of both sides at every share on the development draws (validation split; no test).
    Cross-validated (``folds``): draw d is its own one-draw run on fold d, in ``folder/fold-d``; the draws' runs
    and summaries together are what the choice averages, as over the draws of one run."""
    arms = ",".join(["real", *config.classic, *config.generative])
    gain = config.gain(arms=arms, draws=config.dev_draws, synthetic_share=config.shares, development=True)
    if not folds:
        return _stage(src, dataset, gain, rule, folder)
    runs: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for fold in range(folds):
        one = replace(gain, draws=1, first_seed=fold, validation_fold=(fold, folds))
        stage = _stage(src, dataset, one, rule, folder / f"fold-{fold}")
        runs += stage["runs"]
        summary += stage["summary"]
    return {"runs": runs, "summary": summary}


def _confirm(src: str, dataset: Any, config: StudyConfig, rule: str, choice: dict, folder: Path) -> dict[str, Any]:
    """real, real-long, the tuned classic and the chosen recipe on fresh draws, read once on test."""
    classic, generative = choice["classic"], choice["generative"]
    shares = tuple(sorted({classic["share"], generative["share"]}))
    arms = ",".join(["real", "real-long", classic["arm"], generative["arm"]])
    gain = config.gain(arms=arms, draws=config.draws, synthetic_share=shares, first_seed=config.first_seed)
    return _stage(src, dataset, gain, rule, folder)


def _stage(src: str, dataset: Any, gain: GainConfig, rule: str, folder: Path) -> dict[str, Any]:
    """One gain run (results.json and report.md in ``folder``); a finished one is read back, not run again."""
    done = folder / "results.json"
    if done.is_file():
        return read_json(done, "a stage's results")
    gain.validate()
    splits = split_data(dataset.train, dataset.test, gain, src, rule)
    result = run_experiment(splits, gain, source=src)
    write_report(folder, result, splits.class_names, overwrite=True)
    return read_json(done, "a stage's results")


def choose(summary: list[dict[str, Any]], config: StudyConfig) -> dict[str, Any]:
    """Each side's best (arm, share) by mean validation accuracy over N (the first listed wins a tie)."""

    def best(candidates: tuple[str, ...]) -> dict[str, Any]:
        scores: dict[tuple[str, float], list[float]] = {}
        for row in summary:
            if row["arm"] in candidates:
                scores.setdefault((row["arm"], row["synthetic_share"]), []).append(row["accuracy"]["mean"])
        if not scores:
            raise UserError("internal: the development run has none of the candidates")
        order = {arm: i for i, arm in enumerate(candidates)}
        ranked = sorted(scores.items(), key=lambda item: (-sum(item[1]) / len(item[1]), order[item[0][0]]))
        (arm, share), values = ranked[0]
        return {"arm": arm, "share": share, "validation_accuracy": sum(values) / len(values)}

    return {"classic": best(config.classic), "generative": best(config.generative)}


def compare(runs: list[dict[str, Any]], choice: dict[str, Any]) -> list[dict[str, Any]]:
    """The confirmation's paired comparisons over every draw and N: recipe vs classic, classic vs real."""

    def accuracies(arm: str, share: float) -> dict[tuple[int, int], float]:
        return {
            (r["per_class"], r["seed"]): r["accuracy"]
            for r in runs
            if r["arm"] == arm and r["synthetic_share"] == share
        }

    classic, generative = choice["classic"], choice["generative"]
    pairs = [
        ("recipe vs tuned classic", (generative["arm"], generative["share"]), (classic["arm"], classic["share"])),
        ("tuned classic vs real", (classic["arm"], classic["share"]), ("real", 0.0)),
        ("recipe vs real", (generative["arm"], generative["share"]), ("real", 0.0)),
    ]
    comparisons = []
    for name, a, b in pairs:
        first, second = accuracies(*a), accuracies(*b)
        keys = sorted(first.keys() & second.keys())
        differences = [first[k] - second[k] for k in keys]
        result = paired_comparison(differences)
        result["wins"] = sum(d > 0 for d in differences)
        comparisons.append({"comparison": name, "draws": len(keys), **result})
    return comparisons


def decide(choice: dict[str, Any], comparisons: list[dict[str, Any]]) -> tuple[str, Recipe | None]:
    """The answer line (DECISION_RULE) and the recipe it recommends (None: no augmentation)."""
    recipe_vs_classic, classic_vs_real = comparisons[0], comparisons[1]
    classic, generative = choice["classic"], choice["generative"]

    def signed(c: dict[str, Any]) -> str:
        return f"{100 * c['mean']:+.2f} ± {100 * (c['ci'] or 0):.2f} points"

    def recipe(side: dict[str, Any]) -> Recipe:
        return Recipe("study", side["arm"], side["share"], chosen_on="augmentor study: development draws, validation")

    if recipe_vs_classic["low"] is not None and recipe_vs_classic["low"] > 0:
        gain = signed(recipe_vs_classic)
        return f"use {generative['arm']} at share {generative['share']:g} ({gain} over tuned classic)", recipe(
            generative
        )
    if classic_vs_real["high"] is not None and classic_vs_real["high"] < 0:
        answer = (
            f"nothing beats real-only here ({classic['arm']}: {signed(classic_vs_real)} against real); "
            "use no augmentation"
        )
        return answer, None
    answer = (
        f"nothing beats tuned classic here ({generative['arm']}: {signed(recipe_vs_classic)}); use {classic['arm']} "
        f"at share {classic['share']:g}"
    )
    return answer, recipe(classic)


def apply_command(src: str, recipe: Recipe | None, path: Path, num_images: int, *, flip: bool = True) -> str:
    """The commands that train a classifier the way the recommended arm did: its generator, the expansion with
    the recipe file (as many images as the classifier will draw), the mixing share; ``flip`` False (a study
    run with --no-flip) carries --no-flip to each."""
    no_flip = "" if flip else " --no-flip"
    if recipe is None:
        return f"augmentor classify train {src}{no_flip} --out classifier"
    steps = []
    from augmentor.synthetic.sources import CLASSIC_KINDS

    kinds = [s.partition(":")[0] for s in recipe.sources]
    models = sorted({kind.split("-")[0] for kind in kinds if kind not in CLASSIC_KINDS})
    for model in models:  # vae-jitter and vae-extrapolate use a VAE run
        steps.append(f"augmentor train {model} {src}{generator_flags(recipe, model, no_flip)} --out {model}-run")
    run = f":{models[0]}-run" if models else ""
    ratio = synthetic_per_real(num_images, recipe.share)
    steps.append(f"augmentor expand {src} --recipe {path}{run} --ratio 1:{ratio}{no_flip} --out expanded")
    share = f"{recipe.share:g}"
    teacher = ""
    if recipe.arm.endswith("@soft"):  # labelled as the study's arm was: by a classifier of the real images alone
        steps.append(f"augmentor classify train {src}{no_flip} --out teacher")
        teacher = " --teacher teacher"
    steps.append(
        f"augmentor classify train {src} --synthetic expanded --synthetic-share {share}{teacher}{no_flip} "
        "--out classifier"
    )
    return " && ".join(steps)


def generator_flags(recipe: Recipe, model: str, no_flip: str = "") -> str:
    """``train``'s flags that make ``model`` the way the study's arms trained it: the recipe's step budget, its
    width (or its init run, which brings its own width), DiffAugment for a DCGAN (adaptive where the study's
    was), augmented copies, the VAE's KL weight where it is not train's default."""
    flags = f" --steps {recipe.gen_steps}"
    flags += f" --init {recipe.gen_init}" if recipe.gen_init else f" --width {recipe.gen_width}"
    from augmentor.generative.kinds import get_kind

    if get_kind(model).adversarial:  # the gain experiment's DCGANs train on small subsets with DiffAugment on
        flags += f" --ada-target {recipe.gen_ada_target:g}" if recipe.gen_ada_target is not None else " --diffaugment"
    if recipe.gen_augment:
        flags += f" --augment {recipe.gen_augment}{no_flip}"
    if model == "vae" and recipe.gen_beta != Recipe.gen_beta:
        flags += f" --beta {recipe.gen_beta:g}"
    return flags


def synthetic_per_real(num_images: int, share: float) -> int:
    """Synthetic images per real one that ``classify train --synthetic-share SHARE`` draws at its default budget
    on ``num_images`` real images: at this expand ratio each is drawn about once, as the study's arms drew a
    fresh image at every synthetic presentation (a smaller pool would be seen over and over)."""
    from augmentor.classifiers.mixing import step_plan
    from augmentor.classifiers.train import TrainConfig, budget_steps

    config = TrainConfig()
    batch_size = min(config.batch_size, num_images)
    presentations = budget_steps(config, num_images, batch_size) * batch_size
    drawn = int(step_plan(presentations, batch_size, share)[1].sum())
    return max(1, math.ceil(drawn / num_images))


def recompute(folder: Path) -> dict[str, Any]:
    """A finished study's choice, comparisons and answer, recomputed from its committed ``plan.json`` and
    ``runs.jsonl`` alone (``scripts/study_table.py`` and a test check the README's study table with it)."""
    from augmentor.experiments.gain import summarise

    plan = read_json(folder / "plan.json", "the study's plan")
    rows = read_jsonl(folder / "runs.jsonl", "the study's runs")
    development = [r for r in rows if r["stage"] == "development"]
    confirmation = [r for r in rows if r["stage"] == "confirmation"]
    classes = [str(k) for k in range(len(development[0]["per_class_accuracy"]))]
    candidates = StudyConfig(
        classic=tuple(plan["candidates"]["classic"]), generative=tuple(plan["candidates"]["generative"])
    )
    choice = choose(summarise(development, classes), candidates)
    comparisons = compare(confirmation, choice)
    answer, _ = decide(choice, comparisons)
    return {"choice": choice, "comparisons": comparisons, "answer": answer, "per_class": plan["per_class"]}


def generator_quality(generators: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per generator kind and subset size, the confirmation's CAS on test (a classifier trained on the samples
    alone; means over the draws) beside the same classifier trained on the real subset: how near the recipe's
    generators come to their real images, read once on test with the rest of the confirmation."""
    rows = []
    for (kind, images), entries in sorted(generator_groups(generators, "cas_test").items()):
        row = {"kind": kind, "images": images, "draws": len(entries)}
        for key in ("cas_test", "cas_test_density", "real_accuracy_test"):
            if all(entry.get(key) is not None for entry in entries):
                row[key] = round(sum(entry[key] for entry in entries) / len(entries), 4)
        rows.append(row)
    return rows


def _write_runs(out: Path, development: list[dict[str, Any]], confirmation: list[dict[str, Any]]) -> None:
    """Every draw's numbers, one line each: development rows (validation) first, then confirmation (test)."""
    lines = [jsonio.dumps({"stage": "development", **run}) + "\n" for run in development]
    lines += [jsonio.dumps({"stage": "confirmation", **run}) + "\n" for run in confirmation]
    write_file_atomic(out / "runs.jsonl", "".join(lines).encode())


def _write_report(out: Path, result: StudyResult, config: StudyConfig, rule: str) -> None:
    """``report.md`` (the answer first) and ``study.json``."""
    choice = result.choice
    lines = [
        f"**Answer: {result.answer}.**",
        "",
        f"Apply it: `{result.command}`",
        "",
        "# Study",
        "",
        f"Plan `{result.plan_sha256[:12]}` (plan.json, written before any training). N = "
        f"{', '.join(map(str, config.per_class))}; validation split {config.validation_per_class} per class ({rule}).",
        f"Development: {config.dev_draws} draws, validation split only; {len(config.classic)} classic and "
        f"{len(config.generative)} generative candidates at shares {', '.join(f'{s:g}' for s in config.shares)}.",
        f"Tuned classic: {choice['classic']['arm']} at {choice['classic']['share']:g} (validation accuracy "
        f"{100 * choice['classic']['validation_accuracy']:.2f}%); chosen recipe: {choice['generative']['arm']} at "
        f"{choice['generative']['share']:g} ({100 * choice['generative']['validation_accuracy']:.2f}%).",
        f"Confirmation: {config.draws} fresh draws (seeds {config.first_seed}…{config.first_seed + config.draws - 1}), "
        "scored once on test.",
        "",
        "| comparison | draws | mean (points) | 95% interval | t-test p | Wilcoxon p | draws won |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result.comparisons:
        interval = "n/a" if c["low"] is None else f"{100 * c['low']:+.2f} … {100 * c['high']:+.2f}"
        p = "n/a" if c["p"] is None else f"{c['p']:.3g}"
        pw = "n/a" if c["p_wilcoxon"] is None else f"{c['p_wilcoxon']:.3g}"
        lines.append(
            f"| {c['comparison']} | {c['draws']} | {100 * c['mean']:+.2f} | {interval} | {p} | {pw} | "
            f"{c['wins']} of {c['draws']} |"
        )
    if result.generator_quality:
        lines += [
            "",
            "The confirmation's generators, judged on test (CAS: a classifier trained on their samples alone, "
            "beside the same classifier trained on the real images; means over the draws):",
            "",
            "| generator | real images | draws | CAS on test % | real images, same classifier % |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in result.generator_quality:
            ways = [("cas_test", row["kind"])]
            if "cas_test_density" in row:
                ways = [
                    ("cas_test", f"{row['kind']} (prior codes)"),
                    ("cas_test_density", f"{row['kind']} (density codes)"),
                ]
            lines += [
                f"| {name} | {row['images']:,} | {row['draws']} | {100 * row[key]:.2f} | "
                f"{100 * row['real_accuracy_test']:.2f} |"
                for key, name in ways
            ]
    lines += [
        "",
        f"Decision rule: {DECISION_RULE}.",
        "",
        "Per-draw numbers: runs.jsonl; each stage's gain report in development/ and confirmation/.",
    ]
    write_file_atomic(out / "report.md", ("\n".join(lines) + "\n").encode())
    document = {
        "answer": result.answer,
        "command": result.command,
        "plan_sha256": result.plan_sha256,
        "choice": choice,
        "comparisons": result.comparisons,
        "generator_quality": result.generator_quality,
    }
    write_file_atomic(out / "study.json", (jsonio.dumps(document, indent=2) + "\n").encode())
