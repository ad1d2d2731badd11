"""Two-dimensional test functions, and the paths real `torch.optim` optimizers take across them.

Each surface is a torch function of (x, y), so the gradient comes from autograd and the optimizer
is the very one the Trainer uses (engine.training.optimizers.build_optimizer); only the parameters are two.

References:
    Rosenbrock 1960, "An automatic method for finding the greatest or least value of a function".
    Surjanovic & Bingham, "Virtual Library of Simulation Experiments: test functions",
        https://www.sfu.ca/~ssurjano/optimization.html (Beale, Rastrigin, Rosenbrock)
    Himmelblau 1972, "Applied Nonlinear Programming".
    Goh 2017, "Why Momentum Really Works", Distill, https://distill.pub/2017/momentum/
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from engine import limits
from engine.errors import UserInputError
from engine.registry import Registry
from engine.training.optimizers import build_optimizer, optimizer_info

ESCAPE_FACTOR = 50.0  # a path further than this many box widths from the box counts as diverged
CONDITION_RANGE = (1.0, 1000.0)

SurfaceFn = Callable[[Tensor, Tensor, float], Tensor]  # (x, y, condition number) -> f, elementwise


@dataclass(frozen=True)
class Surface:
    name: str
    title: str
    formula: str  # LaTeX
    fn: SurfaceFn = field(repr=False)
    bounds: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max of the plotted box
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]  # global minima (the quadratic's does not move with κ)
    lr: dict[str, float]  # a learning rate that works, per optimizer family ("sgd", "adaptive")
    log_scale: bool = False  # values span decades: plot log10(f − f_min + 1)
    note: str = ""


def _quadratic(x: Tensor, y: Tensor, condition: float) -> Tensor:
    return 0.5 * (x ** 2 + condition * y ** 2)


def _rosenbrock(x: Tensor, y: Tensor, condition: float) -> Tensor:
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def _beale(x: Tensor, y: Tensor, condition: float) -> Tensor:
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2 + (2.625 - x + x * y ** 3) ** 2


def _saddle(x: Tensor, y: Tensor, condition: float) -> Tensor:
    return x ** 2 - y ** 2 + 0.25 * y ** 4 + 1.0  # saddle at 0, minima at (0, ±√2) with f = 0


def _himmelblau(x: Tensor, y: Tensor, condition: float) -> Tensor:
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2


def _rastrigin(x: Tensor, y: Tensor, condition: float) -> Tensor:
    return 20 + x ** 2 - 10 * torch.cos(2 * math.pi * x) + y ** 2 - 10 * torch.cos(2 * math.pi * y)


SURFACES: Registry[Surface] = Registry("surface")
for _surface in (
    Surface("quadratic", "Ill-conditioned quadratic", r"f = \tfrac12\,(x^2 + \kappa\, y^2)", _quadratic,
            (-5.0, 5.0, -3.0, 3.0), (-4.5, 2.0), ((0.0, 0.0),), {"sgd": 0.05, "adaptive": 0.3},
            note="The condition number κ is the ratio of the largest to the smallest curvature; "
                 "plain gradient descent diverges once η > 2/κ."),
    Surface("rosenbrock", "Rosenbrock's banana", r"f = (1-x)^2 + 100\,(y - x^2)^2", _rosenbrock,
            (-2.0, 2.0, -1.0, 3.0), (-1.5, 2.5), ((1.0, 1.0),), {"sgd": 1e-3, "adaptive": 0.05}, log_scale=True,
            note="A long curved valley: finding it is easy, following it to (1, 1) is hard."),
    Surface("beale", "Beale", r"f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2", _beale,
            (-4.5, 4.5, -4.5, 4.5), (1.0, 1.5), ((3.0, 0.5),), {"sgd": 1e-3, "adaptive": 0.05}, log_scale=True,
            note="Flat plateaus beside steep walls: gradients differ by orders of magnitude."),
    Surface("saddle", "Saddle point", r"f = x^2 - y^2 + \tfrac14 y^4 + 1", _saddle,
            (-2.5, 2.5, -2.5, 2.5), (-2.0, 1e-3), ((0.0, math.sqrt(2)), (0.0, -math.sqrt(2))),
            {"sgd": 0.05, "adaptive": 0.05},
            note="The origin is a saddle: the gradient vanishes there, yet it is no minimum."),
    Surface("himmelblau", "Himmelblau", r"f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2", _himmelblau,
            (-5.0, 5.0, -5.0, 5.0), (-0.5, -0.5),
            ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
            {"sgd": 0.005, "adaptive": 0.1}, log_scale=True,
            note="Four equally good minima: which one you reach depends on the start and the optimizer."),
    Surface("rastrigin", "Rastrigin", r"f = 20 + \sum_{i} \left(x_i^2 - 10\cos 2\pi x_i\right)", _rastrigin,
            (-4.5, 4.5, -4.5, 4.5), (3.2, -2.8), ((0.0, 0.0),), {"sgd": 0.002, "adaptive": 0.05},
            note="Many local minima on a bowl: gradient methods stop in the nearest one."),
):
    SURFACES.add(_surface.name, _surface)


def names() -> list[str]:
    return SURFACES.names()


def info(name: str) -> Surface:
    return SURFACES.get(name)


def _check_condition(condition: float) -> None:
    low, high = CONDITION_RANGE
    if not low <= condition <= high:
        raise UserInputError(f"condition number κ must be between {low:g} and {high:g}; got {condition}")


def suggested_lr(surface: str, optimizer: str) -> float:
    """A learning rate that reaches a minimum of `surface` in a few hundred steps."""
    return info(surface).lr["adaptive" if optimizer_info(optimizer).adaptive else "sgd"]


def evaluate(surface: str, x: Tensor, y: Tensor, *, condition: float = 10.0) -> Tensor:
    """f(x, y) elementwise."""
    _check_condition(condition)
    return info(surface).fn(x, y, condition)


@dataclass
class Grid:
    """f on a regular grid: z[i, j] = f(xs[j], ys[i]) (rows are y, as plotly's contour wants)."""

    xs: np.ndarray
    ys: np.ndarray
    z: np.ndarray


def grid(surface: str, *, resolution: int = 121, condition: float = 10.0,
         bounds: tuple[float, float, float, float] | None = None) -> Grid:
    """Evaluate `surface` on resolution × resolution points in one vectorized call."""
    if not 2 <= resolution <= limits.MAX_SURFACE_GRID:
        raise UserInputError(f"grid resolution must be between 2 and {limits.MAX_SURFACE_GRID}; got {resolution}")
    x0, x1, y0, y1 = bounds or info(surface).bounds
    xs = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    ys = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
    z = evaluate(surface, xx, yy, condition=condition)
    return Grid(xs.numpy(), ys.numpy(), z.numpy())


@dataclass
class Trajectory:
    """Where an optimizer went: positions[k] after k steps, f there, and the length of each step."""

    optimizer: str
    lr: float
    positions: np.ndarray  # (K + 1, 2)
    losses: np.ndarray  # (K + 1,)
    step_sizes: np.ndarray  # (K,) Euclidean length of each step
    diverged: bool = False
    message: str = ""

    def __repr__(self) -> str:
        end = "diverged" if self.diverged else f"f = {self.losses[-1]:.4g}"
        return f"Trajectory({self.optimizer}, lr={self.lr:g}, {len(self.step_sizes)} steps, {end})"


def trajectory(surface: str, optimizer: str, *, lr: float, steps: int = 200,
               start: tuple[float, float] | None = None, momentum: float = 0.9, condition: float = 10.0,
               weight_decay: float = 0.0) -> Trajectory:
    """Run `optimizer` for `steps` steps on `surface` from `start`.

    A path that leaves the plotted box by far (or whose f stops being finite) ends at the last
    finite point with `diverged` set and a message, so plots never receive NaN or 1e30.
    """
    if not 1 <= steps <= limits.MAX_PATH_STEPS:
        raise UserInputError(f"steps must be between 1 and {limits.MAX_PATH_STEPS}; got {steps}")
    _check_condition(condition)
    entry = info(surface)
    x0, x1, y0, y1 = entry.bounds
    limit = ESCAPE_FACTOR * max(x1 - x0, y1 - y0)
    point = torch.tensor(start or entry.start, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer(optimizer, [point], lr=lr, momentum=momentum, weight_decay=weight_decay)
    positions = [point.detach().clone()]
    with torch.no_grad():
        losses = [float(entry.fn(point[0], point[1], condition))]
    diverged, message = False, ""
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        entry.fn(point[0], point[1], condition).backward()
        opt.step()
        with torch.no_grad():
            value = float(entry.fn(point[0], point[1], condition))
        where = point.detach().clone()
        if not (math.isfinite(value) and bool(torch.isfinite(where).all())) or float(where.abs().max()) > limit:
            diverged = True
            message = (f"{optimizer_info(optimizer).title} diverged at step {step} with learning rate {lr:g}: "
                       "each step overshot the valley by more than the last. The path stops at the last "
                       "finite point; try a smaller learning rate.")
            break
        positions.append(where)
        losses.append(value)
    pos = torch.stack(positions).numpy()
    return Trajectory(optimizer, lr, pos, np.asarray(losses), np.linalg.norm(np.diff(pos, axis=0), axis=1),
                      diverged, message)


def nearest_minimum(surface: str, point: tuple[float, float]) -> tuple[tuple[float, float], float]:
    """The listed global minimum closest to `point`, and the distance to it."""
    best = min(info(surface).minima, key=lambda m: math.dist(m, point))
    return best, math.dist(best, point)
