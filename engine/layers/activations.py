"""Activation functions and their derivatives: curves for the page, closed forms checked against autograd.

Every activation of the model registry (engine.models.blocks.ACTIVATIONS) has a closed form and a
derivative here, as LaTeX for the page and as torch code that the tests check against autograd.

References:
    He et al. 2015, "Delving Deep into Rectifiers", arXiv 1502.01852 (Kaiming init, PReLU).
    Goodfellow et al. 2013, "Maxout Networks", arXiv 1302.4389.
    Clevert et al. 2015 (ELU) arXiv 1511.07289; Hendrycks & Gimpel 2016 (GELU) arXiv 1606.08415;
    Ramachandran et al. 2017 (SiLU/Swish) arXiv 1710.05941.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from engine.errors import UserInputError
from engine.models.blocks import ACTIVATIONS, Maxout, make_activation



@dataclass(frozen=True)
class ActivationInfo:
    name: str
    title: str
    formula: str  # LaTeX of f(x)
    derivative_formula: str  # LaTeX of f'(x)
    derivative: Callable[[Tensor], Tensor] = field(repr=False)  # the closed form, for checking autograd
    note: str = ""


def _sigmoid_grad(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


def _gelu_grad(x: Tensor) -> Tensor:
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    pdf = torch.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    return cdf + x * pdf


def _maxout_grad(x: Tensor) -> Tensor:
    unit = Maxout(2)
    pieces = unit.slope.detach()[:, None] * x.flatten() + unit.intercept.detach()[:, None]  # (k, N)
    return unit.slope.detach()[pieces.argmax(0)].view_as(x)


INFO: dict[str, ActivationInfo] = {a.name: a for a in [
    ActivationInfo("sigmoid", "Sigmoid", r"\sigma(x) = \frac{1}{1 + e^{-x}}", r"\sigma(x)\,(1 - \sigma(x))",
                   _sigmoid_grad, "Saturates at both ends; its slope is at most ¼, so gradients shrink layer by layer."),
    ActivationInfo("tanh", "tanh", r"\tanh x = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}", r"1 - \tanh^2 x",
                   lambda x: 1 - torch.tanh(x) ** 2, "Zero-centred, but still saturates."),
    ActivationInfo("relu", "ReLU", r"\max(0, x)", r"\begin{cases}1 & x > 0\\ 0 & x \le 0\end{cases}",
                   lambda x: (x > 0).to(x.dtype), "No saturation for x > 0; a unit stuck at x ≤ 0 gets no gradient (dead)."),
    ActivationInfo("leaky_relu", "Leaky ReLU", r"\max(0.01x, x)", r"\begin{cases}1 & x > 0\\ 0.01 & x \le 0\end{cases}",
                   lambda x: torch.where(x > 0, 1.0, 0.01).to(x.dtype), "A small slope for x < 0: never dead."),
    ActivationInfo("prelu", "PReLU", r"\max(a x, x),\ a\ \text{learned (starts at 0.25)}",
                   r"\begin{cases}1 & x > 0\\ a & x \le 0\end{cases}",
                   lambda x: torch.where(x > 0, 1.0, 0.25).to(x.dtype), "Leaky ReLU whose slope is learned."),
    ActivationInfo("elu", "ELU", r"\begin{cases}x & x > 0\\ e^{x} - 1 & x \le 0\end{cases}",
                   r"\begin{cases}1 & x > 0\\ e^{x} & x \le 0\end{cases}",
                   lambda x: torch.where(x > 0, torch.ones_like(x), torch.exp(x)), "Smooth negative part, mean closer to 0."),
    ActivationInfo("gelu", "GELU", r"x\,\Phi(x)", r"\Phi(x) + x\,\varphi(x)", _gelu_grad,
                   "Φ is the standard normal CDF; used in transformers."),
    ActivationInfo("silu", "SiLU (Swish)", r"x\,\sigma(x)", r"\sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)",
                   lambda x: torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))), "Smooth, slightly negative dip."),
    ActivationInfo("softplus", "Softplus", r"\log(1 + e^{x})", r"\sigma(x)", torch.sigmoid,
                   "A smooth ReLU; its derivative is the sigmoid."),
    ActivationInfo("maxout", "Maxout (k = 2)", r"\max_i\,(a_i x + b_i),\ a_i, b_i\ \text{learned}",
                   r"a_{i^*},\ i^* = \arg\max_i\,(a_i x + b_i)", _maxout_grad,
                   "Piecewise linear and convex; shown at its initial pieces."),
]}


def names() -> list[str]:
    """Activations in lecture order (the model registry holds the same names)."""
    return list(INFO)


def info(name: str) -> ActivationInfo:
    if name not in INFO or name not in ACTIVATIONS:
        raise UserInputError(f"activation must be one of {', '.join(INFO)}; got {name!r}")
    return INFO[name]


def curve(name: str, x: Tensor) -> tuple[Tensor, Tensor]:
    """f(x) and f'(x) of activation `name` at points x; the derivative comes from autograd."""
    info(name)
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
