"""How long a study will take, said before it starts: a timed probe on the user's own data, times the plan.

The probe trains the study's classifier and a VAE for a few optimiser steps each on a few of the data's images,
at this process's thread count (the study trains its runs one after another in this process; its worker
processes only make augmentation pools), and times the steps beyond a short warm-up. The plan fixes how many
optimiser steps every training takes at most, so the estimate is those steps at the probe's pace, times
``OVERHEAD``. Measured on an idle 2-core Xeon: a 25 px grey study took 0.92 of its steps' probed time and a
32 px colour one 0.88 (its runs train several arms as one grouped network, which the probe does not, and the
evaluations and pools add back about as much). Those counted the arms' classifiers only; the generators' CAS
classifiers are counted too since a Fashion-MNIST study with vae-density arms said 37 minutes without them and
took 46 on an idle 2-core AMD EPYC (with them its probe says 48 to 55). It is a guide, printed as such.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from augmentor.data.imageset import ImageSet

PROBE_WARMUP = 2  # steps of the untimed first run and of the shorter timed one
PROBE_STEPS = 12
OVERHEAD = 1.0  # the whole study over its optimiser steps' probed time (measured 0.88 and 0.92: module docstring)


def planned_steps(
    plan: dict[str, Any], classes: int, batch_size: int, quality_steps: int | None = None
) -> tuple[int, int, int]:
    """(classifier optimiser steps, generator steps, the generators' CAS classifiers' steps) the study's plan
    trains, at most. The CAS classifiers (``quality_steps`` each, None: the real-only arm's budget, 0: none)
    judge every generator's samples, its density codes' too where a candidate uses vae-density, and once per
    draw the real subset: the study's own arms do not count them, but they take a fifth of its time."""
    budget = plan["budget"]
    shares = plan["shares"]
    candidates = len(plan["candidates"]["classic"]) + len(plan["candidates"]["generative"])
    draws = plan["development"]["draws"] + plan["confirmation"]["draws"]
    kinds = plan["trainings"]["generators (at most)"] // max(1, len(plan["per_class"]) * draws)
    density = any("vae-density" in arm for arm in plan["candidates"]["generative"])
    per_draw = (1 + kinds * (2 if density else 1)) if kinds else 0  # the real twin, then each generator's
    classifier = quality = 0
    for n in plan["per_class"]:
        batch = min(batch_size, n * classes)  # a subset smaller than a batch is one batch
        real = budget.get("steps") or math.ceil(budget["real_passes"][str(n)] * n * classes / batch)
        augmented = [real / (1 - share) for share in shares]
        development = real + candidates * sum(augmented)  # every candidate at every share
        # real, real-long (the augmented arms' steps), and the tuned classic and the chosen recipe at every
        # share when their shares differ (the confirmation trains each arm at each chosen share)
        confirmation = real + max(augmented, default=real) + 2 * sum(augmented)
        classifier += round(plan["development"]["draws"] * development + plan["confirmation"]["draws"] * confirmation)
        quality += draws * per_draw * (round(real) if quality_steps is None else quality_steps)
    generators = plan["trainings"]["generators (at most)"] * plan["generator"]["steps"]
    return classifier, generators, quality


def _seconds_per_step(run) -> float:
    """Seconds per optimiser step of ``run(steps)``: the difference of two timed runs after an untimed one, so
    imports, allocation and first kernels are out of it."""
    run(PROBE_WARMUP)
    timed = []
    for steps in (PROBE_WARMUP, PROBE_WARMUP + PROBE_STEPS):
        started = time.perf_counter()
        run(steps)
        timed.append(time.perf_counter() - started)
    return max(0.0, timed[1] - timed[0]) / PROBE_STEPS


def estimate_seconds(
    plan: dict[str, Any], train: ImageSet, batch_size: int, gen_width: int, quality_steps: int | None = None
) -> float:
    """The study's run time on this machine, from a probe of a few seconds (see the module docstring)."""
    from augmentor.classifiers.train import TrainConfig, train_classifier
    from augmentor.core.console import hushed
    from augmentor.generative.train import GenerativeConfig, train_generative

    rng = np.random.default_rng(0)
    sample = train.take(rng.permutation(len(train))[: min(len(train), 2 * batch_size)])
    with hushed():

        def classifier(steps: int) -> None:
            train_classifier(sample, TrainConfig(steps=steps, batch_size=batch_size, device="cpu", evals=0))

        def generator(steps: int) -> None:
            config = GenerativeConfig(kind="vae", steps=steps, width=gen_width, device="cpu", sample_every=10**9)
            train_generative(sample, config)

        per_classifier_step = _seconds_per_step(classifier)
        per_generator_step = _seconds_per_step(generator)
    classifier_steps, generator_steps, quality = planned_steps(plan, len(train.class_names), batch_size, quality_steps)
    return OVERHEAD * ((classifier_steps + quality) * per_classifier_step + generator_steps * per_generator_step)
