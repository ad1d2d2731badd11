"""How signals and gradients flow through a deep plain net, and which units are dead.

`gradient_flow` builds a deep plain MLP or CNN, runs one real batch forward and backward, and
returns per-layer statistics: activation mean/std/histogram, dead units, gradient norms.

References:
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural networks".
    He et al. 2015, "Delving Deep into Rectifiers", arXiv 1502.01852 (Kaiming init).
    CS231n notes, "Neural Networks Part 2" (activation statistics per layer).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine import limits
from engine.device import seeded
from engine.data.sets import Dataset
from engine.errors import UserInputError
from engine.models.blocks import Normalize, initialize, make_activation, named_activations

HIST_BINS = 40


@dataclass
class LayerStats:
    name: str  # "layer 3"
    mean: float  # of the activation output
    std: float
    hist_counts: list[int]
    hist_edges: list[float]
    dead_fraction: float  # units whose output is 0 for every example (and position)
    unit_spread: float  # std across the units of a layer, averaged over examples: 0 = all identical
    grad_norm: float | None = None  # ‖∂L/∂W‖ of the layer's weight
    act_grad_std: float | None = None  # std of ∂L/∂(activation output)


@dataclass
class GradientFlow:
    layers: list[LayerStats]
    loss: float | None
    overflow: str | None = None  # what became inf/NaN and where, instead of plotting NaN

    @property
    def symmetric(self) -> bool:
        """True when in every layer all units compute the same value, so their gradients are equal too."""
        return bool(self.layers) and all(s.unit_spread <= 1e-6 * (1 + abs(s.mean)) for s in self.layers)


def estimate_cost(kind: str, depth: int, width: int, batch: int, in_features: int, pixels: int) -> tuple[int, int]:
    """(bytes, forward MACs) of a gradient-flow probe: weights + grads and ~4 stored tensors per layer."""
    if kind == "mlp":
        weights = in_features * width + depth * width * width
        per_layer = batch * width
        macs = batch * weights
    else:
        weights = depth * 9 * width * width
        per_layer = batch * width * pixels
        macs = batch * pixels * weights
    return 4 * (2 * weights + 4 * depth * per_layer), macs


def check_size(kind: str, depth: int, width: int, batch: int, in_features: int, pixels: int) -> None:
    """Raise UserInputError naming the limit when the probe net would be too big for this lab."""
    if kind not in ("mlp", "cnn"):
        raise UserInputError(f"net kind must be 'mlp' or 'cnn'; got {kind!r}")
    for param, value, low, high in (("depth", depth, 2, limits.MAX_FLOW_DEPTH),
                                    ("width", width, 1, limits.MAX_FLOW_WIDTH),
                                    ("batch size", batch, 2, limits.MAX_FLOW_BATCH)):
        if not low <= value <= high:
            raise UserInputError(f"{param} must be in {low}…{high}; got {value}")
    needed, macs = estimate_cost(kind, depth, width, batch, in_features, pixels)
    if needed > limits.MAX_FLOW_BYTES:
        raise UserInputError(
            f"depth × width = {depth} × {width} ({kind}, batch {batch}) needs about {needed / 2**20:.0f} MB, "
            f"over this lab's memory limit of {limits.MAX_FLOW_BYTES / 2**20:.0f} MB; use fewer or narrower layers "
            "or a smaller batch")
    if macs > limits.MAX_FLOW_MACS:
        raise UserInputError(
            f"depth × width = {depth} × {width} ({kind}, batch {batch}) needs about {macs / 1e9:.0f} billion "
            f"multiply-accumulates, over this lab's compute limit of {limits.MAX_FLOW_MACS / 1e9:.0f} billion; "
            "use fewer or narrower layers or a smaller batch")


def deep_net(kind: str, *, depth: int, width: int, in_channels: int, image_size: int, num_classes: int,
             activation: str = "relu", init: str = "kaiming", sigma: float = 0.01, seed: int = 0,
             mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> nn.Sequential:
    """A plain stack of `depth` (linear or 3×3 conv) + activation layers, no normalization, no skips.

    With the data set's `mean` and `std` it starts with `Normalize`, like the registry's models.
    """
    check_size(kind, depth, width, 2, in_channels * image_size**2, image_size**2)
    layers: list[nn.Module] = [] if mean is None or std is None else [Normalize(mean, std)]
    with seeded(seed):  # nn.Linear / nn.Conv2d draw their initial weights from torch's global generator
        if kind == "mlp":
            layers.append(nn.Flatten())  # (B, C, H, W) -> (B, C·H·W)
            width_in = in_channels * image_size**2
            for _ in range(depth):
                layers += [nn.Linear(width_in, width), make_activation(activation)]
                width_in = width
            layers.append(nn.Linear(width, num_classes))
        else:
            c_in = in_channels
            for _ in range(depth):
                layers += [nn.Conv2d(c_in, width, 3, padding=1), make_activation(activation)]
                c_in = width
            # (B, width, H, W) -> (B, width)
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes)]
        net = nn.Sequential(*layers)
        initialize(net, init, sigma=sigma)
    return net


def _units(t: Tensor) -> Tensor:
    """(B, D) or (B, C, H, W) -> (B·positions, units), one column per unit (feature or channel)."""
    if t.dim() == 4:
        return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])  # (B, C, H, W) -> (B·H·W, C)
    return t.reshape(t.shape[0], -1)


def dead_fraction(t: Tensor) -> float:
    """Share of units (features, or channels of a map) that are exactly 0 for every example."""
    return float((_units(t) == 0).all(0).float().mean())


def _layer_stats(name: str, out: Tensor) -> LayerStats:
    values = out.detach().flatten().double()
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1e-6
    counts = torch.histc(values, bins=HIST_BINS, min=lo, max=hi)
    units = _units(out.detach())
    spread = float(units.std(1).mean()) if units.shape[1] > 1 else 0.0
    return LayerStats(name, float(values.mean()), float(values.std()), [int(c) for c in counts],
                      torch.linspace(lo, hi, HIST_BINS + 1).tolist(), dead_fraction(out.detach()), spread)


def gradient_flow(net: nn.Module, images: Tensor, labels: Tensor) -> GradientFlow:
    """One forward and backward pass of `net` on a real batch; statistics of every activation layer.

    The weights' `.grad`, `requires_grad` and the net's mode are left as they were found.
    """
    acts = [module for _, module in named_activations(net)]
    weighted = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    outputs: list[Tensor] = []

    def keep(module, inputs, output):
        output.retain_grad()
        outputs.append(output)

    handles = [m.register_forward_hook(keep) for m in acts]
    params = list(net.parameters())
    saved = [(p.grad, p.requires_grad) for p in params]
    was_training = net.training
    try:
        net.eval()
        for p in params:
            p.grad = None
            p.requires_grad_(True)
        logits = net(images)
        if len(outputs) != len(acts):
            raise RuntimeError(f"{len(acts) - len(outputs)} activation hooks never fired")
        stats: list[LayerStats] = []
        for i, out in enumerate(outputs, start=1):
            if not torch.isfinite(out).all():
                return GradientFlow(stats, None, f"the activations overflowed float32 (inf/NaN) at layer {i} of "
                                    f"{len(outputs)}: each layer multiplied their size; the layers before are shown")
            stats.append(_layer_stats(f"layer {i}", out))
        loss = nn.functional.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            return GradientFlow(stats, None, f"the loss is {float(loss.detach())} (the logits overflowed)")
        loss.backward()
        for layer, out, module in zip(stats, outputs, weighted):
            layer.grad_norm = float(module.weight.grad.norm())
            layer.act_grad_std = float(out.grad.std())
        bad = [s.name for s in stats if not math.isfinite(s.grad_norm) or not math.isfinite(s.act_grad_std)]
        overflow = f"the gradients overflowed (inf/NaN) at {', '.join(bad)}" if bad else None
        return GradientFlow(stats, float(loss.detach()), overflow)
    finally:
        for handle in handles:
            handle.remove()
        for p, (grad, requires) in zip(params, saved):
            p.grad = grad
            p.requires_grad_(requires)
        net.train(was_training)


def probe(dataset: Dataset, *, kind: str, depth: int, width: int, batch: int, activation: str, init: str,
          sigma: float = 0.01, seed: int = 0) -> GradientFlow:
    """`gradient_flow` of a fresh `deep_net` for `dataset` on its first `batch` training images."""
    check_size(kind, depth, width, batch, dataset.channels * dataset.image_size**2, dataset.image_size**2)
    net = deep_net(kind, depth=depth, width=width, in_channels=dataset.channels, image_size=dataset.image_size,
                   num_classes=dataset.num_classes, activation=activation, init=init, sigma=sigma, seed=seed,
                   mean=dataset.mean, std=dataset.std)
    batch = min(batch, len(dataset.train))
    return gradient_flow(net, dataset.train.x[:batch], dataset.train.y[:batch])


def dead_fractions(model: nn.Module, images: Tensor) -> list[tuple[str, float]]:
    """(activation module name, dead-unit share) for every activation of a model, on `images`."""
    named = named_activations(model)
    found: dict[str, float] = {}
    handles = [m.register_forward_hook(lambda mod, inp, out, n=n: found.__setitem__(n, dead_fraction(out)))
               for n, m in named]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [(n, found[n]) for n, _ in named]


def dead_fraction_history(model: nn.Module, snapshots: Sequence[dict], images: Tensor) -> list[float]:
    """Overall dead-unit share after each stored snapshot (epoch 0 = initial weights) of a run."""
    probe = copy.deepcopy(model)
    history = []
    for state in snapshots:
        probe.load_state_dict(state)
        per_layer = dead_fractions(probe, images)
        history.append(sum(f for _, f in per_layer) / max(1, len(per_layer)))
    return history
