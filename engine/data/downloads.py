"""Data sets torchvision downloads (MNIST, Fashion-MNIST, CIFAR-10), with a clear offline message.

Files already in the data folder load without the network; offline, the message names the files
and the folder to put them in.

References:
    - Y. LeCun et al., "Gradient-based learning applied to document recognition", 1998 (MNIST).
    - H. Xiao et al., "Fashion-MNIST", 2017: https://arxiv.org/abs/1708.07747
    - A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009 (CIFAR-10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from engine.data.sets import DATA_ENV, DatasetInfo, Progress, Split, _Raw, register
from engine.errors import UserInputError


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
