"""Built-in pipelines for small grey or colour images (Fashion-MNIST-sized and up).

Geometry pads with black (fill 0): the usual background of small centred objects. No preset holds
a colour-only transform, so every preset works on 1- and 3-channel images alike.
"""

from __future__ import annotations

# albumentations is imported by the builders, not here: its import takes seconds and most of a GB, and a
# hostile pipeline file (which only needs the preset names to be told apart) is refused before it.
PRESET_NAMES = ("light", "medium", "heavy", "randaugment")


def _light() -> list:
    from augmentor.classic.albu import BORDER_CONSTANT, A

    return [
        A.Affine(
            rotate=(-8, 8),
            scale=(0.95, 1.05),
            translate_percent=(-0.05, 0.05),
            border_mode=BORDER_CONSTANT,
            fill=0,
            p=0.7,
        ),
        A.HorizontalFlip(p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.3),
    ]


def _medium() -> list:
    from augmentor.classic.albu import BORDER_CONSTANT, A

    return [
        A.Affine(
            rotate=(-15, 15),
            scale=(0.9, 1.1),
            translate_percent=(-0.08, 0.08),
            shear=(-5, 5),
            border_mode=BORDER_CONSTANT,
            fill=0,
            p=0.8,
        ),
        A.HorizontalFlip(p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.OneOf(
            [A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 0.8)), A.GaussNoise(std_range=(0.02, 0.06))],
            p=0.3,
        ),
        A.CoarseDropout(
            num_holes_range=(1, 2), hole_height_range=(0.1, 0.2), hole_width_range=(0.1, 0.2), fill=0, p=0.3
        ),
    ]


def _heavy() -> list:
    from augmentor.classic.albu import BORDER_CONSTANT, A

    return [
        A.Affine(
            rotate=(-25, 25),
            scale=(0.8, 1.2),
            translate_percent=(-0.12, 0.12),
            shear=(-10, 10),
            border_mode=BORDER_CONSTANT,
            fill=0,
            p=0.9,
        ),
        A.HorizontalFlip(p=0.5),
        A.OneOf(
            [
                A.ElasticTransform(alpha=20, sigma=4, border_mode=BORDER_CONSTANT, fill=0),
                A.GridDistortion(num_steps=4, distort_limit=0.2, border_mode=BORDER_CONSTANT, fill=0),
            ],
            p=0.3,
        ),
        A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
        A.RandomGamma(gamma_limit=(70, 140), p=0.3),
        A.OneOf(
            [
                A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 1.0)),
                A.MotionBlur(blur_limit=(3, 3)),
                A.GaussNoise(std_range=(0.03, 0.1)),
            ],
            p=0.5,
        ),
        A.CoarseDropout(
            num_holes_range=(1, 4), hole_height_range=(0.1, 0.25), hole_width_range=(0.1, 0.25), fill=0, p=0.5
        ),
    ]


def _randaugment() -> list:
    """RandAugment's shape (Cubuk et al. 2020) in albumentations: two ops per image, drawn uniformly from
    torchvision's RandAugment list less its colour-only op, each at up to 9/10 of torchvision's largest change
    (timm's ``rand-m9-n2``; a uniform draw up to it rather than a fixed magnitude with a random sign). No flip:
    a candidate for the classic side of a study, tuned like the others by its share."""
    from augmentor.classic.albu import BORDER_CONSTANT, A

    m = 0.9
    geometry = {"border_mode": BORDER_CONSTANT, "fill": 0, "p": 1.0}
    ops = [
        A.NoOp(p=1.0),
        A.Affine(shear={"x": (-17 * m, 17 * m), "y": 0}, **geometry),
        A.Affine(shear={"x": 0, "y": (-17 * m, 17 * m)}, **geometry),
        A.Affine(translate_percent={"x": (-0.45 * m, 0.45 * m), "y": 0}, **geometry),
        A.Affine(translate_percent={"x": 0, "y": (-0.45 * m, 0.45 * m)}, **geometry),
        A.Affine(rotate=(-30 * m, 30 * m), **geometry),
        A.RandomBrightnessContrast(brightness_limit=0.9 * m, contrast_limit=0, p=1.0),
        A.RandomBrightnessContrast(brightness_limit=0, contrast_limit=0.9 * m, p=1.0),
        A.Sharpen(alpha=(0.1, 0.9 * m), lightness=(1.0, 1.0), p=1.0),
        A.Posterize(num_bits=(round(8 - 4 * m), 8), p=1.0),
        A.Solarize(threshold_range=(1 - m, 1.0), p=1.0),
        A.AutoContrast(p=1.0),
        A.Equalize(p=1.0),
    ]
    return [A.SomeOf(ops, n=2, replace=False, p=1.0)]


_BUILDERS = {"light": _light, "medium": _medium, "heavy": _heavy, "randaugment": _randaugment}


def build_preset(name: str):
    """A fresh ``A.Compose`` of the named preset."""
    from augmentor.classic.albu import A

    return A.Compose(_BUILDERS[name]())
