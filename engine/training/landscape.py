"""Loss landscapes of real networks: filter-normalized random planes, interpolation lines, PCA planes.

A landscape is the loss (and accuracy) at θ = θ₀ + α·d₁ + β·d₂ on a grid of (α, β), evaluated on a
fixed batch. Random directions are filter-normalized (Li et al. 2018): every filter of d gets the
norm of the matching filter of θ₀, so scale-invariant networks (ReLU, BatchNorm) can be compared.
As in Li et al.'s code, directions are zero on biases and on 1-D parameters (BatchNorm weights
and biases), and BatchNorm running statistics stay those of the origin model at every point of a
plane; along an interpolation line they are interpolated with the weights.

Measured on this 2-core CPU (benchmarks/landscape_grid.py): evaluating each grid point in chunks
of ~128 images with channels_last is several times faster than one forward of the whole batch;
torch.func.vmap over grid points was slower than a loop, so points are looped.

References:
    Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", arXiv 1712.09913.
    Goodfellow, Vinyals & Saxe 2015, "Qualitatively characterizing neural network optimization
        problems", arXiv 1412.6544 (linear interpolation from initial to trained weights).
    https://github.com/tomgoldstein/loss-landscape (net_plotter.py: filter normalization, 'biasbn')
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import vector_to_parameters

from engine import limits
from engine.device import generator as make_generator
from engine.errors import UserInputError

CHUNK = 128  # images per forward pass: fits in cache, measured fastest here

Progress = Callable[[float, str], None]
LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class Plane:
    """θ(α, β) = origin + α·directions[0] + β·directions[1] (1-D: one direction), over model parameters."""

    kind: str  # "random", "interpolation" or "pca"
    origin: Tensor = field(repr=False)  # flat parameters, in model.parameters() order
    directions: tuple[Tensor, ...] = field(repr=False)
    buffers: dict[str, Tensor] = field(repr=False, default_factory=dict)  # BatchNorm statistics at every point
    buffer_directions: dict[str, Tensor] = field(repr=False, default_factory=dict)  # moved with α (1-D only)
    explained: tuple[float, ...] = ()  # PCA: share of the trajectory's variance along each direction

    @property
    def dims(self) -> int:
        return len(self.directions)


@dataclass
class Landscape:
    """Loss and accuracy on a grid: loss[i, j] at (xs[j], ys[i]); 1-D: loss[j] at xs[j]. NaN = not evaluated."""

    xs: np.ndarray
    ys: np.ndarray | None
    loss: np.ndarray
    acc: np.ndarray
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return bool(np.isfinite(self.acc).all())


# ---- parameters as one flat vector -----------------------------------------------------------
def _param_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_parameters()]


def flatten_state(model: nn.Module, state: Mapping[str, Tensor]) -> Tensor:
    """The parameters of a state_dict as one flat float vector, in model.parameters() order."""
    return torch.cat([state[name].detach().reshape(-1).float().cpu() for name in _param_names(model)])


def _buffers(model: nn.Module, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    params = set(_param_names(model))
    return {k: v.detach().cpu().clone() for k, v in state.items() if k not in params}


# ---- directions -----------------------------------------------------------------------------
def filter_normalized_direction(model: nn.Module, *, generator: torch.Generator) -> Tensor:
    """A Gaussian direction whose every filter has the norm of the model's matching filter.

    A filter is one output slice of a weight (a conv kernel stack, a row of a linear layer).
    Parameters with one dimension (biases, BatchNorm scales) get zero, Li et al.'s 'biasbn' choice.
    """
    parts = []
    for p in model.parameters():
        w = p.detach().cpu().float()
        if w.dim() <= 1:
            parts.append(torch.zeros(w.numel()))
            continue
        d = torch.randn(w.shape, generator=generator)
        w_norm = w.reshape(w.shape[0], -1).norm(dim=1)  # (C_out,)
        d_norm = d.reshape(d.shape[0], -1).norm(dim=1)
        d = d * (w_norm / (d_norm + 1e-10)).reshape(-1, *[1] * (w.dim() - 1))
        parts.append(d.reshape(-1))
    return torch.cat(parts)


def random_plane(model: nn.Module, *, seed: int = 0, dims: int = 2) -> Plane:
    """Filter-normalized random directions around the model's weights (1-D or 2-D)."""
    if dims not in (1, 2):
        raise UserInputError(f"a landscape has 1 or 2 directions; got {dims}")
    gen = make_generator(seed)
    state = model.state_dict()
    directions = tuple(filter_normalized_direction(model, generator=gen) for _ in range(dims))
    return Plane("random", flatten_state(model, state), directions, _buffers(model, state))


def interpolation_line(model: nn.Module, start: Mapping[str, Tensor], end: Mapping[str, Tensor]) -> Plane:
    """θ(α) = (1 − α)·start + α·end: α = 0 is `start` (e.g. the init), α = 1 is `end` (trained)."""
    origin, target = flatten_state(model, start), flatten_state(model, end)
    buffers = _buffers(model, start)
    moving = {k: end[k].detach().cpu().float() - v.float() for k, v in buffers.items() if v.is_floating_point()}
    return Plane("interpolation", origin, (target - origin,), buffers, moving)


def pca_plane(model: nn.Module, paths: Sequence[Sequence[Mapping[str, Tensor]]], *,
              center: str = "final") -> tuple[Plane, list[np.ndarray]]:
    """The plane of the two principal directions of one or more weight trajectories, and the paths on it.

    Li et al. §7: PCA of the matrix [θ_i − θ_n] of a trajectory's snapshots; the plane is centred on
    the final weights of the first path (`center="final"`) or on its start (`"start"`, for several
    paths from one initialization). Returns the plane and each path's (α, β) coordinates (T, 2).
    """
    if not paths or any(len(path) < 3 for path in paths):
        raise UserInputError("a PCA plane needs trajectories of at least 3 weight snapshots "
                             "(train with snapshots on for 2 or more epochs)")
    if center not in ("final", "start"):
        raise UserInputError(f"center must be 'final' or 'start'; got {center!r}")
    ref = paths[0][-1] if center == "final" else paths[0][0]
    origin = flatten_state(model, ref)
    diffs = torch.stack([flatten_state(model, s) - origin for path in paths for s in path]).double()  # (T, P)
    centred = diffs - diffs.mean(0)
    _, sv, vh = torch.linalg.svd(centred, full_matrices=False)  # vh: (T, P), orthonormal rows
    variance = sv ** 2
    explained = tuple(float(v) for v in variance[:2] / variance.sum().clamp_min(1e-30))
    directions = (vh[0].float(), vh[1].float())
    plane = Plane("pca", origin, directions, _buffers(model, ref), explained=explained)
    return plane, [project(model, plane, path) for path in paths]


def project(model: nn.Module, plane: Plane, states: Sequence[Mapping[str, Tensor]]) -> np.ndarray:
    """Least-squares coordinates (T, dims) of weight snapshots on the plane."""
    basis = torch.stack(plane.directions, dim=1).double()  # (P, dims)
    diffs = torch.stack([flatten_state(model, s) - plane.origin for s in states]).double()  # (T, P)
    coords = torch.linalg.lstsq(basis, diffs.T).solution.T  # (T, dims)
    return coords.numpy()


# ---- evaluation -----------------------------------------------------------------------------
def axis(span: float, resolution: int) -> np.ndarray:
    """`resolution` evenly spaced coordinates in [−span, span]."""
    most = limits.MAX_LANDSCAPE_RESOLUTION
    if not 2 <= resolution <= most:
        raise UserInputError(f"grid resolution must be between 2 and {most} points per side "
                             f"(a {most}×{most} grid is {most ** 2} forward passes); got {resolution}")
    if not 0 < span <= 100:
        raise UserInputError(f"grid span must be in (0, 100]; got {span}")
    return np.linspace(-span, span, resolution)


def path_axes(paths: Sequence[np.ndarray], resolution: int, *, margin: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Axes of a grid that holds every (T, 2) path, with `margin` of the extent added on each side."""
    points = np.concatenate([np.asarray(p, dtype=float).reshape(-1, 2) for p in paths])
    low, high = points.min(0), points.max(0)
    pad = np.maximum(margin * (high - low), 1e-3 + 0.05 * np.abs(points).max())
    x, y = (np.linspace(lo, hi, resolution) for lo, hi in zip(low - pad, high + pad))
    axis(1.0, resolution)  # validates the resolution
    return x, y


@dataclass
class PlaneView:
    """A plane to draw, the axes of its grid, and the trajectories that lie on it, (T, 2) each."""

    plane: Plane
    xs: np.ndarray
    ys: np.ndarray
    paths: dict[str, np.ndarray] = field(default_factory=dict)


def plane_view(model: nn.Module, *, kind: str, snapshots: Sequence[Mapping[str, Tensor]] = (), span: float = 1.0,
               resolution: int = 21, seed: int = 0) -> PlaneView:
    """A random filter-normalized plane over ±`span`, or the PCA plane of a run's `snapshots` with its path."""
    if kind == "random":
        xs = axis(span, resolution)
        return PlaneView(random_plane(model, seed=seed), xs, xs)
    if kind == "pca":
        plane, (path,) = pca_plane(model, [snapshots])
        xs, ys = path_axes([path], resolution)
        return PlaneView(plane, xs, ys, {"training path": path})
    raise UserInputError(f"plane kind must be 'random' or 'pca'; got {kind!r}")


def paths_view(model: nn.Module, trajectories: Mapping[str, Sequence[Mapping[str, Tensor]]], *,
               resolution: int) -> PlaneView:
    """The PCA plane through several trajectories from one initialization (centred on it), with every path."""
    plane, coords = pca_plane(model, list(trajectories.values()), center="start")
    xs, ys = path_axes(coords, resolution)
    return PlaneView(plane, xs, ys, dict(zip(trajectories, coords)))


@dataclass
class LineView:
    plane: Plane  # 1-D
    xs: np.ndarray
    from_init: bool  # True: α = 0 is the initialization and α = 1 the trained weights; False: a random direction


def line_view(model: nn.Module, snapshots: Sequence[Mapping[str, Tensor]], *, span: float = 1.0, points: int = 41,
              seed: int = 0) -> LineView:
    """The line from the first snapshot (the initialization) through the trained weights, α ∈ [−0.5, 1.5];
    without snapshots, a random filter-normalized direction over ±`span`."""
    if len(snapshots) >= 2:
        plane = interpolation_line(model, snapshots[0], model.state_dict())
        return LineView(plane, np.linspace(-0.5, 1.5, points), True)
    return LineView(random_plane(model, seed=seed, dims=1), axis(span, points), False)


def coarse_resolution(resolution: int) -> int:
    """The coarse grid whose points are every other point of `resolution` (21 → 11)."""
    return (resolution + 1) // 2 if resolution % 2 else resolution


def _prepared(model: nn.Module, plane: Plane) -> nn.Module:
    """A private eval-mode copy with the plane's buffers; the caller's model stays untouched."""
    work = copy.deepcopy(model).eval()
    if plane.buffers:
        work.load_state_dict(plane.buffers, strict=False)
    if any(p.dim() == 4 for p in work.parameters()):
        work = work.to(memory_format=torch.channels_last)
    for p in work.parameters():
        p.requires_grad_(False)
    return work


def _loss_and_acc(model: nn.Module, images: Tensor, labels: Tensor, loss_fn: LossFn, chunk: int) -> tuple[float, float]:
    total, correct = 0.0, 0
    for start in range(0, len(labels), chunk):
        logits = model(images[start:start + chunk])
        y = labels[start:start + chunk]
        total += float(loss_fn(logits, y)) * len(y)
        correct += int((logits.argmax(1) == y).sum())
    return total / len(labels), correct / len(labels)


def evaluate(model: nn.Module, plane: Plane, images: Tensor, labels: Tensor, loss_fn: LossFn, *,
             xs: np.ndarray, ys: np.ndarray | None = None, previous: Landscape | None = None,
             progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
             chunk: int = CHUNK) -> Landscape:
    """Loss and accuracy at every (α, β) of xs × ys (1-D plane: every α of xs) on one fixed batch.

    Points already in `previous` (a coarser grid) are copied, not recomputed. `should_stop()` is
    checked between points: the landscape comes back with NaN where nothing was evaluated.
    """
    if len(labels) > limits.MAX_LANDSCAPE_IMAGES:
        raise UserInputError(f"the evaluation batch holds at most {limits.MAX_LANDSCAPE_IMAGES} images; "
                             f"got {len(labels)}")
    if (ys is None) != (plane.dims == 1):
        raise UserInputError(f"a {plane.dims}-D plane needs {'only xs' if plane.dims == 1 else 'xs and ys'}")
    side, line = limits.MAX_LANDSCAPE_RESOLUTION, limits.MAX_LANDSCAPE_LINE_POINTS
    if len(xs) > (line if ys is None else side) or (ys is not None and len(ys) > side):
        raise UserInputError(f"grid too large: at most {side}×{side} points (or {line} along a line); "
                             f"got {len(xs)}×{len(ys) if ys is not None else 1}")
    progress = progress or (lambda fraction, message: None)
    should_stop = should_stop or (lambda: False)
    started = time.perf_counter()
    work = _prepared(model, plane)
    params = list(work.parameters())
    device = params[0].device
    x = images.to(device)
    x = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
    y = labels.to(device)
    origin = plane.origin.to(device)
    dirs = [d.to(device) for d in plane.directions]
    shape = (len(xs),) if ys is None else (len(ys), len(xs))
    loss, acc = np.full(shape, np.nan), np.full(shape, np.nan)
    points = [((j,), (a,)) for j, a in enumerate(xs)] if ys is None else \
        [((i, j), (a, b)) for i, b in enumerate(ys) for j, a in enumerate(xs)]
    known = _known_values(previous)
    with torch.no_grad():
        for n, (index, coords) in enumerate(points):
            key = tuple(round(float(c), 9) for c in coords)
            if key in known:
                loss[index], acc[index] = known[key]
                continue
            if should_stop():
                break
            theta = origin.clone()
            for c, d in zip(coords, dirs):
                theta.add_(d, alpha=float(c))
            vector_to_parameters(theta, params)
            for name, delta in plane.buffer_directions.items():
                work.get_buffer(name).copy_(plane.buffers[name] + float(coords[0]) * delta)
            loss[index], acc[index] = _loss_and_acc(work, x, y, loss_fn, chunk)
            if n % 8 == 0 or n == len(points) - 1:
                progress((n + 1) / len(points), f"point {n + 1} of {len(points)}")
    return Landscape(np.asarray(xs), None if ys is None else np.asarray(ys), loss, acc,
                     time.perf_counter() - started)


def _known_values(previous: Landscape | None) -> dict[tuple[float, ...], tuple[float, float]]:
    if previous is None:
        return {}
    known = {}
    if previous.ys is None:
        for j, a in enumerate(previous.xs):
            if math.isfinite(previous.acc[j]):
                known[(round(float(a), 9),)] = (previous.loss[j], previous.acc[j])
        return known
    for i, b in enumerate(previous.ys):
        for j, a in enumerate(previous.xs):
            if math.isfinite(previous.acc[i, j]):
                known[(round(float(a), 9), round(float(b), 9))] = (previous.loss[i, j], previous.acc[i, j])
    return known


def naive_evaluate(model: nn.Module, plane: Plane, images: Tensor, labels: Tensor, loss_fn: LossFn, *,
                   xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The textbook loop (load a state_dict per point, one forward of every image): the benchmark's baseline."""
    work = copy.deepcopy(model).eval()
    names = _param_names(work)
    sizes = [p.numel() for p in work.parameters()]
    shapes = [p.shape for p in work.parameters()]
    state = dict(work.state_dict())
    out = np.zeros((len(ys), len(xs)))
    with torch.no_grad():
        for i, b in enumerate(ys):
            for j, a in enumerate(xs):
                theta = plane.origin + float(a) * plane.directions[0] + float(b) * plane.directions[1]
                for name, part, shape in zip(names, theta.split(sizes), shapes):
                    state[name] = part.reshape(shape)
                work.load_state_dict(state)
                out[i, j] = float(loss_fn(work(images), labels))
    return out

