"""Optimizer and learning-rate-schedule registries, as used by the Trainer and the optimizer pages.

References:
    Ruder 2016, "An overview of gradient descent optimization algorithms", arXiv 1609.04747.
    Kingma & Ba 2014, "Adam", arXiv 1412.6980; Loshchilov & Hutter 2017, "AdamW", arXiv 1711.05101.
    Loshchilov & Hutter 2016, "SGDR: cosine annealing", arXiv 1608.03983.
    Smith & Topin 2017, "Super-Convergence" (one-cycle), arXiv 1708.07120.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch

from engine.errors import UserInputError
from engine.registry import Registry


@dataclass(frozen=True)
class OptimizerInfo:
    """One optimizer: its update rule for the page and the `torch.optim` class that runs it.

    The same arguments build the optimizer (`build`) and its source line for exported code (`source`).
    """

    name: str
    title: str
    rule: str  # the update rule, LaTeX
    torch_class: type[torch.optim.Optimizer] = field(repr=False)
    uses_momentum: bool = False  # takes the momentum μ of the controls
    adaptive: bool = False  # per-coordinate step sizes
    fixed: Mapping[str, object] = field(default_factory=dict)  # arguments that make the variant, e.g. nesterov

    def arguments(self, *, lr: float, momentum: float, weight_decay: float) -> dict[str, object]:
        return {"lr": lr, **({"momentum": momentum} if self.uses_momentum else {}), **self.fixed,
                "weight_decay": weight_decay}

    def build(self, params: Iterable[torch.nn.Parameter], *, lr: float, momentum: float,
              weight_decay: float) -> torch.optim.Optimizer:
        return self.torch_class(params, **self.arguments(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def source(self, params: str, *, lr: float, momentum: float, weight_decay: float) -> str:
        """Source that builds this optimizer over `params`: `torch.optim.SGD(model.parameters(), lr=0.1, …)`."""
        arguments = self.arguments(lr=lr, momentum=momentum, weight_decay=weight_decay)
        return f"torch.optim.{self.torch_class.__name__}({params}, " + ", ".join(
            f"{key}={value!r}" for key, value in arguments.items()) + ")"


# In the order the lectures build them up: plain steps, momentum, then per-coordinate step sizes.
OPTIMIZERS: Registry[OptimizerInfo] = Registry("optimizer")
for _optimizer in (
    OptimizerInfo("sgd", "SGD", r"\theta \leftarrow \theta - \eta\, g", torch.optim.SGD),
    OptimizerInfo("momentum", "SGD + momentum", r"v \leftarrow \mu v + g,\quad \theta \leftarrow \theta - \eta\, v",
                  torch.optim.SGD, uses_momentum=True),
    OptimizerInfo("nesterov", "Nesterov momentum",
                  r"v \leftarrow \mu v + g,\quad \theta \leftarrow \theta - \eta\,(g + \mu v)",
                  torch.optim.SGD, uses_momentum=True, fixed={"nesterov": True}),
    OptimizerInfo("adagrad", "AdaGrad",
                  r"G \leftarrow G + g^2,\quad \theta \leftarrow \theta - \frac{\eta\, g}{\sqrt{G}+\epsilon}",
                  torch.optim.Adagrad, adaptive=True),
    OptimizerInfo("rmsprop", "RMSProp",
                  r"\begin{aligned} s &\leftarrow \alpha s + (1-\alpha) g^2 \\ "
                  r"\theta &\leftarrow \theta - \frac{\eta\, g}{\sqrt{s}+\epsilon} \end{aligned}",
                  torch.optim.RMSprop, adaptive=True),
    OptimizerInfo("adam", "Adam",
                  r"\begin{aligned} m &\leftarrow \beta_1 m + (1-\beta_1) g \\ v &\leftarrow \beta_2 v + (1-\beta_2) g^2"
                  r" \\ \theta &\leftarrow \theta - \frac{\eta\, \hat m}{\sqrt{\hat v}+\epsilon} \end{aligned}",
                  torch.optim.Adam, adaptive=True),
    OptimizerInfo("adamw", "AdamW",
                  r"\text{Adam, then } \theta \leftarrow \theta - \eta\lambda\theta \text{ (decoupled decay)}",
                  torch.optim.AdamW, adaptive=True),
):
    OPTIMIZERS.add(_optimizer.name, _optimizer)


def optimizer_names() -> list[str]:
    return OPTIMIZERS.names()


def optimizer_info(name: str) -> OptimizerInfo:
    return OPTIMIZERS.get(name)


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], *, lr: float, momentum: float = 0.9,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    entry = OPTIMIZERS.get(name)
    if not lr > 0 or not math.isfinite(lr):
        raise UserInputError(f"learning rate must be a positive number; got {lr}")
    if not 0.0 <= momentum < 1.0:
        raise UserInputError(f"momentum must be in [0, 1); got {momentum}")
    if weight_decay < 0:
        raise UserInputError(f"weight decay must be ≥ 0; got {weight_decay}")
    if entry.fixed.get("nesterov") and momentum == 0:  # torch.optim.SGD refuses it: there is nothing to look ahead with
        raise UserInputError(f"Nesterov momentum needs a momentum μ > 0 (μ = 0 is plain SGD); got {momentum}")
    return entry.build(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _constant(t: float) -> float:
    return 1.0


def _step(t: float) -> float:
    return 0.1 ** ((t >= 0.5) + (t >= 0.75))  # ×0.1 at half and at three quarters of training


def _cosine(t: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * t))


def _one_cycle(t: float, warmup: float = 0.3, start: float = 1 / 25) -> float:
    if t < warmup:  # linear warm-up from lr/25 to lr
        return start + (1 - start) * t / warmup
    return _cosine((t - warmup) / (1 - warmup))


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    title: str
    factor: Callable[[float], float] = field(repr=False)  # of the base lr, at training progress t ∈ [0, 1]


SCHEDULES: Registry[ScheduleInfo] = Registry("schedule")
for _schedule in (
    ScheduleInfo("constant", "Constant", _constant),
    ScheduleInfo("step", "Step decay (×0.1 at 50% and 75%)", _step),
    ScheduleInfo("cosine", "Cosine annealing", _cosine),
    ScheduleInfo("one_cycle", "One-cycle (warm-up, then cosine)", _one_cycle),
):
    SCHEDULES.add(_schedule.name, _schedule)
# Stepped per epoch by the validation loss (Plateau below), not by progress: its factor in-epoch is 1.
SCHEDULES.add(PLATEAU := "reduce_on_plateau",
              ScheduleInfo(PLATEAU, "Reduce on plateau (÷10 when the validation loss stalls)", _constant))


def schedule_names() -> list[str]:
    return SCHEDULES.names()


def schedule_info(name: str) -> ScheduleInfo:
    return SCHEDULES.get(name)


def schedule_factor(name: str, step: int, total_steps: int) -> float:
    """The learning-rate multiplier at `step` of `total_steps`."""
    return SCHEDULES.get(name).factor(step / max(1, total_steps))


class Plateau:
    """The `reduce_on_plateau` factor: ×0.1 once the validation loss has not improved for `patience` epochs.

    Like torch's ReduceLROnPlateau (mode "min", relative threshold 1e-4, no cooldown), except that
    it divides after `patience` stalled epochs, not `patience` + 1, matching early stopping's count.
    """

    def __init__(self, *, patience: int, factor: float = 0.1, threshold: float = 1e-4):
        if patience < 1:
            raise UserInputError(f"plateau patience must be ≥ 1 epoch; got {patience}")
        self.patience, self.factor, self.threshold = patience, factor, threshold
        self.scale, self.best, self.stale = 1.0, math.inf, 0

    def step(self, val_loss: float) -> bool:
        """Record one epoch's validation loss; True when this epoch divided the learning rate."""
        if val_loss < self.best * (1 - self.threshold):
            self.best, self.stale = val_loss, 0
            return False
        self.stale += 1
        if self.stale < self.patience:
            return False
        self.scale *= self.factor
        self.stale = 0
        return True
