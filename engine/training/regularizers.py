"""The regularizers as one choice, L2 in the loss vs weight decay step by step, and weight histograms.

For plain SGD, the penalty λ/2 ‖w‖² adds λw to the gradient, so a step is
w ← w − η(g + λw) = (1 − ηλ) w − η g: exactly "shrink the weights by ηλ, then take the step".
Adam divides the whole gradient by √v̂, the penalty's λw included, so a weight whose loss gradients
are large is hardly shrunk and one with small gradients is shrunk hard. AdamW takes the decay out
of the gradient and applies it to the weights, w ← (1 − ηλ) w − η m̂/(√v̂ + ε): the same relative
shrink for every weight, whatever its gradients.

The demo makes that visible: two weights whose loss gradients are pure noise of very different
sizes, so the loss has no opinion about their values and only the regularizer moves them on
average. Many copies (replicas) in antithetic pairs are averaged, so the curves show the expected weight.

References:
    Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", ICLR, arXiv 1711.05101 (Algorithm 2).
    Goodfellow, Bengio & Courville 2016, "Deep Learning", §7.1.1 (L2 as weight decay).
    PyTorch, torch.optim.SGD / Adam / AdamW (weight_decay), https://pytorch.org/docs/stable/optim.html
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from engine import limits
from engine import models
from engine.device import generator
from engine.errors import UserInputError
from engine.registry import Registry
from engine.training.config import TrainConfig
from engine.training.optimizers import build_optimizer
from engine.training.penalties import ZERO_THRESHOLD, penalized_parameters

# The three ways to regularize, by the name the page shows.
L2_IN_LOSS, WEIGHT_DECAY, DECOUPLED = "L2 in the loss", "weight_decay=λ of torch.optim", "decoupled decay"
VARIANTS = (L2_IN_LOSS, WEIGHT_DECAY, DECOUPLED)
# The update each variant makes, per optimizer (LaTeX): L2 / weight_decay (coupled), then decoupled decay.
DECAY_RULES = {
    "sgd": (r"w \leftarrow w - \eta\,(\nabla L + \lambda w) = (1-\eta\lambda)\,w - \eta \nabla L",
            r"w \leftarrow (1-\eta\lambda)\,w - \eta \nabla L"),
    "momentum": (r"v \leftarrow \mu v + \nabla L + \lambda w,\quad w \leftarrow w - \eta v",
                 r"v \leftarrow \mu v + \nabla L,\quad w \leftarrow (1-\eta\lambda)\,w - \eta v"),
    "adam": (r"g = \nabla L + \lambda w,\quad w \leftarrow w - \eta\, \hat m(g) / (\sqrt{\hat v(g)} + \epsilon)",
             r"g = \nabla L,\quad w \leftarrow (1-\eta\lambda)\,w - \eta\, \hat m(g) / (\sqrt{\hat v(g)} + \epsilon)"),
}
DECAY_OPTIMIZERS = tuple(DECAY_RULES)  # the optimizers the decay demo compares
REPLICAS = 256  # independent noise copies averaged per weight
HISTOGRAM_BINS = 61  # odd: one bin is centred on zero, where L1 piles weights up


# ----------------------------------------------------------------------------- the regularizers, as one choice
@dataclass(frozen=True)
class RegularizerInfo:
    """One way to regularize a run: what it adds, and how it changes a TrainConfig at a given strength."""

    name: str
    title: str
    formula: str  # LaTeX, for the page
    strength: str  # what the number means, e.g. "λ"
    default: float
    apply: Callable[[TrainConfig, float], TrainConfig] = field(repr=False)

    def configure(self, config: TrainConfig, strength: float) -> TrainConfig:
        if not (strength >= 0 and math.isfinite(strength)):
            raise UserInputError(f"{self.title} strength must be a number ≥ 0; got {strength}")
        return self.apply(config, float(strength))


def _none(config: TrainConfig, strength: float) -> TrainConfig:
    return config


def _l1(config: TrainConfig, strength: float) -> TrainConfig:
    return dataclasses.replace(config, l1=strength, l1_mode="proximal")


def _l2(config: TrainConfig, strength: float) -> TrainConfig:
    return dataclasses.replace(config, l2=strength)


def _elastic(config: TrainConfig, strength: float) -> TrainConfig:
    return dataclasses.replace(config, elastic=strength)


def _dropout(config: TrainConfig, strength: float) -> TrainConfig:
    if "dropout" not in models.info(config.model).defaults():
        raise UserInputError(f"model {config.model!r} has no dropout layer; pick an MLP or a CNN")
    if not strength < 1:
        raise UserInputError(f"dropout p must be in [0, 1); got {strength}")
    return dataclasses.replace(config, model_options={**config.model_options, "dropout": strength})


def _decoupled(config: TrainConfig, strength: float) -> TrainConfig:
    return dataclasses.replace(config, optimizer="adamw", weight_decay=strength)


# In the lectures' order: the penalties in the loss, then the noise of dropout, then decoupled decay.
REGULARIZERS: Registry[RegularizerInfo] = Registry("regularizer")
for _entry in (
    RegularizerInfo("none", "No regularization", r"L_\text{data}", "—", 0.0, _none),
    RegularizerInfo("l1", "L1 (proximal)", r"L_\text{data} + \lambda \lVert w \rVert_1", "λ", 0.1, _l1),
    RegularizerInfo("l2", "L2 in the loss", r"L_\text{data} + \tfrac{\lambda}{2} \lVert w \rVert_2^2", "λ", 0.01, _l2),
    RegularizerInfo("elastic", "Elastic net", r"L_\text{data} + \alpha\big(\rho \lVert w \rVert_1 + "
                    r"\tfrac{1-\rho}{2} \lVert w \rVert_2^2\big)", "α", 0.001, _elastic),
    RegularizerInfo("dropout", "Dropout", r"h \leftarrow h \odot m / (1-p),\ m_i \sim \text{Bernoulli}(1-p)",
                    "p", 0.5, _dropout),
    RegularizerInfo("weight_decay", "Weight decay (AdamW)", r"w \leftarrow (1 - \eta\lambda)\, w - \eta\, "
                    r"\hat m / (\sqrt{\hat v} + \epsilon)", "λ", 1.0, _decoupled),
):
    REGULARIZERS.add(_entry.name, _entry)


def regularizer_names() -> list[str]:
    return REGULARIZERS.names()


def regularizer_info(name: str) -> RegularizerInfo:
    return REGULARIZERS.get(name)


def regularized(config: TrainConfig, name: str, strength: float | None = None) -> TrainConfig:
    """`config` with regularizer `name` at `strength` (default: its own default) added."""
    entry = regularizer_info(name)
    return entry.configure(config, entry.default if strength is None else strength)


# ----------------------------------------------------------------------------- L2 vs decoupled decay
@dataclass
class DecayPaths:
    """The mean weight after each step, per variant: (steps + 1, P) for P weights of different gradient sizes."""

    optimizer: str
    lr: float
    strength: float  # λ
    scales: tuple[float, ...]  # gradient size of each weight
    paths: dict[str, Tensor]  # variant -> (steps + 1, P) mean over the replicas
    first_steps: dict[str, Tensor]  # variant -> (steps + 1, P) of replica 0: the raw numbers, step by step

    @property
    def expected(self) -> list[float]:
        """(1 − ηλ)^t: where the mean of a weight goes when the decay is the same for every weight."""
        steps = len(next(iter(self.paths.values())))
        return [(1 - self.lr * self.strength) ** t for t in range(steps)]

    def difference(self, a: str, b: str) -> float:
        """The largest gap between two variants' weights over all steps and replicas' means."""
        return float((self.paths[a] - self.paths[b]).abs().max())


def _check(optimizer: str, lr: float, strength: float, steps: int, scales: Sequence[float]) -> None:
    if optimizer not in DECAY_OPTIMIZERS:
        raise UserInputError(f"the decay demo compares {', '.join(DECAY_OPTIMIZERS)}; got {optimizer!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise UserInputError(f"learning rate must be a positive number; got {lr}")
    if not (strength >= 0 and math.isfinite(strength)) or lr * strength >= 1:
        raise UserInputError(f"λ must be ≥ 0 with η·λ < 1 (else one step flips the weights' sign); "
                             f"got λ = {strength}, η·λ = {lr * strength:.3g}")
    if not 1 <= steps <= limits.MAX_DECAY_STEPS:
        raise UserInputError(f"steps must be between 1 and {limits.MAX_DECAY_STEPS}; got {steps}")
    if not scales or any(not (s > 0 and math.isfinite(s)) for s in scales):
        raise UserInputError(f"gradient scales must be positive numbers; got {list(scales)}")


def _path(variant: str, optimizer: str, *, noise: Tensor, lr: float, strength: float, start: float,
          momentum: float) -> Tensor:
    """Weights (steps + 1, R, P) for one variant; the loss at step t is Σ noise[t] · w (gradient = noise[t])."""
    w = nn.Parameter(torch.full(noise.shape[1:], float(start), dtype=torch.float64))  # (R, P)
    coupled = strength if variant == WEIGHT_DECAY else 0.0
    name = "adamw" if variant == DECOUPLED and optimizer == "adam" else optimizer
    opt = build_optimizer(name, [w], lr=lr, momentum=momentum,
                          weight_decay=strength if name == "adamw" else coupled)
    out = [w.detach().clone()]
    for g in noise:
        opt.zero_grad(set_to_none=True)
        loss = (g * w).sum()
        if variant == L2_IN_LOSS:
            loss = loss + strength / 2 * w.pow(2).sum()
        loss.backward()
        if variant == DECOUPLED and name != "adamw":
            with torch.no_grad():  # SGD has no decoupled option: shrink first, as torch's AdamW does
                w.mul_(1 - lr * strength)
        opt.step()
        out.append(w.detach().clone())
    return torch.stack(out)


def decay_paths(optimizer: str = "adam", *, lr: float = 0.01, strength: float = 0.5, steps: int = 300,
                scales: Sequence[float] = (10.0, 0.1), start: float = 1.0, momentum: float = 0.9,
                replicas: int = REPLICAS, seed: int = 0) -> DecayPaths:
    """Run L2-in-the-loss, the optimizer's own `weight_decay` and decoupled decay on the same gradient noise.

    Weight j's loss gradient at each step is scales[j] · ξ with ξ ~ N(0, 1), the same draws for
    every variant. For SGD all three variants are one update (up to rounding); with momentum the
    decoupled one differs (its decay skips the velocity); for Adam, L2 and `weight_decay` agree
    and AdamW's decoupled decay does not.
    """
    _check(optimizer, lr, strength, steps, scales)
    scale = torch.tensor([float(s) for s in scales], dtype=torch.float64)  # (P,)
    if replicas < 2 or replicas % 2:
        raise UserInputError(f"replicas must be an even number ≥ 2; got {replicas}")
    half = torch.randn(steps, replicas // 2, len(scale), generator=generator(seed), dtype=torch.float64)
    # Antithetic pairs (ξ, −ξ): the noise averages out exactly, so the mean shows the decay alone.
    noise = torch.cat([half, -half], dim=1) * scale  # (steps, R, P)
    paths, first = {}, {}
    for variant in VARIANTS:
        weights = _path(variant, optimizer, noise=noise, lr=lr, strength=strength, start=start, momentum=momentum)
        paths[variant], first[variant] = weights.mean(dim=1), weights[:, 0]  # (steps + 1, R, P) -> (steps + 1, P)
    return DecayPaths(optimizer, lr, strength, tuple(float(s) for s in scales), paths, first)


@dataclass
class WeightHistogram:
    """Counts of the penalized weights in equal bins over [−limit, limit]; one bin is centred on 0."""

    edges: list[float]  # len(counts) + 1
    counts: list[int]
    zero_fraction: float  # share with |w| < 1e-6 (the history's measure)
    total: int


def weight_histogram(model: nn.Module, *, limit: float | None = None, bins: int = HISTOGRAM_BINS,
                     include_all: bool = False) -> WeightHistogram:
    """The distribution of the weights a penalty acts on (engine.training.penalties' choice).

    `limit` defaults to the largest |w|, so a spike of exact zeros (L1) shows as one tall bar.
    """
    params = penalized_parameters(model, include_all=include_all)
    if not params:
        raise UserInputError("this model has no weights to count")
    flat = torch.cat([p.detach().flatten().float().cpu() for p in params])
    top = float(flat.abs().max()) if limit is None else float(limit)
    top = top if top > 0 else 1.0  # all weights zero: any range shows the one bar
    counts = torch.histc(flat.clamp(-top, top), bins=bins, min=-top, max=top)
    edges = torch.linspace(-top, top, bins + 1)
    return WeightHistogram(edges.tolist(), [int(c) for c in counts.tolist()],
                           float((flat.abs() < ZERO_THRESHOLD).float().mean()), len(flat))


def weight_histograms(models_by_name: Mapping[str, nn.Module], *,
                      bins: int = HISTOGRAM_BINS) -> dict[str, WeightHistogram]:
    """One histogram per model on one shared range (the largest |w| of any), so their widths compare."""
    tops = [float(torch.cat([p.detach().flatten().abs().float().cpu() for p in penalized_parameters(m)]).max())
            for m in models_by_name.values() if penalized_parameters(m)]
    limit = max(tops, default=0.0) or None
    return {name: weight_histogram(model, limit=limit, bins=bins) for name, model in models_by_name.items()}

