"""ImageFolder reader: ``root/<class>/*.png``, or ``root/train/<class>`` and ``root/test/<class>``."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from augmentor.core.bounded import read_stdin_lines
from augmentor.core.console import warn
from augmentor.core.errors import UserError
from augmentor.core.names import check_class_name
from augmentor.data.files import ImageFile, decode_files
from augmentor.data.imageset import Dataset, ImageSet
from augmentor.data.manifest import read_manifest_provenance
from augmentor.data.options import ReadOptions, follows_symlinks

SPLIT_NAMES = ("train", "test")
# Files an OS or editor leaves behind; everything else inside a class folder must be an image.
_IGNORED_FILES = {"Thumbs.db", "desktop.ini"}


def _visible_dirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:  # an unreadable folder: one line, not a bare PermissionError
        reason = (exc.strerror or type(exc).__name__).lower()
        raise UserError(f"{folder}: cannot list the folder ({reason}); make it readable") from None


def is_split_layout(root: Path) -> bool:
    """True when ``root`` holds ``train/`` (and maybe ``test/``) whose children are class folders."""
    train = root / "train"
    return train.is_dir() and any(_visible_dirs(train))


def class_name_of(folder: Path) -> str:
    """A class folder's name as a class name: in Unicode NFC, so ``café`` typed on Linux and ``café`` written
    by macOS (decomposed) are one name in labels, manifests and output folders."""
    return unicodedata.normalize("NFC", folder.name)


def read_imagefolder(root: Path, options: ReadOptions) -> Dataset:
    """Read an ImageFolder tree; class names are the sorted folder names (as torchvision does), in NFC."""
    if not any(root.iterdir()):
        raise UserError(f"{root}: the folder is empty; put one sub-folder of images per class in it")
    provenance = read_manifest_provenance(root)
    if is_split_layout(root):
        others = [p.name for p in _visible_dirs(root) if p.name not in SPLIT_NAMES]
        if others:
            warn(f"{root}: ignoring folders beside train/ and test/: {', '.join(others)}")
        split_roots = {name: root / name for name in SPLIT_NAMES if (root / name).is_dir()}
    else:
        split_roots = {"train": root}
    folders = _visible_dirs(split_roots["train"])
    if not folders:
        raise UserError(f"{root}: no class folders found; expected {root}/<class>/<image files>")
    for folder in folders:
        check_class_name(folder.name, f"{folder}")
    check_distinct_forms([folder.name for folder in folders], split_roots["train"])
    class_names = [class_name_of(folder) for folder in folders]
    splits: dict[str, ImageSet] = {}
    skipped: list[tuple[str, str]] = []
    for split, split_root in split_roots.items():
        names = [class_name_of(p) for p in _visible_dirs(split_root)]
        if split != "train" and names != class_names:
            extra = sorted(set(names) - set(class_names))
            missing = sorted(set(class_names) - set(names))
            raise UserError(
                f"{split_root}: its classes differ from train/ (extra: {extra or 'none'}, "
                f"missing: {missing or 'none'}); make both splits hold the same class folders"
            )
        files = _list_files(root, split_root, class_names)
        image_set, bad = decode_files(files, class_names, options, provenance)
        splits[split] = image_set
        skipped += bad
    return Dataset(name=root.name, splits=splits, kind="imagefolder", skipped=skipped)


def check_distinct_forms(class_names: list[str], where: Path) -> None:
    """Refuse two class folders whose names differ only in Unicode form (``é`` composed and decomposed):
    they look the same everywhere and would be two classes of one name."""
    seen: dict[str, str] = {}
    for name in class_names:
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            raise UserError(
                f"{where}: the class folders {seen[key]!r} and {name!r} have the same name in two Unicode forms; "
                "merge them into one folder"
            )
        seen[key] = name


def _inside(root: Path, path: Path) -> None:
    """Refuse a file or class folder that links outside the dataset (a dataset folder reads its own images),
    unless the user said links are meant (``--follow-symlinks``)."""
    target = path.resolve()
    if target != root and root not in target.parents and not follows_symlinks():
        raise UserError(
            f"{path}: links to {target}, outside {root}; copy the images into the dataset folder, or pass "
            "--follow-symlinks if the link is meant"
        )


def _list_files(root: Path, split_root: Path, class_names: list[str]) -> list[ImageFile]:
    files: list[ImageFile] = []
    real_root = root.resolve()
    folders = {class_name_of(folder): folder for folder in _visible_dirs(split_root)}
    for label, name in enumerate(class_names):
        class_dir = folders[name]
        _inside(real_root, class_dir)
        try:
            listed = list(class_dir.iterdir())
        except OSError as exc:  # an unreadable class folder (permissions, a vanished mount)
            reason = (exc.strerror or type(exc).__name__).lower()
            raise UserError(
                f"{class_dir}: cannot list the class folder ({reason}); make it readable or remove it"
            ) from None
        entries = sorted(p for p in listed if not p.name.startswith(".") and p.name not in _IGNORED_FILES)
        entries = [p for p in entries if not p.is_dir()]
        for entry in entries:
            if entry.is_symlink():
                _inside(real_root, entry)
        if not entries:
            raise UserError(f"{class_dir}: the class folder has no images; add images or remove the folder")
        files += [ImageFile(p, label, p.relative_to(root).as_posix()) for p in entries]
    return files


def read_path_list(lines: list[str], options: ReadOptions) -> Dataset:
    """Read images named one per line (``-`` on the command line); the parent folder is the class."""
    paths = [Path(line.strip()) for line in lines if line.strip()]
    if not paths:
        raise UserError("no image paths on standard input; pipe one path per line, e.g. from `find`")
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: no such file (from the path list on standard input)")
    for path in paths:
        check_class_name(path.parent.name or ".", f"{path} (from the path list on standard input)")
    class_names = sorted({class_name_of(p.parent) for p in paths})
    check_distinct_forms(sorted({p.parent.name for p in paths}), Path("the path list on standard input"))
    index = {name: i for i, name in enumerate(class_names)}
    files = [ImageFile(p, index[class_name_of(p.parent)], str(p)) for p in paths]
    image_set, bad = decode_files(files, class_names, options)
    warnings = held_out_paths_warning(paths)
    for message in warnings:
        warn(message)
    return Dataset(name="stdin", splits={"train": image_set}, kind="path-list", skipped=bad, warnings=warnings)


# Folder names that mark held-out images: a path list read as training data should not hold them.
HELD_OUT_NAMES = frozenset({"test", "t10k", "val", "valid", "validation", "holdout", "heldout"})


READ_AS_TRAINING = (
    "are read as training images of their class; list only the training split (e.g. find DATASET/train -name '*.png')"
)


def held_out_paths_warning(paths: list[Path], consequence: str = READ_AS_TRAINING) -> list[str]:
    """A leakage warning when some of ``paths`` lie under a test/ or val/ folder and the command makes
    training data of them (a path list makes every image a training image of its parent folder's class:
    ``find DATASET -name '*.png'`` takes the test split along)."""
    held = [p for p in paths if HELD_OUT_NAMES & {part.lower() for part in p.parent.parent.parts}]
    if not held:
        return []
    folder = next(part for part in held[0].parent.parent.parts if part.lower() in HELD_OUT_NAMES)
    listed = f"{len(held)} of {len(paths)} listed images lie under a {folder}/ folder (e.g. {held[0]})"
    return [f"leakage: {listed} and {consequence}"]


def read_stdin(options: ReadOptions) -> Dataset:
    """Read the path list from standard input."""
    return read_path_list(read_stdin_lines(), options)
