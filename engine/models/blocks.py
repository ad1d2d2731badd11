"""Building blocks shared by the trainable models: input normalization, Maxout, and the option registries.

Each option (activation, normalization, initialization) is one `engine.registry.Registry`, so that
pages list the choices and later topics extend them in one place. The activation registry is the
one list of activations: each entry holds the module, its formula and closed-form derivative, and
`named_activations` / `relu_only` answer, for every part of the engine, what a model's
activations are.

References:
    He et al. 2015, "Delving Deep into Rectifiers" (Kaiming init, PReLU), arXiv 1502.01852.
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural networks".
    Goodfellow et al. 2013, "Maxout Networks", arXiv 1302.4389.
    Clevert et al. 2015 (ELU) arXiv 1511.07289; Hendrycks & Gimpel 2016 (GELU) arXiv 1606.08415;
    Ramachandran et al. 2017 (SiLU/Swish) arXiv 1710.05941.
    Ioffe & Szegedy 2015, "Batch Normalization", arXiv 1502.03167.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from engine.errors import UserInputError
from engine.registry import Registry


class Normalize(nn.Module):
    """Standardize pixels in [0, 1] with the data set's per-channel mean and std (the first module)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        # Buffers, not parameters: saved in the state_dict, never trained.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def export_kwargs(self) -> dict:
        """Constructor arguments (used by engine.models.export)."""
        return {"mean": [round(v, 6) for v in self.mean.flatten().tolist()],
                "std": [round(v, 6) for v in self.std.flatten().tolist()]}

    def extra_repr(self) -> str:
        fmt = lambda t: ", ".join(f"{v:.3f}" for v in t.flatten().tolist())  # noqa: E731
        return f"mean=({fmt(self.mean)}), std=({fmt(self.std)})"


class Maxout(nn.Module):
    """Pointwise Maxout: y = max_i (a_i·x + b_i) over k learned lines, applied to every unit.

    Goodfellow's Maxout takes the max of k separate projections w_iᵀx + b_i, which needs k× the
    layer's width. Here the k projections are tied to the layer's own projection (w_i = a_i·w),
    so Maxout keeps the width and is a drop-in activation for every model, like PReLU (whose
    max(x, a·x) is the k = 2 case with b = 0). The k (slope, intercept) pairs are shared by all
    units and start as tangents of softplus at -3…3: a convex, piecewise-linear softplus with a
    non-zero slope everywhere, so no unit starts dead. The max is taken as a running
    m + ReLU(piece − m), the identity max(a, b) = a + ReLU(b − a).
    """

    def __init__(self, k: int = 2, *, rectify: nn.Module | None = None):
        super().__init__()
        if not 2 <= k <= 8:
            raise UserInputError(f"maxout pieces k must be in 2…8; got {k}")
        self.k = k
        points = torch.linspace(-3.0, 3.0, k)
        slopes = torch.sigmoid(points)  # softplus' derivative at the tangent points
        self.slope = nn.Parameter(slopes)
        self.intercept = nn.Parameter(nn.functional.softplus(points) - slopes * points)
        self.rectify = rectify if rectify is not None else nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.slope[0] * x + self.intercept[0]
        for i in range(1, self.k):
            out = out + self.rectify(self.slope[i] * x + self.intercept[i] - out)
        return out

    def export_kwargs(self) -> dict:
        return {"k": self.k}

    def extra_repr(self) -> str:
        return f"k={self.k}"


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


@dataclass(frozen=True)
class Activation:
    """One activation: the module class that computes it in a model, and what the page shows about it."""

    name: str
    title: str
    module: type[nn.Module]  # every instance of it in a model is this activation
    formula: str  # LaTeX of f(x)
    derivative_formula: str  # LaTeX of f'(x)
    derivative: Callable[[Tensor], Tensor] = field(repr=False)  # the closed form, checked against autograd
    note: str = ""
    options: Mapping[str, object] = field(default_factory=dict)  # constructor arguments of `module`

    def build(self) -> nn.Module:
        """A fresh module, never in-place (in-place ops break forward hooks)."""
        return self.module(**self.options)


ACTIVATIONS: Registry[Activation] = Registry("activation")
for _activation in (
    Activation("sigmoid", "Sigmoid", nn.Sigmoid, r"\sigma(x) = \frac{1}{1 + e^{-x}}", r"\sigma(x)\,(1 - \sigma(x))",
               _sigmoid_grad, "Saturates at both ends; its slope is at most ¼, so gradients shrink layer by layer."),
    Activation("tanh", "tanh", nn.Tanh, r"\tanh x = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}", r"1 - \tanh^2 x",
               lambda x: 1 - torch.tanh(x) ** 2, "Zero-centred, but still saturates."),
    Activation("relu", "ReLU", nn.ReLU, r"\max(0, x)", r"\begin{cases}1 & x > 0\\ 0 & x \le 0\end{cases}",
               lambda x: (x > 0).to(x.dtype),
               "No saturation for x > 0; a unit stuck at x ≤ 0 gets no gradient (dead)."),
    Activation("leaky_relu", "Leaky ReLU", nn.LeakyReLU, r"\max(0.01x, x)",
               r"\begin{cases}1 & x > 0\\ 0.01 & x \le 0\end{cases}",
               lambda x: torch.where(x > 0, 1.0, 0.01).to(x.dtype), "A small slope for x < 0: never dead.",
               {"negative_slope": 0.01}),
    Activation("prelu", "PReLU", nn.PReLU, r"\max(a x, x),\ a\ \text{learned (starts at 0.25)}",
               r"\begin{cases}1 & x > 0\\ a & x \le 0\end{cases}",
               lambda x: torch.where(x > 0, 1.0, 0.25).to(x.dtype), "Leaky ReLU whose slope is learned."),
    Activation("elu", "ELU", nn.ELU, r"\begin{cases}x & x > 0\\ e^{x} - 1 & x \le 0\end{cases}",
               r"\begin{cases}1 & x > 0\\ e^{x} & x \le 0\end{cases}",
               lambda x: torch.where(x > 0, torch.ones_like(x), torch.exp(x)),
               "Smooth negative part, mean closer to 0."),
    Activation("gelu", "GELU", nn.GELU, r"x\,\Phi(x)", r"\Phi(x) + x\,\varphi(x)", _gelu_grad,
               "Φ is the standard normal CDF; used in transformers."),
    Activation("silu", "SiLU (Swish)", nn.SiLU, r"x\,\sigma(x)", r"\sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)",
               lambda x: torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))), "Smooth, slightly negative dip."),
    Activation("softplus", "Softplus", nn.Softplus, r"\log(1 + e^{x})", r"\sigma(x)", torch.sigmoid,
               "A smooth ReLU; its derivative is the sigmoid."),
    Activation("maxout", "Maxout (k = 2)", Maxout, r"\max_i\,(a_i x + b_i),\ a_i, b_i\ \text{learned}",
               r"a_{i^*},\ i^* = \arg\max_i\,(a_i x + b_i)", _maxout_grad,
               "Piecewise linear and convex; shown at its initial pieces.", {"k": 2}),
):
    ACTIVATIONS.add(_activation.name, _activation)

# Activations that torchvision's pretrained models use besides ours (MobileNetV3's hard-swish and
# squeeze-excitation gates): feature maps and attribution rules must see them too.
TORCHVISION_ACTIVATIONS = (nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.Mish)


def activation_names() -> list[str]:
    return ACTIVATIONS.names()


def activation_info(name: str) -> Activation:
    return ACTIVATIONS.get(name)


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS.get(name).build()


def named_activations(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every activation of `model`, outermost only, in registration order.

    A Maxout counts once: the ReLU inside it is how it takes the max, not another activation.
    """
    kinds = tuple(ACTIVATIONS.get(name).module for name in ACTIVATIONS) + TORCHVISION_ACTIVATIONS
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        inside = any(outer == "" or name.startswith(outer + ".") for outer, _ in found)
        if isinstance(module, kinds) and not inside:
            found.append((name, module))
    return found


def relu_only(model: nn.Module) -> bool:
    """Whether every activation of `model` is a plain nn.ReLU (the unit Guided Backprop's rule is defined for)."""
    return all(type(module) is nn.ReLU for _, module in named_activations(model))


def _group_norm(channels: int) -> nn.Module:
    # Largest group count ≤ 8 dividing the channels, so any width works.
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


@dataclass(frozen=True)
class Norm:
    """One normalization, as a module after a conv and after a linear layer."""

    name: str
    conv: Callable[[int], nn.Module] = field(repr=False)  # on (B, C, H, W), given C
    linear: Callable[[int], nn.Module] | None = field(repr=False)  # on (B, D), given D; None: no such form


# "layer" normalizes over (C, H, W) per example after a conv, which is GroupNorm with one group.
NORMS: Registry[Norm] = Registry("norm")
for _norm in (
    Norm("none", lambda c: nn.Identity(), lambda d: nn.Identity()),
    Norm("batch", nn.BatchNorm2d, nn.BatchNorm1d),
    Norm("layer", lambda c: nn.GroupNorm(1, c), nn.LayerNorm),
    Norm("group", _group_norm, _group_norm),
    Norm("instance", lambda c: nn.InstanceNorm2d(c, affine=True), None),  # per example and channel: not over D
):
    NORMS.add(_norm.name, _norm)


def norm_names(*, linear: bool = False) -> list[str]:
    """Every norm; with `linear`, those that also exist after a linear layer (an MLP's hidden layers)."""
    return [n for n in NORMS.names() if not linear or NORMS.get(n).linear is not None]


def norm2d(name: str, channels: int) -> nn.Module:
    return NORMS.get(name).conv(channels)


def norm1d(name: str, features: int) -> nn.Module:
    norm = NORMS.get(name)
    if norm.linear is None:
        raise UserInputError(f"norm {name!r} normalizes each channel over its own H×W positions, and an MLP's "
                             f"hidden layers ({features} features) have none; use 'layer' or 'batch' for an MLP")
    return norm.linear(features)


@dataclass(frozen=True)
class Init:
    """One initialization scheme for conv and linear weights (biases start at 0 in every scheme but default)."""

    name: str
    # Fills a conv/linear weight in place, given σ; None keeps PyTorch's own initialization.
    weight: Callable[[Tensor, float], object] | None = field(repr=False)
    note: str = ""


INITS: Registry[Init] = Registry("init")
for _init in (
    Init("default", None, "PyTorch's own: Kaiming-uniform with a=√5 for conv and linear."),
    Init("kaiming", lambda w, sigma: nn.init.kaiming_normal_(w, nonlinearity="relu")),
    Init("xavier", lambda w, sigma: nn.init.xavier_normal_(w)),
    Init("normal", lambda w, sigma: nn.init.normal_(w, mean=0.0, std=sigma)),
    Init("zeros", lambda w, sigma: nn.init.zeros_(w),
         "All weights 0: every unit of a layer computes the same thing (the symmetry problem)."),
    Init("constant", lambda w, sigma: nn.init.constant_(w, sigma),
         "All weights σ: units stay identical (same symmetry problem), with non-zero outputs."),
):
    INITS.add(_init.name, _init)


def init_names() -> list[str]:
    return INITS.names()


def initialize(model: nn.Module, name: str = "default", *, sigma: float = 0.01) -> nn.Module:
    """Re-initialize every conv and linear weight of `model` with the scheme `name`.

    Draws from torch's global RNG: call it inside `torch.random.fork_rng` with a seed, as
    `engine.models.build` does, so that users sharing a process do not reseed each other.
    """
    init = INITS.get(name)
    if sigma <= 0:
        raise UserInputError(f"init sigma must be > 0; got {sigma}")
    if init.weight is None:
        return model
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            init.weight(layer.weight, sigma)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return model


@contextmanager
def evaluating(model: nn.Module):
    """Put `model` in eval mode for the block and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
