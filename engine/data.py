"""Data-set registry: bundled, procedural and downloadable image sets, user folders, photos.

Every set becomes float32 ``(N, C, H, W)`` pixels in [0, 1] with int64 labels, split into
train/val/test stratified by class (70/10/20, or the official test split plus 10 % of the
official train split as val), resized to a square side, with train-split mean/std.

References:
    - torchvision's model registry (``models/_api.py``), the shape of this registry.
    - E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI 1998
      (scikit-learn ``load_digits``): https://archive.ics.uci.edu/dataset/80
    - G. B. Huang et al., "Labeled Faces in the Wild", 2007 (scikit-image ``lfw_subset``).
    - Y. LeCun et al., "Gradient-based learning applied to document recognition", 1998 (MNIST).
    - H. Xiao et al., "Fashion-MNIST", 2017: https://arxiv.org/abs/1708.07747
    - A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009 (CIFAR-10).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from engine import limits
from engine.device import generator
from engine.errors import UserInputError
from engine.images import decode_image, resize_batch, safe_extract_zip, to_model_input
from engine.shapes import SHAPE_CLASSES, render_shapes

Progress = Callable[[float, str], None]

DATA_ENV = "VISIONEXPLORER_DATA"  # folder for downloaded sets; default ~/.cache/visionexplorer/data
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 256  # pixels, square side after resizing
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test, per class
VAL_FRACTIONS = (0.9, 0.1)  # train, val carved from an official train split
STD_FLOOR = 1e-6  # keeps normalization finite on constant channels


@dataclass
class Split:
    x: Tensor  # (N, C, H, W) float32 in [0, 1]
    y: Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split(n={len(self)}, image={tuple(self.x.shape[1:])})"


@dataclass
class Dataset:
    name: str  # registry key or "upload:<name>"
    title: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    channels: int
    image_size: int  # square side after resizing
    mean: tuple[float, ...]  # per channel, of the train split
    std: tuple[float, ...]
    skipped: list[str] = field(default_factory=list)  # user files that could not be used, with why

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        shown = ", ".join(self.class_names[:10]) + (", …" if self.num_classes > 10 else "")
        return (
            f"Dataset({self.name!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, {self.num_classes} classes [{shown}], "
            f"{self.channels}×{self.image_size}×{self.image_size})"
        )


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    description: str
    channels: int
    native_size: int
    num_classes: int
    num_images: int
    source: str  # "bundled" | "procedural" | "download"


@dataclass
class _Raw:
    """A loader's result before splitting and resizing."""

    x: Tensor  # (N, C, H, W) float32 in [0, 1]
    y: Tensor  # (N,) int64
    class_names: list[str]
    test: Split | None = None  # an official test split, kept as it is


@dataclass(frozen=True)
class _IntOption:
    default: int
    low: int
    high: int


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    loader: Callable[..., _Raw]
    options: dict[str, _IntOption]


_REGISTRY: dict[str, _Entry] = {}


def register(info: DatasetInfo, *, options: dict[str, _IntOption] | None = None) -> Callable:
    """Decorator adding a loader ``fn(*, seed, root, progress, **options) -> _Raw``."""

    def decorator(fn: Callable[..., _Raw]) -> Callable[..., _Raw]:
        if info.name in _REGISTRY:
            raise ValueError(f"data set {info.name!r} is already registered")
        _REGISTRY[info.name] = _Entry(info, fn, dict(options or {}))
        return fn

    return decorator


def names() -> list[str]:
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise UserInputError(f"unknown data set {name!r}; choose one of: {', '.join(names())}")
    return _REGISTRY[name]


def info(name: str) -> DatasetInfo:
    """A set's metadata, without loading it."""
    return _entry(name).info


def default_root() -> Path:
    """Where downloaded sets live: ``$VISIONEXPLORER_DATA`` or ~/.cache/visionexplorer/data."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "visionexplorer" / "data")


def _as_int(param: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserInputError(f"{param} must be a whole number between {low} and {high}; got {value!r}")
    if not low <= value <= high:
        raise UserInputError(f"{param} must be between {low} and {high}; got {value}")
    return int(value)


def _check_options(name: str, entry: _Entry, options: dict[str, object]) -> dict[str, int]:
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise UserInputError(f"unknown option(s) {', '.join(unknown)} for data set {name!r}; valid: {valid}")
    return {
        key: _as_int(key, options.get(key, opt.default), opt.low, opt.high)
        for key, opt in entry.options.items()
    }


def _no_progress(fraction: float, message: str) -> None:
    pass


# ----------------------------------------------------------------------------- splitting
def _stratified(y: Tensor, fractions: Sequence[float], gen: torch.Generator) -> list[Tensor]:
    """Indices of each part. Per class, part k > 0 gets round(fraction_k × n) and part 0 the
    rest, so every class keeps at least one example in part 0 (train)."""
    parts: list[list[Tensor]] = [[] for _ in fractions]
    for label in torch.unique(y).tolist():
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        counts = [math.floor(f * len(idx) + 0.5) for f in fractions[1:]]
        if len(idx) - sum(counts) < 1:
            counts = [0] * len(counts)  # a class this small goes to train only
        counts = [len(idx) - sum(counts), *counts]
        for part, chunk in zip(parts, idx.split(counts)):
            part.append(chunk)
    out = []
    for part in parts:
        idx = torch.cat(part)
        out.append(idx[torch.randperm(len(idx), generator=gen)])  # mix classes for display
    return out


def _finish(raw: _Raw, *, name: str, title: str, image_size: int, seed: int,
            report: Progress, skipped: list[str] | None = None) -> Dataset:
    """Split, check memory, resize, and compute train statistics."""
    gen = generator(seed)
    if raw.test is None:
        train_idx, val_idx, test_idx = _stratified(raw.y, SPLIT_FRACTIONS, gen)
        test = Split(raw.x[test_idx], raw.y[test_idx])
    else:
        train_idx, val_idx = _stratified(raw.y, VAL_FRACTIONS, gen)
        test = raw.test
    channels = raw.x.shape[1]
    report(0.85, f"Resizing to {image_size}×{image_size}")
    splits = [Split(_resize(raw.x[i], image_size), raw.y[i]) for i in (train_idx, val_idx)]
    splits.append(Split(_resize(test.x, image_size), test.y))
    var, mean = torch.var_mean(splits[0].x, dim=(0, 2, 3), correction=0)
    std = var.sqrt().clamp_min(STD_FLOOR)
    return Dataset(
        name=name, title=title, train=splits[0], val=splits[1], test=splits[2],
        class_names=list(raw.class_names), channels=channels, image_size=image_size,
        mean=tuple(mean.tolist()), std=tuple(std.tolist()), skipped=list(skipped or []),
    )


def _check_memory(num_images: int, channels: int, image_size: int, title: str) -> None:
    total = num_images * channels * image_size**2 * 4  # float32
    if total > limits.MAX_DATASET_BYTES:
        raise UserInputError(
            f"image_size {image_size} would make {title} {total / 1024**3:.1f} GB in memory; "
            f"the limit is {limits.MAX_DATASET_BYTES / 1024**3:.0f} GB — choose a smaller image_size"
        )


def _resize(x: Tensor, image_size: int) -> Tensor:
    if x.shape[-2:] == (image_size, image_size):
        return x.contiguous()
    return torch.cat([resize_batch(chunk, image_size) for chunk in x.split(4096)])


def load(name: str, *, image_size: int | None = None, seed: int = 0, root: str | Path | None = None,
         progress: Progress | None = None, **options: object) -> Dataset:
    """Load a registered set, split it by ``seed`` and resize it to ``image_size`` (default: native).

    Args:
        root: folder for downloaded sets (default :func:`default_root`).
        progress: called as ``progress(fraction, message)`` between stages.
    """
    entry = _entry(name)
    opts = _check_options(name, entry, options)
    size = entry.info.native_size if image_size is None else _as_int(
        "image_size", image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    seed = _as_int("seed", seed, 0, 2**63 - 1)
    _check_memory(opts.get("num_images", entry.info.num_images), entry.info.channels, size, entry.info.title)
    report = progress or _no_progress
    report(0.0, f"Loading {entry.info.title}")
    raw = entry.loader(seed=seed, root=Path(root) if root else default_root(),
                       progress=lambda f, m: report(0.8 * f, m), **opts)
    report(0.8, "Splitting into train/val/test")
    dataset = _finish(raw, name=name, title=entry.info.title, image_size=size, seed=seed, report=report)
    report(1.0, "Done")
    return dataset


# ----------------------------------------------------------------------------- bundled sets
@register(DatasetInfo("digits", "Digits (8×8)", "1,797 handwritten digits from scikit-learn, "
                      "8×8 pixels with 17 gray levels.", 1, 8, 10, 1797, "bundled"))
def _digits(*, seed: int, root: Path, progress: Progress) -> _Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # (N, H, W) -> (N, 1, H, W)
    return _Raw(x, torch.from_numpy(bunch.target).long(), [str(d) for d in range(10)])


@register(DatasetInfo("faces", "Faces vs non-faces (25×25)", "200 gray 25×25 crops from scikit-image: "
                      "100 faces (Labeled Faces in the Wild) and 100 non-face patches.",
                      1, 25, 2, 200, "bundled"))
def _faces(*, seed: int, root: Path, progress: Progress) -> _Raw:
    from skimage.data import lfw_subset

    x = torch.from_numpy(lfw_subset().astype(np.float32))[:, None]  # (N, H, W) -> (N, 1, H, W)
    half = len(x) // 2  # the first half are faces (scikit-image documentation)
    y = torch.cat([torch.zeros(half), torch.ones(len(x) - half)]).long()
    return _Raw(x, y, ["face", "non-face"])


@register(DatasetInfo("shapes", "Shapes (32×32)", "Procedural colour shapes — "
                      + ", ".join(SHAPE_CLASSES) + " — with random size, position, rotation, "
                      "colours and noise; works offline.", 3, 32, 8, 12000, "procedural"),
          options={"num_images": _IntOption(12000, 80, 60000)})
def _shapes(*, seed: int, root: Path, progress: Progress, num_images: int) -> _Raw:
    progress(0.1, f"Drawing {num_images:,} shapes")
    x, y = render_shapes(num_images, seed=seed)
    return _Raw(x, y, list(SHAPE_CLASSES))


# ----------------------------------------------------------------------------- torchvision sets
def _offline_message(cls: type, title: str, root: Path, exc: BaseException) -> str:
    if hasattr(cls, "resources") and hasattr(cls, "mirrors"):  # the MNIST family
        folder = root / cls.__name__ / "raw"
        urls = [f"{cls.mirrors[0]}{filename}" for filename, _ in cls.resources]
    else:  # CIFAR: one archive in the root folder
        folder, urls = root, [cls.url]
    return (
        f"{title} is not in {folder} and could not be downloaded ({type(exc).__name__}: "
        f"{' '.join(str(exc).split())}). "
        f"On a machine with internet, download {', '.join(urls)} and put the file(s) in {folder} "
        f"(keep their names; they are unpacked on first use), or set {DATA_ENV} to a folder that "
        f"has them. The bundled data sets digits, faces and shapes work offline."
    )


def _pixels(data: object) -> Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W) in [0, 1], in one pass."""
    arr = torch.as_tensor(np.asarray(data))
    arr = arr[:, None] if arr.dim() == 3 else arr.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return arr.float().div_(255.0)


def _open_or_download(cls: type, root: Path, *, train: bool):
    """Files already in ``root`` load without touching the network."""
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:  # "Dataset not found or corrupted"
        return cls(str(root), train=train, download=True)


def _torchvision_set(cls_name: str, title: str, root: Path, progress: Progress,
                     class_names: list[str] | None = None) -> _Raw:
    from torchvision import datasets

    cls = getattr(datasets, cls_name)
    progress(0.05, f"Looking for {title} in {root}; downloading it if it is missing")
    try:
        root.mkdir(parents=True, exist_ok=True)
        train, test = (_open_or_download(cls, root, train=flag) for flag in (True, False))
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; torchvision wraps some
        raise UserInputError(_offline_message(cls, title, root, exc)) from exc
    progress(0.7, "Converting to tensors")
    test_split = Split(_pixels(test.data), torch.as_tensor(test.targets).long())
    return _Raw(_pixels(train.data), torch.as_tensor(train.targets).long(),
                class_names or list(train.classes), test=test_split)


@register(DatasetInfo("mnist", "MNIST digits (28×28)", "70,000 handwritten digits, 28×28 gray; "
                      "official 60,000/10,000 train/test split. Downloads once.", 1, 28, 10, 70000, "download"))
def _mnist(*, seed: int, root: Path, progress: Progress) -> _Raw:
    return _torchvision_set("MNIST", "MNIST", root, progress, [str(d) for d in range(10)])


@register(DatasetInfo("fashion_mnist", "Fashion-MNIST (28×28)", "70,000 Zalando clothing images, "
                      "28×28 gray, 10 classes. Downloads once.", 1, 28, 10, 70000, "download"))
def _fashion_mnist(*, seed: int, root: Path, progress: Progress) -> _Raw:
    return _torchvision_set("FashionMNIST", "Fashion-MNIST", root, progress)


@register(DatasetInfo("cifar10", "CIFAR-10 (32×32)", "60,000 small colour photos of 10 object "
                      "classes. Downloads once (170 MB).", 3, 32, 10, 60000, "download"))
def _cifar10(*, seed: int, root: Path, progress: Progress) -> _Raw:
    return _torchvision_set("CIFAR10", "CIFAR-10", root, progress)


# ----------------------------------------------------------------------------- user folders
def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _unwrap(root: Path) -> Path:
    """Step into a single top-level wrapper folder (my_data/cats, my_data/dogs)."""
    entries = [e for e in root.iterdir() if not _hidden(e.name)]
    if len(entries) == 1 and entries[0].is_dir():
        if any(e.is_dir() and not _hidden(e.name) for e in entries[0].iterdir()):
            return entries[0]
    return root


def _folder_from_tree(root: Path, *, image_size: int, seed: int, name: str, report: Progress) -> Dataset:
    root = _unwrap(root)
    classes: dict[str, list[Path]] = {}
    skipped: list[str] = []
    for entry in sorted(root.iterdir()):
        if _hidden(entry.name):
            continue
        if entry.is_dir():
            classes[entry.name] = sorted(
                p for p in entry.rglob("*")
                if p.is_file() and not any(_hidden(part) for part in p.relative_to(root).parts))
        else:
            skipped.append(f"{entry.name}: not inside a class folder")
    found = ", ".join(f"{c} ({len(f)} files)" for c, f in classes.items()) or "no class folders"
    if len(classes) < 2 or any(not files for files in classes.values()):
        raise UserInputError(
            f"an image folder needs at least 2 class folders, each with at least 1 image; found {found}")
    items = [(label, path) for label, files in enumerate(classes.values()) for path in files]
    if len(items) > limits.MAX_ZIP_FILES:
        raise UserInputError(f"the folder has {len(items):,} files; at most {limits.MAX_ZIP_FILES:,} are allowed")
    _check_memory(len(items), 3, image_size, f"{len(items):,} images")
    images, labels = [], []
    step = max(1, len(items) // 50)
    for i, (label, path) in enumerate(items):
        if i % step == 0:
            report(0.05 + 0.75 * i / len(items), f"Decoding image {i + 1:,} of {len(items):,}")
        try:
            image = decode_image(path, name=path.relative_to(root).as_posix())
        except UserInputError as exc:
            skipped.append(str(exc))
            continue
        images.append(to_model_input(image, channels=image.shape[0], image_size=image_size))
        labels.append(label)
    if not images:
        first = skipped[len(skipped) - len(items)]  # the first decoding failure
        raise UserInputError(f"none of the {len(items)} files could be decoded as an image; {first}")
    y = torch.tensor(labels, dtype=torch.long)
    empty = [c for i, c in enumerate(classes) if not (y == i).any()]
    if empty:
        raise UserInputError(f"every class needs at least 1 decodable image; none in: {', '.join(empty)}")
    channels = 3 if any(im.shape[1] == 3 for im in images) else 1
    x = torch.cat([im.expand(-1, channels, -1, -1) for im in images])  # gray repeated into colour
    report(0.8, "Splitting into train/val/test")
    dataset = _finish(_Raw(x, y, list(classes)), name=f"upload:{name}", title=name,
                      image_size=image_size, seed=seed, report=report, skipped=skipped)
    report(1.0, "Done")
    return dataset


def load_folder(source: bytes | str | Path, *, image_size: int = 32, seed: int = 0,
                name: str = "my_data", progress: Progress | None = None) -> Dataset:
    """A data set from an ImageFolder layout (one folder per class): zip bytes, a zip file or a folder.

    A single wrapper folder at the top is stepped into. Files that do not decode are listed in
    ``skipped``; images become 3 channels if any is colour (else 1) and ``image_size`` squares.
    """
    size = _as_int("image_size", image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
    seed = _as_int("seed", seed, 0, 2**63 - 1)
    report = progress or _no_progress
    if isinstance(source, (bytes, bytearray, memoryview)) or Path(source).is_file():
        with tempfile.TemporaryDirectory(prefix="visionexplorer-") as tmp:
            report(0.0, "Unpacking the zip")
            safe_extract_zip(source, Path(tmp))
            return _folder_from_tree(Path(tmp), image_size=size, seed=seed, name=name, report=report)
    if not Path(source).is_dir():
        raise UserInputError(f"source must be zip bytes, a zip file or a folder; got {str(source)!r}")
    return _folder_from_tree(Path(source), image_size=size, seed=seed, name=name, report=report)


# ----------------------------------------------------------------------------- photos
_SKLEARN_PHOTOS = {"china": "china.jpg", "flower": "flower.jpg"}
_SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "horse",
                   "immunohistochemistry", "moon", "page", "rocket", "text")  # bundled, no download


def photo_names() -> list[str]:
    return sorted([*_SKLEARN_PHOTOS, *_SKIMAGE_PHOTOS])


def load_photo(name: str) -> Tensor:
    """A bundled photo as float32 ``(C, H, W)`` in [0, 1]; C = 1 for grayscale, 3 for colour."""
    if name in _SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        arr = load_sample_image(_SKLEARN_PHOTOS[name])
    elif name in _SKIMAGE_PHOTOS:
        import skimage.data

        arr = getattr(skimage.data, name)()
    else:
        raise UserInputError(f"unknown photo {name!r}; choose one of: {', '.join(photo_names())}")
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.floating):
        pixels = arr.astype(np.float32)
    else:
        pixels = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    x = torch.from_numpy(np.clip(pixels, 0.0, 1.0))
    if x.dim() == 2:
        return x[None].contiguous()  # (H, W) -> (1, H, W)
    if x.shape[-1] == 4:  # RGBA: composite over white
        x = x[..., :3] * x[..., 3:] + (1 - x[..., 3:])
    return x.permute(2, 0, 1).contiguous()  # (H, W, 3) -> (3, H, W)
