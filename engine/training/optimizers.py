"""Optimizer and learning-rate-schedule registries, as used by the Trainer and the optimizer pages.

References:
    Ruder 2016, "An overview of gradient descent optimization algorithms", arXiv 1609.04747.
    Kingma & Ba 2014, "Adam", arXiv 1412.6980; Loshchilov & Hutter 2017, "AdamW", arXiv 1711.05101.
    Loshchilov & Hutter 2016, "SGDR: cosine annealing", arXiv 1608.03983.
    Smith & Topin 2017, "Super-Convergence" (one-cycle), arXiv 1708.07120.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from engine.errors import UserInputError

# name -> (title, update rule in LaTeX, factory(params, lr, momentum, weight_decay))
OPTIMIZERS: dict[str, tuple[str, str, Callable[..., torch.optim.Optimizer]]] = {
    "sgd": ("SGD", r"\theta \leftarrow \theta - \eta\, g",
            lambda p, lr, m, wd: torch.optim.SGD(p, lr=lr, weight_decay=wd)),
    "momentum": ("SGD + momentum", r"v \leftarrow \mu v + g,\quad \theta \leftarrow \theta - \eta\, v",
                 lambda p, lr, m, wd: torch.optim.SGD(p, lr=lr, momentum=m, weight_decay=wd)),
    "nesterov": ("Nesterov momentum",
                 r"v \leftarrow \mu v + g,\quad \theta \leftarrow \theta - \eta\,(g + \mu v)",
                 lambda p, lr, m, wd: torch.optim.SGD(p, lr=lr, momentum=m, nesterov=True, weight_decay=wd)),
    "adagrad": ("AdaGrad", r"G \leftarrow G + g^2,\quad \theta \leftarrow \theta - \frac{\eta\, g}{\sqrt{G}+\epsilon}",
                lambda p, lr, m, wd: torch.optim.Adagrad(p, lr=lr, weight_decay=wd)),
    "rmsprop": ("RMSProp",
                r"\begin{aligned} s &\leftarrow \alpha s + (1-\alpha) g^2 \\ "
                r"\theta &\leftarrow \theta - \frac{\eta\, g}{\sqrt{s}+\epsilon} \end{aligned}",
                lambda p, lr, m, wd: torch.optim.RMSprop(p, lr=lr, weight_decay=wd)),
    "adam": ("Adam",
             r"\begin{aligned} m &\leftarrow \beta_1 m + (1-\beta_1) g \\ v &\leftarrow \beta_2 v + (1-\beta_2) g^2"
             r" \\ \theta &\leftarrow \theta - \frac{\eta\, \hat m}{\sqrt{\hat v}+\epsilon} \end{aligned}",
             lambda p, lr, m, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd)),
    "adamw": ("AdamW", r"\text{Adam, then } \theta \leftarrow \theta - \eta\lambda\theta \text{ (decoupled decay)}",
              lambda p, lr, m, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd)),
}


def optimizer_names() -> list[str]:
    return list(OPTIMIZERS)


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], *, lr: float, momentum: float = 0.9,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise UserInputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    if not lr > 0 or not math.isfinite(lr):
        raise UserInputError(f"learning rate must be a positive number; got {lr}")
    if not 0.0 <= momentum < 1.0:
        raise UserInputError(f"momentum must be in [0, 1); got {momentum}")
    if weight_decay < 0:
        raise UserInputError(f"weight decay must be ≥ 0; got {weight_decay}")
    return OPTIMIZERS[name][2](params, lr, momentum, weight_decay)


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


# name -> (title, factor of the base lr as a function of training progress t ∈ [0, 1])
SCHEDULES: dict[str, tuple[str, Callable[[float], float]]] = {
    "constant": ("Constant", _constant),
    "step": ("Step decay (×0.1 at 50% and 75%)", _step),
    "cosine": ("Cosine annealing", _cosine),
    "one_cycle": ("One-cycle (warm-up, then cosine)", _one_cycle),
}


def schedule_names() -> list[str]:
    return list(SCHEDULES)


def schedule_factor(name: str, step: int, total_steps: int) -> float:
    """The learning-rate multiplier at `step` of `total_steps`."""
    if name not in SCHEDULES:
        raise UserInputError(f"schedule must be one of {', '.join(SCHEDULES)}; got {name!r}")
    return SCHEDULES[name][1](step / max(1, total_steps))


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, total_steps: int):
    """A per-batch LambdaLR following `schedule_factor`."""
    schedule_factor(name, 0, total_steps)  # validates the name
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule_factor(name, step, total_steps))
