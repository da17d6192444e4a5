"""What ``augmentor data info`` reports: classes, counts per split, size, channels, duplicates."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from augmentor.data.imageset import Dataset, ImageSet
from augmentor.data.measures import (
    MIRROR_MIN_IMAGES,
    MIRROR_SIGNAL,
    MIRROR_THRESHOLD,
    flip_sensitive,
    mirror_asymmetry,
)

MAX_DUPLICATE_EXAMPLES = 5


def pixel_hash(image) -> str:
    """A digest of an image's pixels and shape: equal digests mean identical images."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(repr(image.shape).encode())
    return digest.hexdigest()


def find_duplicates(dataset: Dataset) -> list[list[str]]:
    """Groups of origins whose pixels are identical (within and across splits)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for split, image_set in dataset.splits.items():
        for image, prov in zip(image_set.images, image_set.provenance, strict=True):
            groups[pixel_hash(image)].append(f"{split}:{prov.get('origin')}")
    return [members for members in groups.values() if len(members) > 1]


def dataset_info(dataset: Dataset) -> dict:
    """A JSON-ready description of ``dataset``."""
    duplicates = find_duplicates(dataset)
    cross_split = [g for g in duplicates if len({m.split(":", 1)[0] for m in g}) > 1]
    train = dataset.train
    splits = {}
    for name, image_set in dataset.splits.items():
        splits[name] = {
            "total": len(image_set),
            "per_class": image_set.class_counts(),
            "per_class_and_source": image_set.source_counts(),
        }
    return {
        "name": dataset.name,
        "format": dataset.kind,
        "classes": train.class_names,
        "image_size": list(train.size),
        "channels": train.channels,
        "splits": splits,
        "duplicates": {
            "groups": len(duplicates),
            "extra_copies": sum(len(g) - 1 for g in duplicates),
            "across_splits": len(cross_split),
            "examples": duplicates[:MAX_DUPLICATE_EXAMPLES],
        },
        "skipped": [{"file": f, "reason": r} for f, r in dataset.skipped],
        "mirror": mirror_report(train),
    }


def mirror_report(train: ImageSet) -> dict:
    """The flip-safety hint: classes whose mirror images differ from their own (digits, text, shoes that all
    face one way), where random flips show the model images unlike the data."""
    scores = mirror_asymmetry(train)
    flagged = flip_sensitive(scores)
    hint = None
    if flagged:
        hint = (
            f"flips change how {len(flagged)} of {len(scores)} classes look ({', '.join(flagged[:6])}"
            f"{', …' if len(flagged) > 6 else ''}): consider --no-flip (classic, classify train, gain) or "
            "--no-flip-classes"
        )
    elif not scores and len(train):  # silence here would read as "flips are safe"
        hint = (
            f"too few images to judge flip safety (it needs {MIRROR_MIN_IMAGES} per class); digits, text and "
            "objects that all face one way change under flips: then use --no-flip (classic, classify train, gain)"
        )
    thresholds = {"asymmetry": MIRROR_THRESHOLD, "signal_to_noise": MIRROR_SIGNAL}
    return {"classes": scores, "thresholds": thresholds, "flip_sensitive": flagged, "hint": hint}
