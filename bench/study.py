"""The gain study in one command: choose the recipe on development draws, then run it once on fresh draws.

Stage 1 (development): every candidate recipe at every share on ``--dev-draws`` development draws (seeds
1000 + d), scored on the validation split carved from the train split, with the budget curve; the test split
is not read. ``augmentor.experiments.tuning.select_recipe`` picks the generative (arm, share) with the
highest mean paired gain over classic augmentation.
Stage 2 (report): real, real-long, classic, classic@soft (what the teacher alone adds) and the chosen recipe
on ``--draws`` fresh draws (seeds 0…), scored once on test.

Run:  .venv/bin/python bench/study.py --out study-out [--data fashion-mnist] [--per-class 10]
          [--dev-per-class 10] [--dev-draws 4] [--draws 10] [--real-epochs 300] [--dev-real-epochs 100]
Writes OUT/development/ and OUT/report/ (the gain reports) and OUT/study.json (the choice, the time it
took and the machine), and prints the chosen recipe and the report's claims.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from augmentor.data.options import ReadOptions
from augmentor.experiments.gain import GainConfig, parse_numbers, run_gain
from augmentor.experiments.tuning import select_recipe

CANDIDATES = "vae,vae@soft,vae-jitter,vae-jitter@soft,vae-extrapolate@soft,dcgan@soft"


def no_flip_classic(folder: Path) -> str:
    """The ``medium`` preset without its flips, as an A.save file (for digits, text: flips change the class)."""
    from augmentor.classic.albu import A
    from augmentor.classic.presets import build_preset

    document = A.to_dict(build_preset("medium"))
    transforms = document["transform"]["transforms"]
    document["transform"]["transforms"] = [t for t in transforms if "Flip" not in t["__class_fullname__"]]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "medium-noflip.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return str(path)


def sklearn_digits(folder: Path) -> str:
    """scikit-learn's offline digits (8×8, 0..16) as an npz with a stratified half held out as test."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    rng = np.random.default_rng(0)
    test = np.concatenate([rng.permutation(np.flatnonzero(digits.target == c))[::2] for c in range(10)])
    train = np.setdiff1d(np.arange(len(images)), test)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sklearn-digits.npz"
    np.savez(
        path,
        images=images[train],
        labels=digits.target[train],
        test_images=images[test],
        test_labels=digits.target[test],
        class_names=np.array([str(c) for c in range(10)]),
    )
    return str(path)


def machine() -> dict[str, str | int]:
    """Where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "gpu": gpu or "none", "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="fashion-mnist", help="a SRC, or sklearn-digits (made from scikit-learn)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-class", default="10", help="N of the reported draws")
    parser.add_argument("--dev-per-class", default="10", help="N of the development draws")
    parser.add_argument("--dev-draws", type=int, default=4)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--real-epochs", default="300", help="passes over the real subset, one or one per N")
    parser.add_argument(
        "--dev-real-epochs", default=None, help="the development draws' budget (default: --real-epochs)"
    )
    parser.add_argument("--curve-draws", type=int, default=3, help="reported draws the budget curve uses")
    parser.add_argument("--shares", default="0.25,0.5", help="synthetic shares tried on development draws")
    parser.add_argument("--candidates", default=CANDIDATES)
    parser.add_argument("--gen-steps", type=int, default=600)
    parser.add_argument("--validation-per-class", type=int, default=200)
    parser.add_argument("--no-flip", action="store_true")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--skip-development", default=None, help="ARM@SHARE: skip stage 1, use this recipe")
    args = parser.parse_args()

    if args.data == "sklearn-digits":
        args.data = sklearn_digits(args.out)
    classic = f"classic:{no_flip_classic(args.out)}" if args.no_flip else "classic"
    options = ReadOptions(image_size=(args.image_size, args.image_size)) if args.image_size else ReadOptions()
    base = GainConfig(
        draws=args.draws,
        real_epochs=parse_numbers(args.real_epochs, "--real-epochs", float),
        gen_steps=args.gen_steps,
        validation_per_class=args.validation_per_class,
        flip=not args.no_flip,
        curve_draws=min(args.curve_draws, args.draws),
    )
    started = time.perf_counter()
    if args.skip_development:
        arm, _, share = args.skip_development.rpartition("@")
        choice = {"arm": arm, "synthetic_share": float(share), "chosen_on": "given on the command line"}
    else:
        development = replace(
            base,
            real_epochs=parse_numbers(args.dev_real_epochs or args.real_epochs, "--dev-real-epochs", float),
            per_class=parse_numbers(args.dev_per_class, "--dev-per-class"),
            arms=f"real,{classic},{classic}@soft,{args.candidates}",
            draws=args.dev_draws,
            synthetic_share=parse_numbers(args.shares, "--shares", float),
            curve_draws=args.dev_draws,
            development=True,
        )
        result = run_gain(args.data, development, args.out / "development", read_options=options, overwrite=True)
        choice = {**select_recipe(result), "chosen_on": f"{args.dev_draws} development draws, validation split"}
    dev_seconds = time.perf_counter() - started
    print(f"recipe: {choice['arm']} at share {choice['synthetic_share']:g} ({choice['chosen_on']})", flush=True)

    final = replace(
        base,
        per_class=parse_numbers(args.per_class, "--per-class"),
        arms=f"real,real-long,{classic},{classic}@soft,{choice['arm']}",
        synthetic_share=(choice["synthetic_share"],),
    )
    report = run_gain(args.data, final, args.out / "report", read_options=options, overwrite=True)
    total = time.perf_counter() - started
    study = {
        "data": args.data,
        "recipe": choice,
        "seconds": {"development": round(dev_seconds, 1), "total": round(total, 1)},
        "machine": machine(),
        "report": str(args.out / "report" / "report.md"),
        "summary": report.summary,
        "curve": report.curve,
    }
    (args.out / "study.json").write_text(json.dumps(study, indent=2) + "\n")
    print((args.out / "report" / "report.md").read_text().split("## Results")[0])
    print(f"study: {total / 60:.1f} min on {study['machine']['cpu']} ({study['machine']['cores']} cores)")


if __name__ == "__main__":
    main()
