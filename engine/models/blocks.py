"""Building blocks shared by the trainable models: input normalization and the option registries.

Each option (activation, normalization, initialization) is a small registry with `names()` so that
pages list the choices and later topics extend them in one place.

References:
    He et al. 2015, "Delving Deep into Rectifiers" (Kaiming init, PReLU), arXiv 1502.01852.
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural networks".
    Goodfellow et al. 2013, "Maxout Networks", arXiv 1302.4389.
    Ioffe & Szegedy 2015, "Batch Normalization", arXiv 1502.03167.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from engine.errors import UserInputError


def _choose(kind: str, registry: dict, name: str):
    if name not in registry:
        raise UserInputError(f"{kind} must be one of {', '.join(sorted(registry))}; got {name!r}")
    return registry[name]


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


# Activations: fresh module per call, never in-place (in-place ops break forward hooks).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "prelu": nn.PReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "maxout": lambda: Maxout(2),
}


def activation_names() -> list[str]:
    return sorted(ACTIVATIONS)


def make_activation(name: str) -> nn.Module:
    return _choose("activation", ACTIVATIONS, name)()


def _group_norm(channels: int) -> nn.Module:
    # Largest group count ≤ 8 dividing the channels, so any width works.
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


# Normalization after a conv, on (B, C, H, W). "layer" normalizes over (C, H, W) per example,
# which is GroupNorm with one group.
NORMS_2D: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda c: nn.Identity(),
    "batch": nn.BatchNorm2d,
    "layer": lambda c: nn.GroupNorm(1, c),
    "group": _group_norm,
    "instance": lambda c: nn.InstanceNorm2d(c, affine=True),  # per example and channel, over (H, W)
}


def _no_instance_norm_1d(features: int) -> nn.Module:
    raise UserInputError("norm 'instance' normalizes each channel over its own H×W positions, and an MLP's "
                         f"hidden layers ({features} features) have none; use 'layer' or 'batch' for an MLP")


# Normalization after a linear layer, on (B, D).
NORMS_1D: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda d: nn.Identity(),
    "batch": nn.BatchNorm1d,
    "layer": nn.LayerNorm,
    "group": lambda d: nn.GroupNorm(next(g for g in (8, 4, 2, 1) if d % g == 0), d),
    "instance": _no_instance_norm_1d,
}


def norm_names() -> list[str]:
    return list(NORMS_2D)


def norm2d(name: str, channels: int) -> nn.Module:
    return _choose("norm", NORMS_2D, name)(channels)


def norm1d(name: str, features: int) -> nn.Module:
    return _choose("norm", NORMS_1D, name)(features)


def _init_default(module: nn.Module, sigma: float) -> None:
    """Keep PyTorch's own initialization (Kaiming-uniform with a=√5 for conv and linear)."""


def _init_kaiming(module: nn.Module, sigma: float) -> None:
    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _init_xavier(module: nn.Module, sigma: float) -> None:
    nn.init.xavier_normal_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _init_normal(module: nn.Module, sigma: float) -> None:
    nn.init.normal_(module.weight, mean=0.0, std=sigma)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _init_zeros(module: nn.Module, sigma: float) -> None:
    """All weights 0: every unit of a layer computes the same thing (the symmetry problem)."""
    nn.init.zeros_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _init_constant(module: nn.Module, sigma: float) -> None:
    """All weights σ: units stay identical (same symmetry problem), with non-zero outputs."""
    nn.init.constant_(module.weight, sigma)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


INITS: dict[str, Callable[[nn.Module, float], None]] = {
    "default": _init_default,
    "kaiming": _init_kaiming,
    "xavier": _init_xavier,
    "normal": _init_normal,
    "zeros": _init_zeros,
    "constant": _init_constant,
}


def init_names() -> list[str]:
    return list(INITS)


def initialize(model: nn.Module, name: str = "default", *, sigma: float = 0.01) -> nn.Module:
    """Re-initialize every conv and linear weight of `model` with the scheme `name`.

    Draws from torch's global RNG: call it inside `torch.random.fork_rng` with a seed, as
    `engine.models.build` does, so that users sharing a process do not reseed each other.
    """
    init = _choose("init", INITS, name)
    if sigma <= 0:
        raise UserInputError(f"init sigma must be > 0; got {sigma}")
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            init(layer, sigma)
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
