"""Losses as functions of the margin: what each loss of the registry charges, and how hard it pushes.

For one example with K classes, the correct class gets score m and every other class score 0, so m
is the margin s_y − max_{j≠y} s_j. The curves come from the registry's own loss functions, and the
gradient dL/ds_y from autograd — the same numbers training uses.

References:
    CS231n notes, "Linear classification: SVM and Softmax", https://cs231n.github.io/linear-classify/
    Janocha & Czarnecki 2017, "On Loss Functions for Deep Neural Networks in Classification", arXiv 1702.05659.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine import limits
from engine.training import losses
from engine.errors import UserInputError



@dataclass
class MarginProfile:
    margins: np.ndarray
    loss: np.ndarray
    gradient: np.ndarray  # dL/ds_y: negative = pushes the correct score up


def margin_profile(name: str, *, margins: np.ndarray, num_classes: int = 3, **options) -> MarginProfile:
    """Loss and dL/ds_y for scores (m, 0, …, 0) with label 0, for every margin m."""
    if not 2 <= num_classes <= limits.MAX_MARGIN_CLASSES:
        raise UserInputError(f"number of classes must be between 2 and {limits.MAX_MARGIN_CLASSES}; got {num_classes}")
    if not 2 <= len(margins) <= limits.MAX_MARGIN_POINTS:
        raise UserInputError(f"the margin axis needs 2 to {limits.MAX_MARGIN_POINTS} points; got {len(margins)}")
    loss_fn = losses.build(name, **options)
    m = torch.tensor(np.asarray(margins, dtype=np.float64), requires_grad=True)  # (N,)
    logits = torch.cat([m[:, None], torch.zeros(len(m), num_classes - 1, dtype=m.dtype)], dim=1)  # (N, K)
    labels = torch.zeros(len(m), dtype=torch.long)
    # Each example's loss on its own: losses are batch means, so a per-row call keeps them separate.
    per_example = torch.stack([loss_fn(logits[i:i + 1], labels[i:i + 1]) for i in range(len(m))])
    (grad,) = torch.autograd.grad(per_example.sum(), m)
    return MarginProfile(np.asarray(margins, dtype=float), per_example.detach().numpy(), grad.numpy())


# The last layer and loss that go together, by kind of target (lectures' table).
LAST_LAYER_TABLE: list[dict[str, str]] = [
    {"task": "binary classification", "output units": "1", "last layer": "sigmoid σ(s)",
     "loss": "binary cross-entropy", "PyTorch": "nn.BCEWithLogitsLoss"},
    {"task": "multi-class (one label of K)", "output units": "K", "last layer": "softmax",
     "loss": "cross-entropy (or multi-class hinge on raw scores)", "PyTorch": "nn.CrossEntropyLoss"},
    {"task": "multi-label (any of K)", "output units": "K", "last layer": "sigmoid per unit",
     "loss": "binary cross-entropy per unit", "PyTorch": "nn.BCEWithLogitsLoss"},
    {"task": "regression (a number)", "output units": "1 per number", "last layer": "none (identity)",
     "loss": "MSE, L1 or Huber", "PyTorch": "nn.MSELoss / nn.L1Loss / nn.HuberLoss"},
]
