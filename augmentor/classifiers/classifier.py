"""The ``classify`` commands as library calls: train a run folder, load it, evaluate it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augmentor.classifiers.train import (
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    align_classes,
    check_trainable,
)
from augmentor.core.errors import UserError
from augmentor.core.outdir import check_output
from augmentor.core.runs import load_matching, read_run_config, read_weights, write_run
from augmentor.data.imageset import ImageSet
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset


@dataclass
class LoadedClassifier:
    """A classifier run ready to predict: the model, its config, and its normalisation."""

    model: Any
    config: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return self.config["class_names"]

    def normalisation(self, device: Any) -> tuple[Any, Any]:
        import torch

        mean = torch.tensor(self.config["normalisation"]["mean"], device=device).view(-1, 1, 1)
        std = torch.tensor(self.config["normalisation"]["std"], device=device).view(-1, 1, 1)
        return mean, std


def load_classifier(run: Path) -> LoadedClassifier:
    """Rebuild a classifier from its run folder (architecture from config.json, safetensors weights)."""
    from augmentor.classifiers import create_model

    config = read_run_config(run, kind="classifier")
    args = config["model_args"]
    model = create_model(config["arch"], args["num_classes"], args["in_channels"], args["image_size"])
    load_matching(model, read_weights(run), str(run / "model.safetensors"))
    return LoadedClassifier(model.eval(), config)


def initial_model(init: str, train: ImageSet, arch: str) -> tuple[Any, str]:
    """The model ``--init`` names, with a head for ``train``'s classes; returns (model, arch)."""
    height = train.size[0]
    if init.startswith("torchvision:"):
        spec = init.removeprefix("torchvision:")
        name, _, file = spec.partition("=")
        if not file:
            raise UserError(f"--init {init}: give torchvision:ARCH=FILE.pth, e.g. torchvision:resnet18=r18.pth")
        return _from_torchvision(name, Path(file), train), name
    source = load_classifier(Path(init))
    args = source.config["model_args"]
    if args["in_channels"] != train.channels or args["image_size"] != height:
        raise UserError(
            f"--init {init}: that run takes {args['in_channels']}×{args['image_size']}px images, the data is "
            f"{train.channels}×{height}px; convert with --channels/--image-size"
        )
    model = source.model
    if source.class_names != train.class_names:
        model.replace_head(len(train.class_names))
    return model, source.config["arch"]


def _from_torchvision(name: str, file: Path, train: ImageSet) -> Any:
    import torch

    from augmentor.classifiers import create_model
    from augmentor.classifiers.architectures import load_torchvision_state

    if not file.is_file():
        raise UserError(f"{file}: no such weights file (nothing is downloaded; save torchvision weights locally)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - weights_only refuses anything but tensors: say so
        raise UserError(f"{file}: not a plain torchvision state dict ({str(exc).splitlines()[0]})") from None
    model = create_model(name, len(train.class_names), train.channels, train.size[0])
    skipped = load_torchvision_state(model, state)
    from augmentor.core.console import warn

    if skipped:
        warn(f"{file}: kept the new model's own {', '.join(skipped[:6])} (shapes differ)")
    return model


def train_run(
    src: str,
    config: TrainConfig,
    out: Path,
    *,
    test_src: str | None = None,
    init: str | None = None,
    read_options: ReadOptions | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train on ``src``'s train split, score on ``--test`` (or ``src``'s test split), write the run."""
    from augmentor.classifiers.train import train_classifier
    from augmentor.report.plots import confusion_png, training_curves_png

    check_output(out, overwrite)
    options = read_options or ReadOptions()
    dataset = open_dataset(src, options)
    test = _test_split(test_src, options) if test_src else dataset.test
    check_trainable(dataset.train)
    if test is not None:
        align_classes(dataset.train.class_names, test)
    init_model, arch = initial_model(init, dataset.train, config.arch) if init else (None, config.arch)
    if arch != config.arch:
        from dataclasses import replace

        config = replace(config, arch=arch)
    try:
        result = train_classifier(dataset.train, config, test, init_model=init_model)
    except TrainingDiverged as diverged:
        write_run(
            out,
            config={"kind": "classifier", "arch": config.arch, "status": f"diverged at step {diverged.step}"},
            state_dict=diverged.last_good,
            metrics=[],
            overwrite=overwrite,
        )
        raise UserError(f"{diverged.message}; the last good weights are in {out}") from None
    result.config["source"] = {
        "train": src,
        "test": test_src or (src if test is not None else None),
        "init": init,
    }
    files = {"curves.png": training_curves_png(result.metrics)} if result.metrics else {}
    if result.final is not None:
        files["confusion.png"] = confusion_png(result.final["confusion"], result.config["class_names"])
    write_run(
        out,
        config=result.config,
        state_dict=result.model.state_dict(),
        metrics=result.metrics,
        files=files,
        overwrite=overwrite,
    )
    return result


def eval_run(run: Path, test_src: str, read_options: ReadOptions | None = None) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix of a run on ``test_src`` (its test split if any)."""
    import torch

    from augmentor.classifiers.evaluate import evaluate_tensors
    from augmentor.core.device import resolve_device, to_device

    loaded = load_classifier(run)
    test = align_classes(loaded.class_names, _test_split(test_src, read_options or ReadOptions()), "model")
    channels, height, width = loaded.config["image_shape"]
    if (test.channels, *test.size) != (channels, height, width):
        raise UserError(
            f"{test_src}: images are {test.channels}×{test.size[0]}×{test.size[1]}, the model takes "
            f"{channels}×{height}×{width}; convert with --channels/--image-size"
        )
    device = resolve_device("auto")
    model = loaded.model.to(device)
    images, labels = to_device(test, device)
    mean, std = loaded.normalisation(device)
    with torch.no_grad():
        scores = evaluate_tensors(model, images, labels, mean, std, len(loaded.class_names))
    scores["per_class"] = dict(zip(loaded.class_names, scores["per_class"], strict=True))
    return {
        "run": str(run),
        "test": test_src,
        "images": len(test),
        "class_names": loaded.class_names,
        **scores,
    }


def _test_split(src: str, options: ReadOptions) -> ImageSet:
    """A dataset used as test data: its test split when it has one, else all of it."""
    dataset = open_dataset(src, options)
    return dataset.test if dataset.test is not None else dataset.train
