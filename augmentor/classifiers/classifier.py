"""The ``Classifier`` (one trained classifier and every use of it) and the ``classify`` commands as library calls.

Training returns a ``Classifier``, ``Classifier.from_run`` loads the same object, and gates, FID/KID features,
CAS, inversion's feature loss, ``classify eval`` and the gain experiment all use it. Loading and predicting
never import the training module.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import torch

from augmentor.classifiers.evaluate import align_classes, confusion_scores
from augmentor.core import jsonio
from augmentor.core.bounded import read_json
from augmentor.core.errors import UserError
from augmentor.core.outdir import check_output
from augmentor.core.runs import CONFIG_NAME, claim_run_folder, load_matching, read_run_config, read_weights, write_run
from augmentor.data.imageset import ImageSet
from augmentor.data.options import ReadOptions
from augmentor.data.readers import open_dataset

if TYPE_CHECKING:
    from augmentor.classifiers.architectures import ClassifierNet
    from augmentor.classifiers.mixing import SyntheticPool
    from augmentor.classifiers.train import TrainConfig
    from augmentor.training.loop import TrainingDiverged

BATCH = 1024
Images = np.ndarray | torch.Tensor | ImageSet  # uint8 N×C×H×W
_CONVERT = "convert them with --channels/--image-size"


class Classifier:
    """A trained classifier: its network, run record (``config``), class names, image shape and normalisation.

    Images go in as uint8 N×C×H×W (numpy, torch or an ``ImageSet``), in batches, on the classifier's device;
    results come back on the CPU. A classifier fresh from training also carries its ``metrics`` and ``final``
    test scores; one loaded from a folder knows its ``run``.
    """

    def __init__(
        self,
        model: ClassifierNet,
        config: dict[str, Any],
        *,
        run: Path | None = None,
        metrics: list[dict[str, Any]] | None = None,
        final: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.run = run
        self.metrics = metrics if metrics is not None else []
        self.final = final
        # The one place the record's normalisation becomes tensors (C×1×1, beside the weights).
        device = next(model.parameters()).device
        normalisation = config["normalisation"]
        self.mean = torch.tensor(normalisation["mean"], device=device).view(-1, 1, 1)
        self.std = torch.tensor(normalisation["std"], device=device).view(-1, 1, 1)
        # --tta: every prediction averages the image's and its mirror's class probabilities (trained with --tta).
        training = config.get("training")  # checked by read_run_config when loaded; a record from training here
        self.tta = isinstance(training, dict) and training.get("tta") is True

    @classmethod
    def from_run(cls, run: Path | str) -> Classifier:
        """Rebuild a classifier from its run folder (architecture from config.json, safetensors weights), on the CPU."""
        from augmentor.classifiers.registry import create_model

        run = Path(run)
        config = read_run_config(run, kind="classifier")
        args = config["model_args"]
        model = create_model(config["arch"], args["num_classes"], args["in_channels"], args["image_size"])
        load_matching(model, read_weights(run), str(run / "model.safetensors"))
        return cls(model.eval(), config, run=run)

    @property
    def arch(self) -> str:
        """The registry name of the network's architecture."""
        return self.config["arch"]

    @property
    def class_names(self) -> list[str]:
        """Class names in label order."""
        return self.config["class_names"]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images the network takes."""
        channels, height, width = (int(v) for v in self.config["image_shape"])
        return channels, height, width

    @property
    def num_features(self) -> int:
        """Length of a ``features`` vector (the head's input)."""
        return int(self.model.head.in_features)

    @property
    def device(self) -> torch.device:
        """Where the network and normalisation are; inputs are moved there batch by batch."""
        return self.mean.device

    def to(self, device: str | torch.device) -> Classifier:
        """Move the network and normalisation to ``device`` (``auto`` picks CUDA when present); returns self."""
        from augmentor.core.device import resolve_device

        where = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.model.to(where)
        self.mean, self.std = self.mean.to(where), self.std.to(where)
        return self

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images on the classifier's device → the network's input (0..1, standardised per channel)."""
        return self.standardise(images.float() / 255)

    def standardise(self, pixels: torch.Tensor) -> torch.Tensor:
        """Float 0..1 pixels → the network's input; differentiable, for optimising images or codes."""
        return (pixels - self.mean) / self.std

    def check_images(self, images: Images, what: str = "images", fix: str = _CONVERT) -> None:
        """Refuse images of another shape than the network takes, with ``fix`` saying what to do."""
        shape = (images.channels, *images.size) if isinstance(images, ImageSet) else tuple(images.shape[1:])
        if tuple(int(v) for v in shape) != self.image_shape:
            which = f"the classifier {self.run}" if self.run is not None else "the classifier"
            raise UserError(
                f"{what}: images are {'×'.join(map(str, shape))}, {which} takes "
                f"{'×'.join(map(str, self.image_shape))}; {fix}"
            )

    def _batches(self, images: Images) -> Iterator[torch.Tensor]:
        """uint8 batches on the device; an array is copied over one batch at a time."""
        self.check_images(images)
        array = images.images if isinstance(images, ImageSet) else images
        if array.dtype != (torch.uint8 if isinstance(array, torch.Tensor) else np.uint8):
            raise TypeError(f"a Classifier takes uint8 images, got {array.dtype}")
        for start in range(0, len(array), BATCH):
            batch = array[start : start + BATCH]
            if isinstance(batch, np.ndarray):
                # IDX data is a read-only view of the file's bytes; torch wants a writable array to wrap.
                batch = torch.from_numpy(batch if batch.flags.writeable else batch.copy())
            yield batch.to(self.device, non_blocking=True)

    def _logits(self, images: Images) -> Iterator[torch.Tensor]:
        """Logits per batch: bf16 autocast on CUDA, channels_last input (as in training); with ``tta`` the log of
        the mean probability over the image and its mirror."""
        self.model.eval()
        cuda = self.device.type == "cuda"
        for batch in self._batches(images):
            inputs = self.normalise(batch).contiguous(memory_format=torch.channels_last)
            if self.tta:  # the image and its mirror in one forward pass (eval-mode BatchNorm: rows independent)
                inputs = torch.cat([inputs, inputs.flip(-1)])
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = self.model(inputs)
            if self.tta:  # the log of the mean probability of the two: softmax then gives that mean
                both = logits.float().log_softmax(1).view(2, len(batch), -1)
                logits = torch.logsumexp(both, 0) - math.log(2)
            yield logits

    @torch.inference_mode()
    def predict(self, images: Images) -> torch.Tensor:
        """The predicted label of each image (int64 N)."""
        return torch.cat([torch.empty(0, dtype=torch.int64), *(x.argmax(1).cpu() for x in self._logits(images))])

    @torch.inference_mode()
    def proba(self, images: Images, temperature: float = 1.0) -> torch.Tensor:
        """Class probabilities (float32 N×K, each row sums to 1); ``temperature`` > 1 softens them."""
        if not temperature > 0:
            raise UserError(f"--temperature {temperature:g}: give a number above 0, e.g. 2")
        empty = torch.empty(0, len(self.class_names))
        return torch.cat([empty, *((x.float() / temperature).softmax(1).cpu() for x in self._logits(images))])

    @torch.inference_mode()
    def features(self, images: Images) -> torch.Tensor:
        """The head's input (``forward_features``) per image, float64 N×F; computed in float32 on every device."""
        self.model.eval()
        out = [torch.empty(0, self.num_features, dtype=torch.float64)]
        for batch in self._batches(images):
            # No autocast: bf16 would shift the statistics FID compares.
            inputs = self.normalise(batch).contiguous(memory_format=torch.channels_last)
            out.append(self.model.forward_features(inputs).double().cpu())
        return torch.cat(out)

    def evaluate(self, test: ImageSet) -> dict[str, Any]:
        """Accuracy, per-class accuracy (by name) and confusion matrix on ``test``, its classes matched by name."""
        test = align_classes(self.class_names, test, "model")
        scores = confusion_scores(self.predict(test), torch.tensor(test.labels), len(self.class_names))
        scores["per_class"] = dict(zip(self.class_names, scores["per_class"], strict=True))
        return scores


def initial_model(init: str, train: ImageSet, arch: str) -> tuple[ClassifierNet, str]:
    """The model ``--init`` names, with a head for ``train``'s classes; returns (model, arch)."""
    height = train.size[0]
    if init.startswith("torchvision:"):
        spec = init.removeprefix("torchvision:")
        name, _, file = spec.partition("=")
        if not file:
            raise UserError(f"--init {init}: give torchvision:ARCH=FILE.pth, e.g. torchvision:resnet18=r18.pth")
        return _from_torchvision(name, Path(file), train), name
    source = Classifier.from_run(Path(init))
    channels, size, _ = source.image_shape
    if channels != train.channels or size != height:
        raise UserError(
            f"--init {init}: that run takes {channels}×{size}px images, the data is "
            f"{train.channels}×{height}px; convert with --channels/--image-size"
        )
    model = source.model
    if source.class_names != train.class_names:
        model.replace_head(len(train.class_names))
    return model, source.arch


def _from_torchvision(name: str, file: Path, train: ImageSet) -> ClassifierNet:
    from augmentor.classifiers.architectures import load_torchvision_state
    from augmentor.classifiers.registry import create_model
    from augmentor.core.console import warn

    if not file.is_file():
        raise UserError(f"{file}: no such weights file (nothing is downloaded; save torchvision weights locally)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - weights_only refuses anything but tensors: say so
        raise UserError(f"{file}: not a plain torchvision state dict ({str(exc).splitlines()[0]})") from None
    model = create_model(name, len(train.class_names), train.channels, train.size[0])
    skipped = load_torchvision_state(model, state)
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
    synthetic_src: str | None = None,
    synthetic_share: float = 0.5,
    synthetic_weight: float = 1.0,
    teacher: str | None = None,
    temperature: float = 2.0,
    teacher_share: float = 0.5,
    val_fraction: float = 0.0,
    resume: bool = False,
    should_stop: Callable[[int], bool] | None = None,
) -> Classifier:
    """Train on ``src``'s train split, score on ``--test`` (or ``src``'s test split), write the run.

    With ``val_fraction``, that share of every class of the train split is held out as validation data,
    scored along the way and used to choose the weights kept (``config.keep``); test never chooses.

    With ``synthetic_src`` (e.g. an ``expand`` output), its synthetic images are mixed into every batch at
    ``synthetic_share``, the budget still counted on the real images (``classifiers.mixing``); a ``teacher`` run
    labels them as ``gain``'s ``@soft`` arms are labelled (``SoftLabels``).

    The run folder holds a resumable checkpoint while training (``classifiers.train``); an interrupted run
    raises ``TrainingInterrupted`` and ``resume=True`` continues it in ``out``, with its own settings (arguments
    left at their defaults take the run's values; one that differs is refused), bit-identically on the CPU.
    ``config.json`` and ``model.safetensors`` appear when training is done.
    """
    from augmentor.classifiers.train import check_trainable, read_train_state, resumed_config, train_classifier
    from augmentor.distributed.context import current
    from augmentor.training.loop import TrainingDiverged

    main = current().is_main  # under torchrun every rank trains, rank 0 alone writes
    state = None
    asked_sources = {
        "test": test_src,
        "init": init,
        "synthetic": synthetic_src,
        "synthetic_share": synthetic_share,
        "synthetic_weight": synthetic_weight,
        **{"teacher": teacher, "temperature": temperature, "teacher_share": teacher_share},
        "val_fraction": val_fraction,
    }
    _check_start(src, out, asked_sources, resume=resume, overwrite=overwrite, main=main)
    # The run folder is claimed (flock) by rank 0 for as long as it writes there: a resume claims it at once, a
    # new run once its data is read (claiming creates the folder, which must not exist while SRC is read).
    with contextlib.ExitStack() as claim:
        if resume and main:
            claim.enter_context(claim_run_folder(out))
        if resume:  # the folder and the settings are checked before the dataset is read (which can take long)
            state = read_train_state(out, tensors=False)
            config = resumed_config(config, state.meta["config"], out)
            saved_sources = _resumed_sources(out, asked_sources, state.meta["source"])
            test_src, init, synthetic_src = saved_sources["test"], saved_sources["init"], saved_sources["synthetic"]
            synthetic_share, synthetic_weight = saved_sources["synthetic_share"], saved_sources["synthetic_weight"]
            teacher, temperature, teacher_share = SoftLabels.settings(saved_sources)
            val_fraction = saved_sources["val_fraction"]
        options = read_options or ReadOptions()
        dataset = open_dataset(src, options)
        test = _test_split(test_src, options) if test_src else dataset.test
        train, validation = dataset.train, None
        if val_fraction:
            from augmentor.data.subset import split_fraction

            train, validation = split_fraction(dataset.train, val_fraction, config.seed)
        check_trainable(train)
        if test is not None:
            align_classes(train.class_names, test)
        soft = SoftLabels(teacher, temperature, teacher_share) if teacher is not None else None
        soft_record = {"teacher": teacher, "temperature": temperature, "teacher_share": teacher_share} if soft else {}
        pool = synthetic_pool(synthetic_src, train, options, synthetic_share, synthetic_weight, soft)
        init_model = None
        if state is not None:
            _check_resumed_data(out, state.meta, src, train, test, validation, pool)
            _check_not_finished(out, state.meta, config, len(train), pool is not None)
            state = read_train_state(out)
        else:
            init_model, arch = initial_model(init, train, config.arch) if init else (None, config.arch)
            if arch != config.arch:
                config = replace(config, arch=arch)
            if main:
                claim.enter_context(claim_run_folder(out))
                check_output(out, overwrite, source=src)  # again: another run may have filled it meanwhile
                if overwrite:
                    _empty_folder(out)  # what --overwrite replaces goes now: checkpoints are written in place
        sources = {"train": src, "test": test_src, "init": init, "synthetic": synthetic_src}
        sources.update(synthetic_share=synthetic_share, synthetic_weight=synthetic_weight, val_fraction=val_fraction)
        sources.update(soft_record)
        info = {"source": sources, "reading": options.flags()}  # for --resume's checks and messages
        try:
            classifier = train_classifier(
                train,
                config,
                test,
                init_model=init_model,
                synthetic=pool,
                validation=validation,
                checkpoint_dir=out,
                resume=state,
                should_stop=should_stop,
                state_info=info,
            )
        except TrainingDiverged as diverged:
            _keep_last_good(out, config, diverged, main)
        classifier.config["source"] = {
            "train": src,
            "test": test_src or (src if test is not None else None),
            "init": init,
            "synthetic": synthetic_src,
            **soft_record,
            "val_fraction": val_fraction or None,
        }
        if main:
            _write_trained(out, classifier)
        return classifier


def _check_start(src: str, out: Path, asked: dict[str, Any], *, resume: bool, overwrite: bool, main: bool) -> None:
    """Refuse what cannot start: a teacher with nothing to label, a resume with --overwrite or of no folder, a
    new run over an interrupted one or a non-empty ``out`` without --overwrite."""
    if asked["teacher"] is not None and asked["synthetic"] is None:
        raise UserError(f"--teacher {asked['teacher']}: it labels the --synthetic images; give --synthetic DIR too")
    if asked["teacher"] is not None:  # a wrong path fails here, before the data is read
        from augmentor.core.runs import read_run_config

        try:
            read_run_config(Path(asked["teacher"]), "classifier")
        except UserError as exc:
            raise UserError(f"--teacher {exc.message}") from None
    if resume:
        if overwrite:
            raise UserError(f"{out}: --resume continues the run in it, --overwrite replaces it; give one of them")
        if not out.is_dir():
            raise UserError(f"{out}: no such run folder to resume; start it with --out {out} without --resume")
        return
    if main and not overwrite:
        from augmentor.training.checkpoint import refuse_interrupted

        refuse_interrupted(out, "classifier")
    check_output(out, overwrite, source=src)


def _resumed_sources(out: Path, asked: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
    """The run's own data and source settings for a resume; a given one that differs is refused (it would be
    silently ignored)."""
    from augmentor.training.resume import was_given

    for name, value in asked.items():
        if value is None or not was_given(name, value, _SOURCE_DEFAULTS.get(name)) or value == saved.get(name):
            continue
        flag = "--" + name.replace("_", "-")
        raise UserError(
            f"{out}: --resume goes on with the run's own data and settings, and {flag} {value} differs "
            f"from its {saved.get(name)}; drop {flag} or start a new run"
        )
    return saved


def _keep_last_good(out: Path, config: TrainConfig, diverged: TrainingDiverged, main: bool) -> NoReturn:
    """A diverged run: its last good weights replace its checkpoints in ``out`` (rank 0), then the error."""
    if not main:
        raise UserError(diverged.message) from None
    write_run(
        out,
        config={"kind": "classifier", "arch": config.arch, "status": f"diverged at step {diverged.step}"},
        state_dict=diverged.last_good,
        metrics=[],
        overwrite=True,  # the folder holds this run's checkpoints: a diverged run is not resumed
    )
    raise UserError(f"{diverged.message}; the last good weights are in {out}") from None


def _write_trained(out: Path, classifier: Classifier) -> None:
    """The finished run's files: config, weights, metrics, its curves and confusion pictures."""
    from augmentor.report.plots import confusion_png, training_curves_png

    files = {"curves.png": training_curves_png(classifier.metrics)} if classifier.metrics else {}
    if classifier.final is not None:
        files["confusion.png"] = confusion_png(classifier.final["confusion"], classifier.class_names)
    config, state_dict = in_name_order(classifier.config, classifier.model.state_dict())
    _write_finished(out, config, state_dict, classifier.metrics, files)
    classifier.run = out


def in_name_order(config: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """A classifier's record and weights with its classes in sorted-name order: output k is the k-th name in
    code-point order, the index torchvision's ``ImageFolder`` and Hugging Face's ``class_encode_column`` give a
    class, whatever order the training data listed them in (Fashion-MNIST's own starts with T-shirt_top).
    Only the head's rows move; every consumer here matches classes by name, so nothing else changes."""
    names = list(config["class_names"])
    order = sorted(range(len(names)), key=names.__getitem__)
    config = {**config, "class_names": [names[i] for i in order], "class_order": "sorted by name"}
    if order == list(range(len(names))):
        return config, state_dict
    index = torch.tensor(order)
    state = dict(state_dict)
    for key in ("head.weight", "head.bias"):
        if key in state:
            state[key] = state[key].index_select(0, index.to(state[key].device))
    return config, state


_SOURCE_DEFAULTS = {
    "synthetic_share": 0.5,
    "synthetic_weight": 1.0,
    "temperature": 2.0,
    "teacher_share": 0.5,
    "val_fraction": 0.0,
}


def _check_resumed_data(
    run: Path,
    meta: dict[str, Any],
    src: str,
    train: ImageSet,
    test: ImageSet | None,
    validation: ImageSet | None,
    pool: SyntheticPool | None,
) -> None:
    """Refuse a resume on other images than the run's, naming which set differs."""
    from augmentor.classifiers.train import _fingerprints
    from augmentor.data.imageset import fingerprint

    saved = meta["fingerprints"]
    found = {"train": fingerprint(train), **_fingerprints(test, validation, pool)}
    reading = " ".join(meta.get("reading") or []) or "no reading flags"
    where = {
        "train": f"{src}'s training images",
        "validation": f"{src}'s validation images",
        "test": "the test images",
        "synthetic": "the --synthetic images",
    }
    for name in ("train", "validation", "test", "synthetic"):
        if found[name] != saved.get(name):
            raise UserError(
                f"{run}: {where[name]} differ from the ones the run was trained with (dataset fingerprint); "
                f"resume with the same data, read as the run read it ({reading}), or start a new run"
            )


def _check_not_finished(run: Path, meta: dict[str, Any], config: TrainConfig, images: int, mixing: bool) -> None:
    """Refuse to resume a run that has already trained for the budget asked (and written its results)."""
    from augmentor.classifiers.train import budget_steps

    steps = meta["steps"] if mixing else budget_steps(config, images, min(config.batch_size, images))
    try:
        done = read_json(run / CONFIG_NAME, "a run config")["training"]["steps"] == meta["step"]
    except (UserError, KeyError, TypeError):
        done = False  # killed while writing its results: resuming writes them
    if meta["step"] >= steps and done:
        on = (
            "a run with --synthetic keeps its budget"
            if mixing
            else "raise --steps (or --epochs) to train on (the learning-rate schedule is re-laid over the new budget)"
        )
        raise UserError(f"{run}: already finished at step {meta['step']}; {on}, or start a new run with --init {run}")


def _empty_folder(folder: Path) -> None:
    """Remove what ``folder`` holds, keeping the folder (its claim is a lock on it)."""
    import shutil

    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _write_finished(
    out: Path, config: dict[str, Any], state_dict: dict[str, torch.Tensor], metrics: list, files: dict[str, bytes]
) -> None:
    """The finished run's files, written in place beside its checkpoint, each atomically; ``config.json`` last,
    so a folder with it is complete (``read_run_config`` wants it and the weights)."""
    from safetensors.torch import save

    from augmentor import __version__
    from augmentor.core.outdir import write_file_atomic
    from augmentor.core.runs import METRICS_NAME, RUN_FORMAT_VERSION, WEIGHTS_NAME

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    write_file_atomic(out / WEIGHTS_NAME, save(tensors, metadata={"format": "pt"}))
    write_file_atomic(out / METRICS_NAME, "".join(jsonio.dumps(m) + "\n" for m in metrics).encode())
    for name, data in files.items():
        write_file_atomic(out / name, data)
    document = {"format_version": RUN_FORMAT_VERSION, "augmentor_version": __version__, **config}
    write_file_atomic(out / CONFIG_NAME, (jsonio.dumps(document, indent=2) + "\n").encode())


@dataclass(frozen=True)
class SoftLabels:
    """Synthetic images labelled by a teacher classifier run, as ``gain``'s ``@soft`` arms are."""

    teacher: str  # a classifier run folder
    temperature: float = 2.0  # of the teacher's softmax
    share: float = 0.5  # of the teacher's probabilities in a label (the rest: the intended class)

    @staticmethod
    def settings(sources: dict[str, Any]) -> tuple[str | None, float, float]:
        """(teacher, temperature, share) as a run's recorded sources hold them (runs before --teacher: none)."""
        return sources.get("teacher"), sources.get("temperature", 2.0), sources.get("teacher_share", 0.5)

    def targets(self, images: ImageSet, intended: np.ndarray, class_names: list[str]) -> np.ndarray:
        """``share`` × the teacher's probabilities (in ``class_names``' order) + the rest on ``intended``."""
        from augmentor.classifiers.mixing import soft_targets

        teacher = Classifier.from_run(Path(self.teacher))
        missing = sorted(set(class_names) - set(teacher.class_names))
        if missing:
            raise UserError(
                f"--teacher {self.teacher}: it was trained without classes {missing}; give a classifier trained on "
                "the same classes (e.g. classify train on the real images alone)"
            )
        teacher.check_images(images, "the --synthetic images")
        proba = teacher.to("auto").proba(images, temperature=self.temperature).numpy()
        columns = [teacher.class_names.index(name) for name in class_names]
        return soft_targets(proba[:, columns], intended, self.share)


def synthetic_pool(
    src: str | None,
    real: ImageSet,
    options: ReadOptions,
    share: float,
    weight: float,
    soft: SoftLabels | None = None,
) -> SyntheticPool | None:
    """The synthetic images of ``src`` (those its manifest does not mark real; all of a plain folder),
    labelled by class name onto ``real``'s classes (mixed images on their recorded mix), or by ``soft``'s
    teacher, as a pool mixed in at ``share``."""
    from augmentor.classifiers.mixing import SyntheticPool
    from augmentor.synthetic.mixing_sources import targets_onto

    if src is None:
        return None
    images = open_dataset(src, options).train
    synthetic = [i for i, record in enumerate(images.provenance) if record.get("source") != "real"]
    if synthetic:  # an expand output holds its real images too: those are the real set's business
        images = images.take(synthetic)
    if images.images.shape[1:] != real.images.shape[1:]:
        raise UserError(
            f"{src}: synthetic images are {'×'.join(map(str, images.images.shape[1:]))}, the training images "
            f"{'×'.join(map(str, real.images.shape[1:]))}; pass --image-size / --channels to convert both"
        )
    unknown = sorted(set(images.class_names) - set(real.class_names))
    if unknown:
        raise UserError(f"{src}: classes {unknown} are not in the training set; synthetic images need its classes")
    labels = np.array([real.class_names.index(n) for n in images.class_names], np.int64)[images.labels]
    # mixup/cutmix images train on the mix their manifest records, as gain and study trained them
    targets = targets_onto(images.provenance, labels, real.class_names, f"{src}/manifest.jsonl")
    if soft is not None:
        targets = soft.targets(images, targets, real.class_names)
    return SyntheticPool(images.images, targets, share, weight)


def eval_run(run: Path, test_src: str, read_options: ReadOptions | None = None) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix of a run on ``test_src`` (its test split if any)."""
    classifier = Classifier.from_run(run)
    test = _test_split(test_src, read_options or ReadOptions())
    classifier.check_images(test, test_src)
    scores = classifier.to("auto").evaluate(test)
    return {
        "run": str(run),
        "test": test_src,
        "images": len(test),
        "class_names": classifier.class_names,
        **scores,
    }


def _test_split(src: str, options: ReadOptions) -> ImageSet:
    """A dataset used as test data: its test split when it has one, else all of it."""
    dataset = open_dataset(src, options)
    return dataset.test if dataset.test is not None else dataset.train
