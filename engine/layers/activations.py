"""Activation curves: f(x) and f'(x) of every activation, with the derivative taken by autograd.

The activations themselves — module, title, formula, closed-form derivative — are the one list in
engine.models.blocks; `names` and `info` here are that registry's, for the pages.

References:
    He et al. 2015, "Delving Deep into Rectifiers", arXiv 1502.01852 (Kaiming init, PReLU).
    Goodfellow et al. 2013, "Maxout Networks", arXiv 1302.4389.
"""

from __future__ import annotations

import torch
from torch import Tensor

from engine.errors import UserInputError
from engine.models.blocks import activation_info as info
from engine.models.blocks import activation_names as names
from engine.models.blocks import make_activation

__all__ = ["curve", "info", "names", "sample"]


def curve(name: str, x: Tensor) -> tuple[Tensor, Tensor]:
    """f(x) and f'(x) of activation `name` at points x; the derivative comes from autograd."""
    x = x.detach().clone().requires_grad_(True)
    y = make_activation(name).to(x.dtype)(x)
    (dy,) = torch.autograd.grad(y.sum(), x)  # element-wise f, so d(sum f)/dx_i = f'(x_i)
    return y.detach(), dy


def sample(name: str, *, span: float, points: int = 801) -> tuple[list[float], list[float], list[float]]:
    """x, f(x), f'(x) on `points` evenly spaced x in [−span, span], as plain lists for plotting."""
    if not 0 < span <= 100 or not 2 <= points <= 100_000:
        raise UserInputError(f"the x range must be in (0, 100] with 2…100000 points; got ±{span}, {points} points")
    x = torch.linspace(-span, span, points)
    y, dy = curve(name, x)
    return x.tolist(), y.tolist(), dy.tolist()
