"""Semantic directions in a generator's latent space, found from labelled latent codes.

Codes come from a VAE's encoder (the mean for each train image of ``--data``) or, for a DCGAN (which
has no encoder), from its own latent stream, decoded to measure attributes. Labels are the class
(one direction per class, class vs rest) or an image attribute split at its median.

Methods: ``mean-diff`` (difference of the two groups' mean codes), ``linear`` (the normal of a
logistic regression, as in InterFaceGAN) and ``pca`` (the top principal components, as in GANSpace).
Every direction is fitted on 80% of the codes and scored on the other 20%: accuracy (at the best
threshold on the fitting part) and AUC of the projection onto the unit direction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augmentor.core import jsonio
from augmentor.core.bounded import read_json
from augmentor.core.errors import UserError
from augmentor.core.limits import CODES, check_count
from augmentor.core.outdir import check_output, staged_output
from augmentor.core.runs import refuse_non_finite
from augmentor.generative.generator import Generator, balanced_labels
from augmentor.latent.attributes import get_attribute

METHODS = ("mean-diff", "linear", "pca")
WEIGHTS_NAME = "directions.safetensors"
INFO_NAME = "directions.json"
MAX_PCS = 10


@dataclass
class LabelledCodes:
    """Latent codes with their class labels and, for an attribute, the measured scalar."""

    codes: torch.Tensor  # N×D float32
    labels: np.ndarray  # N class labels
    scalar: np.ndarray | None  # N attribute values (by=attribute)
    class_names: list[str]


@dataclass
class DirectionsResult:
    """The unit directions and their held-out scores."""

    directions: dict[str, torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)


def parse_by(by: str) -> str | None:
    """``class`` → None, ``attribute:NAME`` → NAME (checked)."""
    if by == "class":
        return None
    if by.startswith("attribute:"):
        name = by.split(":", 1)[1]
        get_attribute(name)
        return name
    raise UserError(f"--by {by!r} is unknown; use class or attribute:NAME (e.g. attribute:ink_area)")


def labelled_codes(
    generator: Generator,
    data_src: str | None,
    attribute: str | None,
    *,
    n: int | None,
    seed: int,
    device: str = "auto",
) -> LabelledCodes:
    """Codes and labels: a model with an encoder (VAE) encodes ``data_src``'s train images; a DCGAN samples ``n``."""
    if generator.can_encode:
        if data_src is None:
            raise UserError(f"{generator.where}: its directions are found by encoding real images; give --data SRC")
        from augmentor.data.options import ReadOptions
        from augmentor.data.readers import open_dataset

        real = open_dataset(data_src, ReadOptions()).train
        expected = generator.image_shape
        if tuple(real.images.shape[1:]) != expected:
            raise UserError(
                f"{data_src}: images are {'×'.join(map(str, real.images.shape[1:]))} (C×H×W) but the model takes "
                f"{'×'.join(map(str, expected))}; convert them first (augmentor data export --image-size/--channels)"
            )
        if generator.conditional and list(real.class_names) != list(generator.class_names):
            raise UserError(
                f"{data_src}: classes {', '.join(real.class_names)} differ from the conditional model's "
                f"({', '.join(generator.class_names)})"
            )
        index = np.arange(len(real))
        if n is not None and n < len(real):
            index = np.sort(np.random.default_rng(seed).choice(len(real), n, replace=False))
        images, labels = real.images[index], np.asarray(real.labels[index], dtype=np.int64)
        codes = generator.encode(images, labels, device=device)
        class_names = list(real.class_names)
    else:
        count = n or 2000
        class_names = list(generator.class_names)
        labels = balanced_labels(len(class_names), -(-count // len(class_names)))[:count]
        if not generator.conditional:
            labels = np.zeros(count, dtype=np.int64)
        codes = generator.latents(np.arange(count), seed)
        images = generator.decode(codes, labels, device=device) if attribute else None
    scalar = get_attribute(attribute)(images) if attribute else None
    return LabelledCodes(codes.float().cpu(), labels, scalar, class_names)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve by the rank statistic (Mann–Whitney U), ties given average ranks."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(scores, np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    sorted_values = values[order]
    starts = np.concatenate([[0], np.nonzero(np.diff(sorted_values))[0] + 1])
    ends = np.concatenate([starts[1:], [len(values)]])
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    return ranks


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The cut (predict positive above it) with the highest accuracy on ``scores``."""
    order = np.argsort(scores)
    s, y = scores[order], np.asarray(positive, bool)[order]
    # Cut after position k: negatives are s[:k], positives s[k:]; correct = negatives below + positives above.
    correct = np.concatenate([[0], np.cumsum(~y)]) + np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    k = int(np.argmax(correct))
    if k == 0:
        return float(s[0]) - 1.0
    if k == len(s):
        return float(s[-1]) + 1.0
    return float((s[k - 1] + s[k]) / 2)


def mean_diff(codes: torch.Tensor, positive: np.ndarray) -> torch.Tensor:
    """Mean code of the positives minus that of the negatives, as a unit vector."""
    mask = torch.from_numpy(np.asarray(positive, bool))
    return _unit(codes[mask].mean(0) - codes[~mask].mean(0))


def logistic_normal(codes: torch.Tensor, positive: np.ndarray, l2: float = 1e-3) -> torch.Tensor:
    """The unit normal of a class-balanced, lightly L2-regularised logistic regression (LBFGS)."""
    x = codes.double()
    y = torch.from_numpy(np.asarray(positive, np.float64))
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    xs = (x - mean) / std
    n_pos = float(y.sum())
    pos_weight = torch.tensor((len(y) - n_pos) / max(n_pos, 1.0), dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, y, pos_weight=pos_weight)
        loss = loss + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return _unit((w.detach() / std).float())  # back to the unstandardised code space


def _unit(vector: torch.Tensor) -> torch.Tensor:
    norm = float(vector.norm())
    if not np.isfinite(norm) or norm < 1e-12:
        raise UserError("a direction came out as zero (the two groups have the same codes); use more or other data")
    return (vector / norm).float()


def _score(direction: torch.Tensor, train: tuple, test: tuple) -> dict[str, Any]:
    """Accuracy (best train threshold) and AUC of the projection on the held-out codes."""
    (x_train, y_train), (x_test, y_test) = train, test
    s_train, s_test = (x_train @ direction).numpy(), (x_test @ direction).numpy()
    cut = best_threshold(s_train, y_train)
    accuracy = float(((s_test > cut) == np.asarray(y_test, bool)).mean()) if len(s_test) else float("nan")
    positive = float(np.asarray(y_test, bool).mean()) if len(s_test) else float("nan")
    # The accuracy of always answering the larger group: one class against nine scores 0.9 without a direction.
    majority = max(positive, 1 - positive)
    return {
        "auc": auc(s_test, y_test),
        "accuracy": accuracy,
        "majority_accuracy": majority,
        "n_train": len(s_train),
        "n_test": len(s_test),
    }


def find_directions(
    run: Path,
    data_src: str | None,
    by: str = "class",
    method: str = "mean-diff",
    *,
    n: int | None = None,
    seed: int = 0,
    device: str = "auto",
) -> DirectionsResult:
    """Fit the directions of ``by`` with ``method`` and score each on a held-out 20%."""
    if method not in METHODS:
        raise UserError(f"--method {method!r} is unknown; use one of {', '.join(METHODS)}")
    check_count("--n", n, CODES)
    attribute = parse_by(by)
    generator = Generator.from_run(run)
    data = labelled_codes(generator, data_src, attribute, n=n, seed=seed, device=device)
    count = len(data.codes)
    if count < 10:
        raise UserError(f"only {count} latent codes; directions need at least 10 (give more data or a larger --n)")
    order = np.random.default_rng(seed).permutation(count)
    split = round(0.8 * count)
    train_index, test_index = np.sort(order[:split]), np.sort(order[split:])
    x_train, x_test = data.codes[train_index], data.codes[test_index]

    # Binary targets: (name, positive mask over all codes).
    targets: list[tuple[str, np.ndarray]] = []
    if attribute is None:
        present = np.unique(data.labels[train_index])
        if len(present) < 2:
            raise UserError(
                f"--by class needs at least two classes in the codes; {run} / {data_src} gave "
                f"{len(present)}; use --by attribute:NAME"
            )
        targets = [(data.class_names[k], data.labels == k) for k in present.tolist()]
    else:
        median = float(np.median(data.scalar[train_index]))
        positive = data.scalar > median
        if positive[train_index].all() or not positive[train_index].any():
            raise UserError(f"attribute {attribute} is the same for every image; it cannot define a direction")
        targets = [(attribute, positive)]

    directions: dict[str, torch.Tensor] = {}
    records: list[dict[str, Any]] = []
    if method == "pca":
        centred = x_train - x_train.mean(0)
        _, singular, vh = torch.linalg.svd(centred.double(), full_matrices=False)
        variance = (singular**2).numpy()
        ratios = variance / max(variance.sum(), 1e-12)
        for k in range(min(MAX_PCS, vh.shape[0])):
            component = vh[k].float()
            best: dict[str, Any] | None = None
            for target_name, positive in targets:
                score = _score(component, (x_train, positive[train_index]), (x_test, positive[test_index]))
                sign = 1.0 if not np.isfinite(score["auc"]) or score["auc"] >= 0.5 else -1.0
                if sign < 0:
                    score = _score(-component, (x_train, positive[train_index]), (x_test, positive[test_index]))
                if best is None or score["auc"] > best["auc"]:
                    best = {**score, "label": target_name, "sign": sign}
            assert best is not None
            directions[f"pc{k}"] = component * best.pop("sign")
            records.append({"name": f"pc{k}", **best, "explained_variance": float(ratios[k])})
    else:
        for target_name, positive in targets:
            fit = mean_diff if method == "mean-diff" else logistic_normal
            direction = fit(x_train, positive[train_index])
            directions[target_name] = direction
            records.append(
                {
                    "name": target_name,
                    **_score(direction, (x_train, positive[train_index]), (x_test, positive[test_index])),
                }
            )
    if attribute is not None:
        for record in records:
            projection = (x_test @ directions[record["name"]]).numpy()
            record["corr"] = _corr(projection, data.scalar[test_index])
    info = {
        "run_id": generator.run_id,
        "run": str(run),
        "kind": generator.kind,
        "latent_dim": generator.latent_dim,
        "method": method,
        "by": by,
        "data": data_src,
        "n": count,
        "seed": seed,
        "directions": records,
    }
    if attribute is not None:
        info["median"] = float(np.median(data.scalar[train_index]))
    return DirectionsResult(directions, info)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) < 1e-12 or np.std(b) < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def directions_run(
    run: Path,
    data_src: str | None,
    out: Path,
    *,
    by: str = "class",
    method: str = "mean-diff",
    n: int | None = None,
    seed: int = 0,
    device: str = "auto",
    overwrite: bool = False,
    command: str = "",
) -> DirectionsResult:
    """``augmentor directions``: refuse a taken ``out`` first, then find the directions and write them there."""
    check_output(out, overwrite, source=data_src, reads=[run])  # before any image is encoded or sampled
    result = find_directions(run, data_src, by, method, n=n, seed=seed, device=device)
    write_directions(result, out, overwrite, command)
    return result


def write_directions(result: DirectionsResult, out: Path, overwrite: bool = False, command: str = "") -> Path:
    """``directions.safetensors`` (name → unit float32 vector) and ``directions.json``, written atomically."""
    from safetensors.torch import save_file

    with staged_output(out, overwrite) as staging:
        tensors = {name: vector.float().contiguous() for name, vector in result.directions.items()}
        save_file(tensors, str(staging / WEIGHTS_NAME))
        info = {**result.info, "command": command}
        (staging / INFO_NAME).write_text(jsonio.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return out


def load_directions(folder: Path, generator: Generator) -> dict[str, torch.Tensor]:
    """The directions saved in ``folder``, after checking they were found for ``generator``'s run."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    info_path, weights_path = folder / INFO_NAME, folder / WEIGHTS_NAME
    if not info_path.is_file() or not weights_path.is_file():
        raise UserError(
            f"{folder}: not a directions folder (expected {INFO_NAME} and {WEIGHTS_NAME}; see augmentor directions)"
        )
    try:
        info = read_json(info_path, "a directions info file")
        tensors = load_file(str(weights_path))
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError) as exc:
        raise UserError(f"{folder}: unreadable directions ({exc})") from None
    refuse_non_finite(tensors, weights_path, "run augmentor directions again")
    if info.get("run_id") != generator.run_id:
        raise UserError(
            f"{folder}: directions were found for run {info.get('run_id')!r} ({info.get('run')}), "
            f"not for {generator.run_id!r} ({generator.where}); run augmentor directions on this run"
        )
    for name, vector in tensors.items():
        if vector.shape != (generator.latent_dim,):
            raise UserError(
                f"{folder}: direction {name!r} has shape {tuple(vector.shape)}, not ({generator.latent_dim},)"
            )
        if float(vector.float().norm()) == 0.0:  # no direction at all: an edit along it would divide by zero
            raise UserError(f"{folder}: direction {name!r} is all zeros; run augmentor directions again")
    return {name: vector.float() for name, vector in tensors.items()}
