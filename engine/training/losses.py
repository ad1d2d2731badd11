"""The loss registry: how far the scores are from the labels, for classification.

Each loss takes raw scores (logits) of shape (B, K) and integer labels (B,). MSE, L1 and Huber
compare softmax probabilities with one-hot targets, the way lectures contrast them with
cross-entropy; the multi-class hinge is Weston & Watkins' / CS231n's SVM loss on raw scores.

References:
    CS231n notes, "Linear classification: SVM and Softmax", https://cs231n.github.io/linear-classify/
    Szegedy et al. 2016, "Rethinking the Inception Architecture" (label smoothing), arXiv 1512.00567.
    King & Zeng 2001, "Logistic Regression in Rare Events Data" (class weights; scikit-learn's "balanced").
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial  # not lambdas: a loss travels to the job runner's worker processes

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import UserInputError
from engine.registry import Registry

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class LossInfo:
    name: str
    title: str
    formula: str  # LaTeX, per example, for the page beside the control
    last_layer: str  # what the scores go through before the loss
    factory: Callable[..., LossFn] = field(repr=False)

    def defaults(self) -> dict:
        return {k: p.default for k, p in inspect.signature(self.factory).parameters.items()}


# Cross-entropy first, as the lectures teach it; then the losses they contrast it with.
LOSSES: Registry[LossInfo] = Registry("loss")


def register(name: str, *, title: str, formula: str, last_layer: str):
    """Decorator adding a factory `fn(**options) -> loss(logits, labels)`."""
    return LOSSES.register(name, lambda factory: LossInfo(name, title, formula, last_layer, factory))


def names() -> list[str]:
    return LOSSES.names()


def info(name: str) -> LossInfo:
    return LOSSES.get(name)


def build(name: str, **options) -> LossFn:
    """A function (logits (B, K), labels (B,)) -> mean loss over the batch."""
    entry = info(name)
    unknown = sorted(set(options) - set(entry.defaults()))
    if unknown:
        raise UserInputError(f"loss {name} has no option {', '.join(unknown)}; "
                             f"its options are {', '.join(entry.defaults()) or 'none'}")
    return entry.factory(**options)


def weighted_cross_entropy(logits: Tensor, y: Tensor, *, weights: tuple[float, ...],
                           label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy with class c's examples counted `weights[c]` times: −w_y log softmax(s)_y, and a mean over
    the batch that divides by the sum of its examples' weights (for integer labels; PyTorch's rule)."""
    if len(weights) != logits.shape[1]:
        raise UserInputError(f"class_weights gives {len(weights)} weights, but the model has "
                             f"{logits.shape[1]} classes: give one weight per class")
    weight = torch.tensor(weights, dtype=logits.dtype, device=logits.device)  # (K,)
    return F.cross_entropy(logits, y, weight=weight, label_smoothing=label_smoothing)


def balanced_class_weights(counts: Sequence[int]) -> list[float]:
    """n / (K · n_c) per class c (scikit-learn's "balanced"): every class then adds up to the same weight."""
    if any(int(c) < 1 for c in counts):
        raise UserInputError("balanced class weights need at least one training image per class; "
                             f"got counts {list(counts)}")
    total, k = sum(counts), len(counts)
    return [total / (k * int(c)) for c in counts]


@register("cross_entropy", title="Cross-entropy", last_layer="softmax",
          formula=r"L = -\log \frac{e^{s_y}}{\sum_j e^{s_j}}")
def cross_entropy(*, label_smoothing: float = 0.0, class_weights: Sequence[float] | None = None) -> LossFn:
    if not 0.0 <= label_smoothing < 1.0:
        raise UserInputError(f"label_smoothing must be in [0, 1); got {label_smoothing}")
    if class_weights is None:
        return partial(F.cross_entropy, label_smoothing=label_smoothing)
    rule = f"class_weights must be numbers ≥ 0, one per class, not all 0; got {class_weights!r}"
    try:
        weights = tuple(float(w) for w in class_weights)
    except (TypeError, ValueError) as error:
        raise UserInputError(rule) from error
    if not weights or any(not (w >= 0 and math.isfinite(w)) for w in weights) or not any(weights):
        raise UserInputError(rule)
    # A module-level function and a tuple, not a tensor: the loss pickles to the job runner's workers.
    return partial(weighted_cross_entropy, weights=weights, label_smoothing=label_smoothing)


def multiclass_hinge_loss(logits: Tensor, y: Tensor, margin: float = 1.0) -> Tensor:
    """Sum over wrong classes of max(0, s_j − s_y + margin), averaged over the batch."""
    correct = logits.gather(1, y[:, None])  # (B, 1)
    margins = (logits - correct + margin).clamp(min=0)  # (B, K)
    margins = margins.scatter(1, y[:, None], 0.0)  # the true class contributes nothing
    return margins.sum(dim=1).mean()


@register("multiclass_hinge", title="Multi-class hinge (SVM)", last_layer="none (raw scores)",
          formula=r"L = \sum_{j \ne y} \max(0,\ s_j - s_y + \Delta)")
def multiclass_hinge(*, margin: float = 1.0) -> LossFn:
    if margin <= 0:
        raise UserInputError(f"hinge margin must be > 0; got {margin}")
    return partial(multiclass_hinge_loss, margin=margin)


def _distance_on_probabilities(logits: Tensor, y: Tensor, *, distance: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return distance(logits.softmax(dim=1), target)


def _on_probabilities(distance: Callable[[Tensor, Tensor], Tensor]) -> LossFn:
    return partial(_distance_on_probabilities, distance=distance)


@register("mse", title="Mean squared error (one-hot)", last_layer="softmax",
          formula=r"L = \frac{1}{K}\sum_j (p_j - \mathbb{1}[j=y])^2")
def mse() -> LossFn:
    return _on_probabilities(F.mse_loss)


@register("l1", title="Mean absolute error, L1 (one-hot)", last_layer="softmax",
          formula=r"L = \frac{1}{K}\sum_j |p_j - \mathbb{1}[j=y]|")
def l1() -> LossFn:
    return _on_probabilities(F.l1_loss)


@register("huber", title="Huber (one-hot)", last_layer="softmax",
          formula=r"L = \frac{1}{K}\sum_j \begin{cases} \tfrac12 r_j^2/\delta & |r_j|<\delta \\ |r_j| - \tfrac12\delta & \text{else}\end{cases}")
def huber(*, delta: float = 1.0) -> LossFn:
    if delta <= 0:
        raise UserInputError(f"huber delta must be > 0; got {delta}")
    # smooth_l1 with beta=δ is Huber divided by δ, which the formula above states.
    return _on_probabilities(partial(F.smooth_l1_loss, beta=delta))
