"""Weight penalties: L2 and elastic net in the loss, L1 in the loss or as a proximal step, weight statistics.

L2 follows PyTorch's `weight_decay` convention: the term λ/2 ‖w‖² has gradient λw, exactly what
SGD's `weight_decay=λ` adds. Elastic net is scikit-learn's α(ρ‖w‖₁ + (1−ρ)/2 ‖w‖²). L1 as a
subgradient (λ sign(w) added to the gradient) makes weights hover around zero without reaching
it; the proximal step (soft-thresholding after each optimizer step) sets them to exactly zero,
which is why lasso solvers use it. Biases and normalization parameters are left alone by default:
they do not make a model more complex, and shrinking them only hurts (timm, `param_groups_weight_decay`).

References:
    Tibshirani 1996, "Regression Shrinkage and Selection via the Lasso".
    Zou & Hastie 2005, "Regularization and variable selection via the elastic net".
    Parikh & Boyd 2014, "Proximal Algorithms", §6.5.2 (soft-thresholding), https://web.stanford.edu/~boyd/papers/prox_algs.html
    Loshchilov & Hutter 2017, "Decoupled Weight Decay Regularization", arXiv 1711.05101.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.errors import UserInputError

L1_MODES = ("proximal", "subgradient")
ZERO_THRESHOLD = 1e-6  # |w| below this counts as zero in the weight statistics


@dataclass(frozen=True)
class Penalties:
    """The strengths of the weight penalties; all 0 = none."""

    l2: float = 0.0  # λ in λ/2 ‖w‖²
    l1: float = 0.0  # λ in λ ‖w‖₁
    l1_mode: str = "proximal"
    elastic: float = 0.0  # α
    l1_ratio: float = 0.5  # ρ
    include_all: bool = False  # also penalize biases and normalization parameters

    def __post_init__(self):
        for name in ("l2", "l1", "elastic"):
            value = getattr(self, name)
            if not value >= 0:
                raise UserInputError(f"{name} strength must be ≥ 0; got {value}")
        if self.l1_mode not in L1_MODES:
            raise UserInputError(f"l1_mode must be one of {', '.join(L1_MODES)}; got {self.l1_mode!r}")
        if not 0.0 <= self.l1_ratio <= 1.0:
            raise UserInputError(f"l1_ratio must be in [0, 1]; got {self.l1_ratio}")

    @property
    def in_loss(self) -> bool:
        return bool(self.l2 or self.elastic or (self.l1 and self.l1_mode == "subgradient"))

    @property
    def proximal(self) -> bool:
        return bool(self.l1 and self.l1_mode == "proximal")


def penalized_parameters(model: nn.Module, *, include_all: bool = False) -> list[nn.Parameter]:
    """The weights a penalty acts on: every matrix and kernel; biases and norm scales/shifts (1-D) only on request."""
    return [p for name, p in model.named_parameters()
            if include_all or (p.ndim > 1 and not name.endswith(".bias"))]


def penalty_terms(params: list[nn.Parameter], penalties: Penalties) -> dict[str, Tensor]:
    """The penalty terms to add to the data loss, by name (the names the history records)."""
    terms: dict[str, Tensor] = {}
    trainable = [p for p in params if p.requires_grad]  # a frozen weight's penalty is a constant
    if not trainable:
        return terms
    if penalties.l2:
        terms["l2"] = penalties.l2 / 2 * sum(p.pow(2).sum() for p in trainable)
    if penalties.l1 and penalties.l1_mode == "subgradient":
        terms["l1"] = penalties.l1 * sum(p.abs().sum() for p in trainable)
    if penalties.elastic:
        rho = penalties.l1_ratio
        terms["elastic"] = penalties.elastic * sum(
            rho * p.abs().sum() + (1 - rho) / 2 * p.pow(2).sum() for p in trainable)
    return terms


@torch.no_grad()
def proximal_l1_step(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], strength: float) -> None:
    """Soft-threshold the penalized weights after an optimizer step: w ← sign(w)·max(|w| − η·λ, 0).

    η is each parameter's own group learning rate, so a frozen or slower group shrinks accordingly.
    """
    chosen = {id(p) for p in params}
    for group in optimizer.param_groups:
        threshold = group["lr"] * strength
        for p in group["params"]:
            if id(p) in chosen and p.requires_grad:
                p.copy_(p.sign() * (p.abs() - threshold).clamp_min(0))


@torch.no_grad()
def weight_statistics(params: list[nn.Parameter]) -> tuple[float, float]:
    """(‖w‖₂ over all penalized weights, fraction with |w| < 1e-6): one host synchronisation."""
    if not params:
        return 0.0, 0.0
    flat = torch.cat([p.detach().flatten() for p in params])
    norm, zeros = torch.stack([flat.norm(), (flat.abs() < ZERO_THRESHOLD).float().mean()]).tolist()
    return norm, zeros
