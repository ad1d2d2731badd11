"""Mini-batches and learning rates on a real model: gradient noise vs batch size, the learning-rate range test.

A mini-batch gradient is an unbiased estimate of the full-batch gradient whose error shrinks like
1/√B; the range test (Smith 2017) trains for a few hundred steps while the learning rate grows
exponentially and reads a good learning rate off where the loss falls fastest.

References:
    Bottou, Curtis & Nocedal 2018, "Optimization Methods for Large-Scale Machine Learning", §4, arXiv 1606.04838.
    Smith 2017, "Cyclical Learning Rates for Training Neural Networks", §3.3, arXiv 1506.01186.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from engine import limits
from engine.device import RunRandomness, generator as make_generator
from engine.errors import UserInputError
from engine.training.optimizers import build_optimizer, schedule_factor, schedule_names

LossFn = Callable[[Tensor, Tensor], Tensor]
Progress = Callable[[float, str], None]
DIVERGED = 4.0  # the range test stops once the smoothed loss exceeds this many times its minimum


def _gradient(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn) -> Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model(x), y), params)
    return torch.cat([g.reshape(-1) for g in grads])


@dataclass
class GradientNoise:
    """Per batch size: relative errors ‖g_B − g‖ / ‖g‖ and cosines cos(g_B, g) of `repeats` draws."""

    batch_sizes: list[int]
    relative_error: dict[int, np.ndarray]
    cosine: dict[int, np.ndarray]
    full_norm: float

    @property
    def mini_batch_sizes(self) -> list[int]:
        """The batch sizes compared, without the full batch (the last one)."""
        return self.batch_sizes[:-1]

    def mean_error(self) -> np.ndarray:
        """Mean relative error per mini-batch size."""
        return np.array([self.relative_error[b].mean() for b in self.mini_batch_sizes])

    def sqrt_law(self) -> np.ndarray:
        """The 1/√B law through the smallest batch's mean error: what sampling theory predicts for the others."""
        sizes = np.array(self.mini_batch_sizes, dtype=float)
        return self.mean_error()[0] * np.sqrt(sizes[0] / sizes)

    def mean_cosine(self) -> dict[int, float]:
        return {b: float(self.cosine[b].mean()) for b in self.mini_batch_sizes}


def gradient_noise(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn, *, batch_sizes: Sequence[int],
                   repeats: int = 20, seed: int = 0, progress: Progress | None = None) -> GradientNoise:
    """Compare mini-batch gradients (batches drawn without replacement) with the full-batch gradient on x.

    Runs on a private copy in eval mode (dropout off), so the only randomness is which examples are drawn.
    """
    n = len(y)
    bad = [b for b in batch_sizes if not 1 <= b <= n]
    if bad:
        raise UserInputError(f"batch sizes must be between 1 and the {n} examples; got {bad}")
    if not 1 <= repeats <= limits.MAX_MINIBATCH_REPEATS:
        raise UserInputError(f"repeats must be between 1 and {limits.MAX_MINIBATCH_REPEATS}; got {repeats}")
    progress = progress or (lambda fraction, message: None)
    work = copy.deepcopy(model).eval()
    gen = make_generator(seed)
    full = _gradient(work, x, y, loss_fn)
    full_norm = float(full.norm())
    errors, cosines = {}, {}
    for k, b in enumerate(batch_sizes):
        rel, cos = [], []
        for _ in range(repeats if b < n else 1):
            index = torch.randperm(n, generator=gen)[:b].to(x.device)
            g = _gradient(work, x[index], y[index], loss_fn)
            rel.append(float((g - full).norm()) / max(full_norm, 1e-12))
            cos.append(float(torch.nn.functional.cosine_similarity(g, full, dim=0)))
        errors[b], cosines[b] = np.asarray(rel), np.asarray(cos)
        progress((k + 1) / len(batch_sizes), f"batch size {b}")
    return GradientNoise(list(batch_sizes), errors, cosines, full_norm)


@dataclass
class RangeTest:
    """Learning rate and loss per step; `suggested` is where the smoothed loss fell fastest."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested: float
    lowest: float  # the learning rate at the smoothed loss's minimum (a common pick: a tenth of it)
    stopped_early: bool


def lr_range_test(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn, *, optimizer: str = "sgd",
                  lr_min: float = 1e-4, lr_max: float = 10.0, steps: int = 100, batch_size: int = 64,
                  momentum: float = 0.9, seed: int = 0, smoothing: float = 0.9,
                  progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> RangeTest:
    """Train a copy of `model` for `steps` mini-batches with lr growing from lr_min to lr_max geometrically."""
    if not 0 < lr_min < lr_max or not math.isfinite(lr_max):
        raise UserInputError(f"the range test needs 0 < lr_min < lr_max; got {lr_min} and {lr_max}")
    if not 5 <= steps <= limits.MAX_LR_RANGE_STEPS:
        raise UserInputError(f"range-test steps must be between 5 and {limits.MAX_LR_RANGE_STEPS}; got {steps}")
    if not 1 <= batch_size <= len(y):
        raise UserInputError(f"batch size must be between 1 and the {len(y)} examples; got {batch_size}")
    progress = progress or (lambda fraction, message: None)
    should_stop = should_stop or (lambda: False)
    work = copy.deepcopy(model).train()
    opt = build_optimizer(optimizer, work.parameters(), lr=lr_min, momentum=momentum)
    gen = make_generator(seed)  # which examples
    dropout = RunRandomness(seed, x.device)  # the copy trains, so dropout draws from torch's global generator
    factor = (lr_max / lr_min) ** (1 / (steps - 1))
    lrs, raw, smooth = [], [], []
    average, best, stopped = 0.0, math.inf, False
    for step in range(steps):
        if should_stop():
            stopped = True
            break
        lr = lr_min * factor ** step
        for group in opt.param_groups:
            group["lr"] = lr
        index = torch.randint(len(y), (batch_size,), generator=gen).to(x.device)
        with dropout.active():
            loss = loss_fn(work(x[index]), y[index])
        value = float(loss.detach())
        if not math.isfinite(value):
            stopped = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        average = smoothing * average + (1 - smoothing) * value
        unbiased = average / (1 - smoothing ** (step + 1))  # the same bias correction as Adam's
        lrs.append(lr), raw.append(value), smooth.append(unbiased)
        best = min(best, unbiased)
        if step % 5 == 0:
            progress((step + 1) / steps, f"step {step + 1}: lr {lr:.2g}, loss {value:.3f}")
        if unbiased > DIVERGED * best and step > 5:
            stopped = True
            break
    if len(smooth) < 3:
        raise UserInputError("the loss diverged at once: lower lr_min")
    s = np.asarray(smooth)
    slope = np.gradient(s, np.log10(np.asarray(lrs)))
    # The steepest descent before the minimum of the smoothed loss (Smith's "loss still falling fast").
    last = int(np.argmin(s)) + 1
    suggested = float(lrs[int(np.argmin(slope[:last]))])
    return RangeTest(np.asarray(lrs), np.asarray(raw), s, suggested, float(lrs[last - 1]), stopped)


def schedule_curves(*, total_steps: int, base_lr: float, points: int = 400) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Steps (up to `points` of them) and the learning rate of every schedule at those steps, by schedule name."""
    if total_steps < 1 or not base_lr > 0:
        raise UserInputError(f"schedules need ≥ 1 step and a positive learning rate; got {total_steps} and {base_lr}")
    steps = np.linspace(0, total_steps, min(total_steps + 1, points)).round().astype(int)
    return steps, {name: np.array([base_lr * schedule_factor(name, int(s), total_steps) for s in steps])
                   for name in schedule_names()}
