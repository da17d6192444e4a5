"""``augmentor score``: how close generated images are to the real ones, and how useful they are.

Every figure comes with its real-data reference at the same sample size ``n``, because FID and KID are
biased at small ``n`` and a domain classifier's features have no absolute scale:

- FID / KID between a sample of the real train split and the generated images; the floor F0 is the FID
  between that train sample and a real test sample (FID/F0 near 1 means "as close as real data gets").
  They are in a domain classifier's features (the shipped one, or one trained on the reference images and
  cached when it does not fit them), or in Inception-v3's (pytorch-fid's network, from a local
  weights file: ``inception=``) when they must compare with published numbers;
- diversity: mean pairwise SSIM of generated images beside that of real ones;
- memorisation: the share of generated images within ``d`` (RMS per pixel) of a real train image,
  beside the share of real test images that close to the train split;
- CAS: test accuracy of a classifier trained on the generated images only, beside the same classifier
  trained on as many real train images.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from augmentor.core.errors import UserError
from augmentor.data.imageset import ImageSet
from augmentor.data.options import ReadOptions
from augmentor.metrics.quality import DEFAULT_MEMORISATION_THRESHOLD

if TYPE_CHECKING:
    from augmentor.classifiers.classifier import Classifier
    from augmentor.generative.generator import Generator
    from augmentor.metrics.inception import InceptionFeatures

DEFAULT_N = 2000
DEFAULT_CAS_STEPS = 300
MAX_CAS_SEEDS = 20  # pairs of CAS classifiers (each pair about 10 s on 2 CPU cores at the defaults)
BASELINES = ("noise",)
LATENT_DENSITY = "density"


def _rng(seed: int, purpose: int) -> np.random.Generator:
    """An independent stream per purpose, so changing one draw never shifts another."""
    return np.random.default_rng([seed, purpose])


def _sample(images: ImageSet, n: int, seed: int, purpose: int) -> ImageSet:
    """``n`` items drawn without replacement (all of them, in order, when there are no more)."""
    if len(images) <= n:
        return images
    return images.take(np.sort(_rng(seed, purpose).choice(len(images), n, replace=False)))


def _shape(images: ImageSet) -> str:
    return f"{images.channels}×{images.size[0]}×{images.size[1]}"


def noise_images(like: ImageSet, n: int, seed: int = 0) -> ImageSet:
    """Uniform-noise images shaped like ``like``, with class-balanced labels: the worst-case reference."""
    shape = (n, like.channels, *like.size)
    images = _rng(seed, 9).integers(0, 256, size=shape, dtype=np.uint8)
    labels = np.arange(n) % len(like.class_names)
    provenance = [{"source": "noise", "seed": seed, "latent_index": i} for i in range(n)]
    return ImageSet(images, labels, list(like.class_names), provenance)


def parse_latent(text: str) -> float | None:
    """``--latent``: ``prior`` → None, ``density`` or ``density:T`` → the temperature T (default 1)."""
    head, _, tail = text.partition(":")
    if head == "prior" and not tail:
        return None
    if head == "density":
        try:
            temperature = float(tail) if tail else 1.0
        except ValueError:
            temperature = float("nan")
        if math.isfinite(temperature) and temperature > 0:
            return temperature
    raise UserError(f"--latent {text!r}: use prior, density or density:T with T > 0 (e.g. density:1.0)")


def _generated(
    run: Path, n: int, seed: int, device: str, density: float | None = None, real: ImageSet | None = None
) -> tuple[ImageSet, str, bool]:
    """``n`` images of a DCGAN/VAE run (class-balanced when conditional), its kind, and whether labelled. With
    ``density`` (a temperature), a conditional VAE's codes come from Gaussians fitted to the encoded ``real``
    images of each class (``latent.density``) instead of its prior."""
    from augmentor.generative.generator import Generator, balanced_labels

    generator = Generator.from_run(run)
    if density is not None:
        assert real is not None
        return _density_samples(generator, real, n, seed, density, device), generator.kind, True
    if generator.conditional:
        per_class = math.ceil(n / len(generator.class_names))
        labels = balanced_labels(len(generator.class_names), per_class)[:n]
        return generator.generate(labels, seed, device=device), generator.kind, True
    pixels = generator.decode(generator.latents(np.arange(n), seed), device=device)
    images = ImageSet(pixels, np.zeros(n, dtype=np.int64), list(generator.class_names))
    return images, generator.kind, False


def _density_samples(
    generator: Generator, real: ImageSet, n: int, seed: int, temperature: float, device: str
) -> ImageSet:
    """``n`` class-balanced samples decoded from codes drawn where ``real``'s images of each class encode."""
    from augmentor.generative.generator import balanced_labels
    from augmentor.latent.density import fitted_samples

    where = f"{generator.where}: --latent density"
    if not (generator.can_encode and generator.conditional):
        raise UserError(f"{where} needs a class-conditional model with an encoder (a VAE); use --latent prior")
    if sorted(generator.class_names) != sorted(real.class_names):
        raise UserError(f"{where}: the model's classes differ from the real data's; score it against its own data")
    per_class = math.ceil(n / len(real.class_names))
    labels = balanced_labels(len(real.class_names), per_class)[:n]  # real labels
    return fitted_samples(generator, real, labels, temperature, seed, device)


SOURCES = ("auto", "synthetic", "real", "all")


def pick_source(images: ImageSet, source: str, where: str) -> ImageSet:
    """The images of ``source`` by their provenance: ``synthetic`` every image not read from real data (what an
    ``expand``/``classic`` output added), ``real`` the others, ``all`` both, a source name (``vae``, ``classic``…)
    that source's, ``auto`` synthetic where the folder's manifest records any, else all. An output scored whole
    would count its real originals as samples: a FID under the real floor and "memorised" copies."""
    kinds = [p.get("source") or "real" for p in images.provenance]
    synthetic = [k != "real" for k in kinds]
    if source == "auto":
        if not any(synthetic):
            return images
        source = "synthetic"
        if not all(synthetic):
            from augmentor.core.console import note

            note(f"{where}: scoring its {sum(synthetic):,} synthetic images (of {len(images):,}; its manifest names "
                 "the rest real); --source all scores every image")  # fmt: skip
    if source == "all":
        return images
    keep = [i for i, k in enumerate(kinds) if (k != "real" if source == "synthetic" else k == source)]
    if not keep:
        found = ", ".join(sorted(set(kinds)))
        raise UserError(
            f"{where}: no {source} images to score (its images are: {found}); use --source all or one of those"
        )
    return images.take(keep)


def _target(
    target: str | Path | None,
    baseline: str | None,
    like: ImageSet,
    n: int,
    seed: int,
    device: str,
    options,
    source: str = "auto",
    density: float | None = None,
) -> tuple[ImageSet, str, bool]:
    """The images to score: a generator run's samples, a dataset's train split, or a baseline."""
    # Every run kind that read_run_config may meet here, registered by the capability that owns it
    import augmentor.classifiers
    import augmentor.generative  # noqa: F401
    from augmentor.core.runs import CONFIG_NAME, PICKLE_SUFFIXES, read_run_config
    from augmentor.data.readers import open_dataset

    if baseline is not None:
        if density is not None:
            raise UserError(f"--latent {LATENT_DENSITY}: a baseline has no codes to sample; drop one of them")
        if target is not None:
            raise UserError(f"give either a RUN|DIR to score or --baseline {baseline}, not both")
        if baseline not in BASELINES:
            raise UserError(f"--baseline {baseline!r} is unknown; use one of {', '.join(BASELINES)}")
        return noise_images(like, n, seed), "noise", True
    if target is None:
        raise UserError("give a DCGAN/VAE run folder or a folder of images to score (or --baseline noise)")
    path = Path(target)
    if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
        read_run_config(path)  # refuses pickles with the project's message
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        config = read_run_config(path)
        shape = tuple(config.get("image_shape", ()))
        if shape and shape != (like.channels, *like.size):
            raise UserError(
                f"{path}: the model makes {'×'.join(map(str, shape))} images, the real data is {_shape(like)}; "
                "convert the real data with --image-size/--channels"
            )
        return _generated(path, n, seed, device, density, like)
    if density is not None:
        raise UserError(f"--latent {LATENT_DENSITY}: only a VAE run folder has codes to sample; {target} is not one")
    images = pick_source(open_dataset(str(target), options).train, source, str(target))
    return _sample(images, n, seed, 3), "images", True


def score(
    target: str | Path | None,
    real_src: str,
    *,
    features_run: Path | None = None,
    inception: Path | str | None = None,
    n: int = DEFAULT_N,
    seed: int = 0,
    device: str = "auto",
    cas: bool = True,
    cas_steps: int = DEFAULT_CAS_STEPS,
    cas_arch: str = "fast",
    cas_seeds: int = 1,
    baseline: str | None = None,
    memorisation_threshold: float = DEFAULT_MEMORISATION_THRESHOLD,
    read_options: ReadOptions | None = None,
    source: str = "auto",
    latent: str = "prior",
) -> dict[str, Any]:
    """Score a DCGAN/VAE run, a folder of images, or ``baseline="noise"`` against ``real_src``.

    A folder's images are those of ``source`` by their provenance (``pick_source``): by default an ``expand``
    or ``classic`` output's synthetic images only, not the real originals it holds too.

    FID, F0 and KID use the features of the classifier run ``features_run``, or of Inception-v3 when
    ``inception`` names a local safetensors file of its weights (``metrics.inception``). Given neither, the
    shipped classifier where it fits the reference images (shape and classes), else one trained on the
    reference's train split and cached for the next call (``metrics.features.domain_features``).

    ``latent``: where a run's codes come from: ``prior`` (its N(0, I)), or ``density[:T]`` for a conditional
    VAE, Gaussians fitted to the encoded reference train images of each class (``latent.density``).
    """
    from augmentor.core.limits import SCORE_IMAGES, check_count

    check_count("--n", n, SCORE_IMAGES)
    density = parse_latent(latent)
    if source not in SOURCES and not source.isidentifier():
        raise UserError(f"--source {source!r}: use {', '.join(SOURCES)} or a source name such as vae or classic")
    from augmentor.core.console import warn
    from augmentor.data.readers import open_dataset
    from augmentor.metrics.features import FEATURES_FIX, default_features_fit, domain_features, load_features
    from augmentor.metrics.inception import INCEPTION_FIX, load_inception

    started = time.perf_counter()
    if n < 2:
        raise UserError(f"--n {n}: FID and KID need at least 2 images")
    if cas and cas_steps < 1:  # else the CAS classifier's own check would name classify train's --steps
        raise UserError(f"--cas-steps {cas_steps}: give at least 1 step (or --no-cas)")
    if cas and not 1 <= cas_seeds <= MAX_CAS_SEEDS:
        raise UserError(f"--cas-seeds {cas_seeds}: give 1 to {MAX_CAS_SEEDS} classifier seeds (or --no-cas)")
    if inception is not None and features_run is not None:
        raise UserError(f"give --features {features_run} or --inception {inception}, not both: one set of features")
    # A wrong weights file fails here, before any data is read or image generated.
    extractor = load_inception(inception) if inception is not None else None
    options = read_options or ReadOptions()
    real = open_dataset(real_src, options)
    pool, train, test = real.train, real.train, real.test
    if test is None:
        # No test split: hold out part of train as the reference; the memorisation pool keeps all of it.
        order = _rng(seed, 1).permutation(len(train))
        held = max(2, min(n, len(train) // 2))
        test, train = train.take(np.sort(order[:held])), train.take(np.sort(order[held:]))
        warn(f"{real_src} has no test split; {held} train images are held out as the real reference")
    # A given feature network is checked before anything is generated, so a wrong --features fails fast. With
    # none given, the shipped classifier is used where it fits the reference images (their shape and classes);
    # elsewhere one is trained on them (or found in the cache), once the images to score are known to fit.
    features: Classifier | InceptionFeatures | None = extractor
    misfit = None
    if features is None and features_run is None:
        misfit = default_features_fit(train)
    if features is None and misfit is None:
        features = load_features(features_run)
    if features is not None:
        features.check_images(train, real_src, INCEPTION_FIX if extractor is not None else FEATURES_FIX)
    fake, kind, labelled = _target(target, baseline, train, n, seed, device, options, source, density)
    if (fake.channels, *fake.size) != (train.channels, *train.size):
        raise UserError(
            f"{target}: images are {_shape(fake)}, the real data ({real_src}) is {_shape(train)}; "
            "convert with --image-size/--channels"
        )
    if features is None:
        features = domain_features(train, real_src, misfit or "no feature classifier fits", device=device)
    if extractor is None and set(features.class_names) != set(train.class_names):
        warn(
            f"the feature classifier {features.run} was trained on other classes than {real_src}'s; "
            "pass --features RUN trained on this data for a domain-true FID/KID"
        )
    if cas and not labelled:
        warn(f"{target}: an unconditional generator has no labels, so there is no CAS; train it --conditional")
    result = score_images(
        fake,
        train,
        test,
        features=features,
        n=n,
        seed=seed,
        device=device,
        cas=cas and labelled,
        cas_steps=cas_steps,
        cas_arch=cas_arch,
        cas_seeds=cas_seeds,
        memorisation_threshold=memorisation_threshold,
        memorisation_pool=pool,
    )
    return {
        "target": "noise" if baseline else str(target),
        "kind": kind,
        "latent": latent,
        "real": real_src,
        **result,
        "seconds": round(time.perf_counter() - started, 2),
    }


def score_images(
    fake: ImageSet,
    train: ImageSet,
    test: ImageSet,
    *,
    features: Classifier | InceptionFeatures | Path | str | None = None,
    n: int = DEFAULT_N,
    seed: int = 0,
    device: str = "auto",
    cas: bool = True,
    cas_steps: int = DEFAULT_CAS_STEPS,
    cas_arch: str = "fast",
    cas_seeds: int = 1,
    memorisation_threshold: float = DEFAULT_MEMORISATION_THRESHOLD,
    memorisation_pool: ImageSet | None = None,
) -> dict[str, Any]:
    """The scores of in-memory ``fake`` images against a real ``train``/``test`` pair (see module doc).

    ``features`` (what FID, F0 and KID are computed in) is a ``Classifier``, a classifier run folder, None for
    the shipped one, or ``metrics.inception.load_inception(FILE)``; diversity and memorisation are in pixels
    and CAS trains its own classifiers, whatever the features: ``cas_seeds`` pairs of them (seeds ``seed``,
    ``seed + 1``, …), the CAS and the real accuracy their means, each pair's gap kept in ``cas_gaps``.
    ``memorisation_pool`` defaults to ``train`` (all of it, not the ``n`` sample).
    """
    from augmentor.classifiers.classifier import Classifier
    from augmentor.classifiers.evaluate import align_classes
    from augmentor.core.device import resolve_device
    from augmentor.data.measures import diversity, nearest_real_distances
    from augmentor.metrics.features import FEATURES_FIX, load_features
    from augmentor.metrics.fid import frechet_distance, kernel_distance
    from augmentor.metrics.inception import INCEPTION_FIX, InceptionFeatures
    from augmentor.metrics.quality import classification_accuracy_score

    if not isinstance(features, Classifier | InceptionFeatures):
        features = load_features(Path(features) if features is not None else None)
    inception = isinstance(features, InceptionFeatures)
    where = resolve_device(device)
    count = min(n, len(fake), len(train), len(test))
    if count < 2:
        raise UserError(f"too few images to score: {len(fake)} to score, {len(train)} train, {len(test)} test")
    if count < n:  # FID grows as the sample shrinks: a score at another n compares with nothing
        from augmentor.core.console import warn

        limits = {"to score": len(fake), "real train": len(train), "real reference": len(test)}
        short = ", ".join(f"{size} {what}" for what, size in limits.items() if size < n)
        warn(f"scoring {count} images, not --n {n}: only {short}; compare only scores at the same n")
    fake_n = _sample(fake, count, seed, 4)
    train_n, test_n = _sample(train, count, seed, 5), _sample(test, count, seed, 6)
    for images, what in ((fake_n, "the images to score"), (train_n, "the real images")):
        features.check_images(images, what, INCEPTION_FIX if inception else FEATURES_FIX)
    features.to(where)
    f_fake, f_train, f_test = (features.features(s) for s in (fake_n, train_n, test_n))
    fid, f0 = frechet_distance(f_train, f_fake), frechet_distance(f_train, f_test)
    kid_mean, kid_std = kernel_distance(f_train, f_fake, seed=seed)
    kid_real_mean, kid_real_std = kernel_distance(f_train, f_test, seed=seed)

    pool = memorisation_pool if memorisation_pool is not None else train
    fake_near = nearest_real_distances(fake_n.images, pool.images, where)
    real_near = nearest_real_distances(test_n.images, train.images, where)
    scores: dict[str, Any] = {
        # Which features, so a score is never compared with one in other features.
        "features": features.description if inception else str(features.run),
        "n": count,
        "seed": seed,
        "device": str(where),
        "fid": fid,
        "f0": f0,
        "fid_ratio": fid / f0 if f0 > 0 else None,
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "kid_real_mean": kid_real_mean,
        "kid_real_std": kid_real_std,
        "diversity_ssim": diversity(fake_n.images, seed=seed),
        "real_diversity_ssim": diversity(train_n.images, seed=seed),
        "memorisation_threshold": memorisation_threshold,
        "memorisation_rate": float((fake_near < memorisation_threshold).mean()),
        "real_memorisation_rate": float((real_near < memorisation_threshold).mean()),
        "nearest_median": float(np.median(fake_near)),
        "real_nearest_median": float(np.median(real_near)),
        "cas": None,
        "real_accuracy": None,
        "cas_steps": cas_steps if cas else None,
        "cas_arch": cas_arch if cas else None,
    }
    if cas:
        try:
            labelled = align_classes(train.class_names, fake_n)
        except UserError:
            raise UserError(
                f"the images to score have classes {fake.class_names}, the real data {train.class_names}; "
                "CAS needs the same classes (pass --no-cas to score without it)"
            ) from None
        few = _too_few_to_train(labelled, "the images to score") or _too_few_to_train(train_n, "the real images")
        if few:
            from augmentor.core.console import warn

            warn(f"no CAS: {few}, and a classifier needs at least 2 of each; score more images, or pass --no-cas")
            scores["cas_steps"] = scores["cas_arch"] = None
            return scores
        # The same architecture, budget and seed on both sides: only the training images differ. One classifier
        # seed moves a CAS by about a point, so several pairs give a gap to within a fraction of one.
        cas_runs, real_runs = [], []
        for k in range(cas_seeds):
            settings = {"steps": cas_steps, "seed": seed + k, "device": device, "arch": cas_arch}
            cas_runs.append(classification_accuracy_score(labelled, test, **settings))
            real_runs.append(classification_accuracy_score(train_n, test, **settings))
        scores["cas"], scores["real_accuracy"] = float(np.mean(cas_runs)), float(np.mean(real_runs))
        scores["cas_seeds"] = cas_seeds
        if cas_seeds > 1:
            scores["cas_gaps"] = [real - made for made, real in zip(cas_runs, real_runs, strict=True)]
    return scores


def _too_few_to_train(images: ImageSet, what: str) -> str:
    """Which class of ``images`` has fewer than 2 of them (as a phrase), or "" when none."""
    counts = np.bincount(images.labels, minlength=len(images.class_names))
    small = [(name, int(count)) for name, count in zip(images.class_names, counts, strict=True) if count < 2]
    if not small:
        return ""
    name, count = small[0]
    return f"class {name!r} has {count} image{'s' if count != 1 else ''} among the {len(images)} of {what}"
