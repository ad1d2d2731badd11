"""Data-set registry and splits: the bundled and procedural sets; downloads.py adds torchvision's.

Every set becomes float32 ``(N, C, H, W)`` pixels in [0, 1] with int64 labels, split into
train/val/test stratified by class (70/10/20, or the official test split plus 10 % of the
official train split as val), resized to a square side, with train-split mean/std. A set may
carry extra label sets beside its classes (shapes: colour and size), for multi-task learning.

References:
    - torchvision's model registry (``models/_api.py``), the shape of ``engine.registry``.
    - E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI 1998
      (scikit-learn ``load_digits``): https://archive.ics.uci.edu/dataset/80
    - G. B. Huang et al., "Labeled Faces in the Wild", 2007 (scikit-image ``lfw_subset``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from engine import limits
from engine.device import generator
from engine.errors import UserInputError
from engine.data.images import resize_batch
from engine.data.shapes import EXTRA_LABELS, SHAPE_CLASSES, render_labelled_shapes
from engine.registry import Registry

Progress = Callable[[float, str], None]

DATA_ENV = "VISIONEXPLORER_DATA"  # folder for downloaded sets; default ~/.cache/visionexplorer/data
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test, per class
VAL_FRACTIONS = (0.9, 0.1)  # train, val carved from an official train split
STD_FLOOR = 1e-6  # keeps normalization finite on constant channels


@dataclass
class Split:
    x: Tensor  # (N, C, H, W) float32 in [0, 1]
    y: Tensor  # (N,) int64
    labels: dict[str, Tensor] = field(default_factory=dict)  # extra label sets: name -> (N,) int64

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: Tensor | slice) -> Split:
        """The images at `index` with their labels, the extra label sets included."""
        return Split(self.x[index], self.y[index], {name: y[index] for name, y in self.labels.items()})

    def __repr__(self) -> str:
        extra = f", labels={list(self.labels)}" if self.labels else ""
        return f"Split(n={len(self)}, image={tuple(self.x.shape[1:])}{extra})"


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
    label_names: dict[str, list[str]] = field(default_factory=dict)  # extra label set -> its class names

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


def relabel(dataset: Dataset, labels: str) -> Dataset:
    """`dataset` with its extra label set `labels` as the classes (a single-task net for that label)."""
    if labels not in dataset.label_names:
        have = ", ".join(dataset.label_names) or "none"
        raise UserInputError(f"{dataset.title} has no label set {labels!r}; its extra label sets: {have}")

    def swap(split: Split) -> Split:
        rest = {name: y for name, y in split.labels.items() if name != labels}
        return Split(split.x, split.labels[labels], rest)

    rest = {name: names for name, names in dataset.label_names.items() if name != labels}
    return dataclasses.replace(dataset, title=f"{dataset.title}, {labels}", train=swap(dataset.train),
                               val=swap(dataset.val), test=swap(dataset.test),
                               class_names=list(dataset.label_names[labels]), label_names=rest)


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
    labels: dict[str, Tensor] = field(default_factory=dict)  # extra label sets, (N,) each
    label_names: dict[str, list[str]] = field(default_factory=dict)


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


# The bundled and procedural sets first (they work offline), then downloads.py's torchvision sets.
DATASETS: Registry[_Entry] = Registry("data set")


def register(info: DatasetInfo, *, options: dict[str, _IntOption] | None = None) -> Callable:
    """Decorator adding a loader ``fn(*, seed, root, progress, **options) -> _Raw``."""
    return DATASETS.register(info.name, lambda loader: _Entry(info, loader, dict(options or {})))


def names() -> list[str]:
    return DATASETS.names()


def info(name: str) -> DatasetInfo:
    """A set's metadata, without loading it."""
    return DATASETS.get(name).info


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
    whole = Split(raw.x, raw.y, dict(raw.labels))
    if raw.test is None:
        train_idx, val_idx, test_idx = _stratified(raw.y, SPLIT_FRACTIONS, gen)
        test = whole.take(test_idx)
    else:
        train_idx, val_idx = _stratified(raw.y, VAL_FRACTIONS, gen)
        test = raw.test
    channels = raw.x.shape[1]
    report(0.85, f"Resizing to {image_size}×{image_size}")
    splits = [whole.take(i) for i in (train_idx, val_idx)] + [test]
    splits = [Split(_resize(s.x, image_size), s.y, s.labels) for s in splits]
    var, mean = torch.var_mean(splits[0].x, dim=(0, 2, 3), correction=0)
    std = var.sqrt().clamp_min(STD_FLOOR)
    return Dataset(
        name=name, title=title, train=splits[0], val=splits[1], test=splits[2],
        class_names=list(raw.class_names), channels=channels, image_size=image_size,
        mean=tuple(mean.tolist()), std=tuple(std.tolist()), skipped=list(skipped or []),
        label_names={name: list(names) for name, names in raw.label_names.items()},
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
    entry = DATASETS.get(name)
    opts = _check_options(name, entry, options)
    size = entry.info.native_size if image_size is None else _as_int(
        "image_size", image_size, limits.MIN_IMAGE_SIZE, limits.MAX_IMAGE_SIZE)
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
    x, y, extra = render_labelled_shapes(num_images, seed=seed)
    return _Raw(x, y, list(SHAPE_CLASSES), labels=extra,
                label_names={name: list(names) for name, names in EXTRA_LABELS.items()})
