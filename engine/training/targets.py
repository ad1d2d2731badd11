"""Training targets: integer labels or class probabilities, MixUp and CutMix, and the labels of extra heads.

A target is either integer labels (B,) or probabilities (B, K) that sum to 1 per row. Cross-entropy
takes both (`F.cross_entropy` accepts probabilities: −Σ_k p_k log softmax(s)_k); accuracy on a
probability target counts the argmax as the label. MixUp blends two images and their one-hot
labels with λ ~ Beta(α, α); CutMix pastes a box of the second image whose area is 1 − λ.

References:
    Zhang et al. 2017, "mixup: Beyond Empirical Risk Minimization", arXiv 1710.09412.
    Yun et al. 2019, "CutMix", arXiv 1905.04899.
    Szegedy et al. 2015, "Going Deeper with Convolutions" (auxiliary classifiers), arXiv 1409.4842.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import UserInputError

MIXINGS = ("none", "mixup", "cutmix")


def hard_labels(target: Tensor) -> Tensor:
    """Integer labels (B,): the labels themselves, or the most probable class of a probability target."""
    return target if target.ndim == 1 else target.argmax(1)


def is_soft(target: Tensor) -> bool:
    return target.ndim == 2


def head_classes(mapping: list[int] | None, num_classes: int, head: str) -> int:
    """How many classes a head predicts: the data set's, or as many as its class mapping names."""
    if mapping is None:
        return num_classes
    if len(mapping) != num_classes or any(not isinstance(c, int) or c < 0 for c in mapping):
        raise UserInputError(f"head {head!r} targets must give one class index ≥ 0 for each of the "
                             f"{num_classes} classes; got {mapping}")
    if len(set(mapping)) < 2:
        raise UserInputError(f"head {head!r} targets must name at least 2 classes; got {mapping}")
    return max(mapping) + 1


def map_target(target: Tensor, mapping: Tensor | None) -> Tensor:
    """A head's target: class c becomes mapping[c]; a probability target adds up the probabilities per new class."""
    if mapping is None:
        return target
    if not is_soft(target):
        return mapping[target]
    # (B, K) @ (K, K') -> (B, K'): each original class's probability goes to its new class
    return target @ F.one_hot(mapping, int(mapping.max()) + 1).to(target.dtype)


class Mixer:
    """MixUp or CutMix of a batch, drawing from the run's own generators."""

    def __init__(self, kind: str, *, alpha: float, num_classes: int, seed: int):
        if kind not in MIXINGS:
            raise UserInputError(f"mixing must be one of {', '.join(MIXINGS)}; got {kind!r}")
        if not alpha > 0:
            raise UserInputError(f"mixing alpha must be > 0; got {alpha}")
        self.kind, self.alpha, self.num_classes = kind, alpha, num_classes
        self._rng = np.random.default_rng(seed)  # torch's Beta takes no generator; numpy's does

    def __call__(self, x: Tensor, target: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(mixed images, probability targets (B, K))."""
        probs = target if is_soft(target) else F.one_hot(target, self.num_classes).to(x.dtype)
        partner = torch.randperm(len(x), generator=generator).to(x.device)
        lam = float(self._rng.beta(self.alpha, self.alpha))
        if self.kind == "mixup":
            mixed = lam * x + (1 - lam) * x[partner]
        else:
            mixed, lam = _cutmix(x, x[partner], lam, self._rng)
        return mixed, lam * probs + (1 - lam) * probs[partner]


def _cutmix(x: Tensor, other: Tensor, lam: float, rng: np.random.Generator) -> tuple[Tensor, float]:
    """Paste a box of `other` covering about 1 − λ of the image; λ becomes the exact share kept."""
    height, width = x.shape[-2:]
    cut = math.sqrt(1 - lam)
    box_h, box_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
    left, right = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
    mixed = x.clone()
    mixed[..., top:bottom, left:right] = other[..., top:bottom, left:right]
    return mixed, 1 - (bottom - top) * (right - left) / (height * width)
