"""How long a study will take, said before it starts: a timed probe on the user's own data, times the plan.

The probe trains the study's classifier and a VAE for a few optimiser steps each on a few of the data's images,
at one thread (what each of the study's worker processes runs at), and times the steps beyond a short warm-up.
The plan fixes how many optimiser steps every training takes, so the estimate is those steps at the probe's
pace, spread over the workers, times ``OVERHEAD`` for what the probe does not time (evaluations, classic
augmentation pools, sampling the generators): on the Fashion-MNIST study at 10 per class (34 min on an idle
2-core Xeon) the steps alone came to about half the time. It is a guide, printed as such.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from augmentor.data.imageset import ImageSet

PROBE_WARMUP = 2  # steps of the untimed first run and of the shorter timed one
PROBE_STEPS = 12
OVERHEAD = 2.0  # the whole study over its optimiser steps alone (measured once: see the module docstring)


def planned_steps(plan: dict[str, Any], classes: int, batch_size: int) -> tuple[int, int]:
    """(classifier optimiser steps, generator steps) the study's plan trains, at most."""
    budget = plan["budget"]
    shares = plan["shares"]
    candidates = len(plan["candidates"]["classic"]) + len(plan["candidates"]["generative"])
    classifier = 0
    for n in plan["per_class"]:
        real = budget.get("steps") or math.ceil(budget["real_passes"][str(n)] * n * classes / batch_size)
        augmented = [real / (1 - share) for share in shares]
        development = real + candidates / len(shares) * sum(augmented) if shares else real
        # real, real-long (the augmented arms' steps), the tuned classic and the chosen recipe
        confirmation = real + 3 * max(augmented, default=real)
        classifier += round(plan["development"]["draws"] * development + plan["confirmation"]["draws"] * confirmation)
    generators = plan["trainings"]["generators (at most)"] * plan["generator"]["steps"]
    return classifier, generators


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


def estimate_seconds(plan: dict[str, Any], train: ImageSet, batch_size: int, gen_width: int, workers: int) -> float:
    """The study's run time on this machine, from a probe of a few seconds (see the module docstring)."""
    from augmentor.classifiers.train import TrainConfig, train_classifier
    from augmentor.core.console import hushed
    from augmentor.generative.train import GenerativeConfig, train_generative

    rng = np.random.default_rng(0)
    sample = train.take(rng.permutation(len(train))[: min(len(train), 2 * batch_size)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # each worker process of the study trains at one thread
    try:
        with hushed():

            def classifier(steps: int) -> None:
                train_classifier(sample, TrainConfig(steps=steps, batch_size=batch_size, device="cpu", evals=0))

            def generator(steps: int) -> None:
                config = GenerativeConfig(kind="vae", steps=steps, width=gen_width, device="cpu", sample_every=10**9)
                train_generative(sample, config)

            per_classifier_step = _seconds_per_step(classifier)
            per_generator_step = _seconds_per_step(generator)
    finally:
        torch.set_num_threads(threads)
    classifier_steps, generator_steps = planned_steps(plan, len(train.class_names), batch_size)
    total = classifier_steps * per_classifier_step + generator_steps * per_generator_step
    return OVERHEAD * total / max(1, workers)
