"""Two-dimensional toy classification: the data sets a linear classifier cannot separate, and small nets that can.

The lectures' hard cases for a linear classifier (two quadrants of one class, a ring around a blob,
classes with several separate modes) come first, then the TensorFlow Playground's sets. A model
takes raw (x, y) points: optional input features (x², y², xy, sin) are its first module, so the
decision grid, the hidden units' own grids and the predictions all start from the same plane.

References:
    Smilkov & Carter, TensorFlow Playground, https://playground.tensorflow.org
    Minsky & Papert 1969, "Perceptrons" (XOR is not linearly separable).
    scikit-learn `make_moons` / `make_circles`, https://scikit-learn.org/stable/datasets/sample_generators.html
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

from engine import limits
from engine.device import generator, seeded
from engine.errors import UserInputError
from engine.models.blocks import evaluating, make_activation
from engine.registry import Registry

DIVERGED_LOSS = 1e4  # a cross-entropy this large on two classes means the steps overshoot

Generate = Callable[[int, float, torch.Generator], tuple[Tensor, Tensor]]  # (n, noise, gen) -> x, y


@dataclass(frozen=True)
class ToySet:
    name: str
    title: str
    make: Generate = field(repr=False)
    note: str = ""
    lecture_case: bool = False  # one of the lecture's hard cases for a linear classifier


def _labels(n: int, gen: torch.Generator, classes: int = 2) -> Tensor:
    return torch.randint(0, classes, (n,), generator=gen)


def _noisy(points: Tensor, noise: float, gen: torch.Generator) -> Tensor:
    return points + noise * torch.randn(points.shape, generator=gen)


def _angles(n: int, gen: torch.Generator) -> Tensor:
    return 2 * math.pi * torch.rand(n, generator=gen)


def _quadrants(n: int, noise: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    # Blobs at (±1, ±1); the two on one diagonal are class 1.
    corner = torch.randint(0, 4, (n,), generator=gen)
    centres = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]])
    return _noisy(centres[corner], 0.15 + 0.35 * noise, gen), (corner < 2).long()


def _ring(n: int, noise: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    y = _labels(n, gen)
    radius = torch.where(y == 1, 1.5, 0.0) + (0.1 + 0.3 * noise) * torch.randn(n, generator=gen)
    angle = _angles(n, gen)
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return _noisy(points, 0.1 * noise, gen), y


def _modes(n: int, noise: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    # Six blobs around a circle, alternating classes: each class has three separate modes, and any
    # line leaves at least one blob of each class on the wrong side (best ≈ 4 of 6 blobs right).
    blob = torch.randint(0, 6, (n,), generator=gen)
    angle = blob * (math.pi / 3)
    centres = 1.5 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return _noisy(centres, 0.12 + 0.3 * noise, gen), blob % 2


def _moons(n: int, noise: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    y = _labels(n, gen)
    t = math.pi * torch.rand(n, generator=gen)
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    points = torch.where(y[:, None] == 0, upper, lower) - torch.tensor([0.5, 0.25])
    return _noisy(points, 0.3 * noise, gen), y


def _circles(n: int, noise: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    y = _labels(n, gen)
    radius = torch.where(y == 0, 1.0, 0.5)
    angle = _angles(n, gen)
    points = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return _noisy(points, 0.2 * noise, gen), y


def _xor(n: int, noise: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    # Uniform in the square with a small gap along the axes (as in the Playground): the label is the sign of x·y.
    points = torch.rand(n, 2, generator=gen) * 0.95 + 0.05
    points = points * torch.where(torch.rand(n, 2, generator=gen) < 0.5, -1.0, 1.0)
    y = (points[:, 0] * points[:, 1] > 0).long()
    return _noisy(points, 0.25 * noise, gen), y


def _spiral(n: int, noise: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    y = _labels(n, gen)
    t = torch.rand(n, generator=gen)
    radius = 0.1 + 1.4 * t
    angle = 3 * math.pi * t + math.pi * y
    points = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return _noisy(points, 0.15 * noise, gen), y


TOY_SETS: Registry[ToySet] = Registry("2-D data set")
for _entry in (
    ToySet("quadrants", "Two quadrants of one class", _quadrants, "Opposite corners share a class: XOR with blobs.",
           lecture_case=True),
    ToySet("ring", "Ring around a blob", _ring, "One class encloses the other: no line cuts a ring from its centre.",
           lecture_case=True),
    ToySet("modes", "Several separate modes", _modes, "Each class is three blobs, alternating around a circle.",
           lecture_case=True),
    ToySet("moons", "Two moons", _moons, "Two interleaved half circles."),
    ToySet("circles", "Concentric circles", _circles, "A small circle inside a large one."),
    ToySet("xor", "XOR", _xor, "Uniform points labelled by the sign of x·y."),
    ToySet("spiral", "Spiral", _spiral, "Two interleaved spiral arms: the hard one for small nets."),
):
    TOY_SETS.add(_entry.name, _entry)


def toy_names() -> list[str]:
    return TOY_SETS.names()


def toy_info(name: str) -> ToySet:
    return TOY_SETS.get(name)


def make(name: str, *, n_points: int, noise: float, seed: int) -> tuple[Tensor, Tensor]:
    """`n_points` points of the set `name`: x float32 (N, 2), y int64 (N,) in {0, 1}; the same for the same seed."""
    entry = TOY_SETS.get(name)
    if not limits.MIN_TOY_POINTS <= n_points <= limits.MAX_TOY_POINTS:
        raise UserInputError(f"number of points must be in {limits.MIN_TOY_POINTS}…{limits.MAX_TOY_POINTS} "
                             f"(kept small so training stays live); got {n_points}")
    if not 0.0 <= noise <= limits.MAX_TOY_NOISE:
        raise UserInputError(f"noise must be in 0…{limits.MAX_TOY_NOISE:g}; got {noise}")
    x, y = entry.make(int(n_points), float(noise), generator(seed))
    return x.float(), y.long()


@dataclass(frozen=True)
class Split:
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def split(x: Tensor, y: Tensor, *, test_share: float, seed: int) -> Split:
    """A random train/test split; at least one point stays on each side unless `test_share` is 0."""
    if not 0.0 <= test_share <= 0.9:
        raise UserInputError(f"test share must be in 0…0.9; got {test_share}")
    order = torch.randperm(len(x), generator=generator(seed))
    n_test = min(len(x) - 1, max(1, round(test_share * len(x)))) if test_share > 0 else 0
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])


OWN_POINT_RANGE = 5.0  # |x|, |y| of an added point: the generated sets live within about ±2


def add_points(data: Split, points: Sequence[tuple[float, float, int]]) -> Split:
    """`data` with the user's own training points (x, y, class 0 or 1) added to the training split."""
    if len(points) > limits.MAX_OWN_POINTS:
        raise UserInputError(f"at most {limits.MAX_OWN_POINTS} points can be added by hand; got {len(points)}")
    for row, (x, y, label) in enumerate(points, start=1):
        if not all(math.isfinite(v) and abs(v) <= OWN_POINT_RANGE for v in (x, y)):
            raise UserInputError(f"point {row}: x and y must be numbers in ±{OWN_POINT_RANGE:g}; got ({x}, {y})")
        if label not in (0, 1):
            raise UserInputError(f"point {row}: the class must be 0 or 1; got {label}")
    if not points:
        return data
    own_x = torch.tensor([(x, y) for x, y, _ in points], dtype=data.x_train.dtype)  # (M, 2)
    own_y = torch.tensor([label for _, _, label in points], dtype=data.y_train.dtype)
    return replace(data, x_train=torch.cat([data.x_train, own_x]), y_train=torch.cat([data.y_train, own_y]))


# ---- input features ------------------------------------------------------------------------
FEATURES: Registry[Callable[[Tensor], Tensor]] = Registry("input feature")
FEATURE_TITLES = {"x2": "x²", "y2": "y²", "xy": "x·y", "sin_x": "sin x", "sin_y": "sin y"}
for _name, _fn in (("x2", lambda p: p[:, 0] ** 2), ("y2", lambda p: p[:, 1] ** 2), ("xy", lambda p: p[:, 0] * p[:, 1]),
                   ("sin_x", lambda p: torch.sin(p[:, 0])), ("sin_y", lambda p: torch.sin(p[:, 1]))):
    FEATURES.add(_name, _fn)


def feature_map(points: Tensor, *, features: Sequence[str] = ()) -> Tensor:
    """(N, 2) points → (N, 2 + F): x, y, then each chosen feature."""
    extra = [FEATURES.get(name)(points) for name in features]
    return torch.cat([points, torch.stack(extra, 1)], 1) if extra else points


class FeatureMap(nn.Module):
    """The first module of a toy model: raw (x, y) in, (x, y, chosen features) out; nothing learned."""

    def __init__(self, features: Sequence[str] = ()):
        super().__init__()
        self.features = tuple(features)
        for name in self.features:
            FEATURES.get(name)  # refuse an unknown name when the model is built, not at the first step

    def forward(self, points: Tensor) -> Tensor:
        return feature_map(points, features=self.features)

    def extra_repr(self) -> str:
        return ", ".join(("x", "y") + self.features)


# ---- models --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToyNet:
    """A toy model: no hidden layer is the linear softmax classifier."""

    hidden: tuple[int, ...] = (8, 8)
    activation: str = "tanh"
    features: tuple[str, ...] = ()


def build_model(config: ToyNet, *, seed: int, num_classes: int = 2) -> nn.Sequential:
    """FeatureMap → (Linear → activation) per hidden layer → Linear to the class scores."""
    if len(config.hidden) > limits.MAX_TOY_HIDDEN_LAYERS:
        raise UserInputError(f"hidden layers must be at most {limits.MAX_TOY_HIDDEN_LAYERS}; got {len(config.hidden)}")
    if any(not 1 <= width <= limits.MAX_TOY_UNITS for width in config.hidden):
        raise UserInputError(f"units per hidden layer must be in 1…{limits.MAX_TOY_UNITS}; got {list(config.hidden)}")
    layers: list[nn.Module] = [FeatureMap(config.features)]
    width = 2 + len(config.features)
    with seeded(seed):  # nn.Linear draws its initial weights from the global generator
        for units in config.hidden:
            layers += [nn.Linear(width, units), make_activation(config.activation)]
            width = units
        layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


# ---- training ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Steps:
    losses: list[float]  # training loss before each step that was taken
    diverged: bool = False  # stopped: the loss blew up; the weights are the last good ones


def _healthy(value: float) -> bool:
    return math.isfinite(value) and value <= DIVERGED_LOSS


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, *, steps: int) -> Steps:
    """`steps` full-batch cross-entropy steps; an exploding loss stops them and brings back the last good weights.

    The loss of the weights a step produced is only known at the next forward pass, so each step
    keeps a copy of the weights it started from (a few hundred numbers here) and a final forward
    pass checks the last step.
    """
    losses: list[float] = []
    last_good: list[Tensor] | None = None
    model.train()
    for _ in range(steps + 1):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        if not _healthy(loss.item()):
            if last_good is not None:
                with torch.no_grad():
                    for p, kept in zip(model.parameters(), last_good):
                        p.copy_(kept)
            return Steps(losses, diverged=True)
        if len(losses) == steps:
            break
        last_good = [p.detach().clone() for p in model.parameters()]
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return Steps(losses)


@dataclass(frozen=True)
class Score:
    loss: float
    accuracy: float


def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> Score:
    """Cross-entropy and accuracy on (x, y), without gradients; NaN for an empty set."""
    if len(x) == 0:
        return Score(math.nan, math.nan)
    with evaluating(model), torch.no_grad():
        logits = model(x)
        return Score(nn.functional.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item())


def linear_accuracy(x: Tensor, y: Tensor) -> float:
    """Training accuracy of scikit-learn's logistic regression on raw (x, y): about the best any line does."""
    from sklearn.linear_model import LogisticRegression  # imported here: scikit-learn loads slowly

    labels = y.numpy()
    if len(np.unique(labels)) < 2:
        return 1.0
    fit = LogisticRegression(C=1e4, max_iter=1000).fit(x.numpy(), labels)  # large C: almost no penalty
    return float(fit.score(x.numpy(), labels))


# ---- grids ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    xs: np.ndarray  # (R,) column coordinates
    ys: np.ndarray  # (R,) row coordinates
    values: np.ndarray  # (R, R) or (K, R, R), row i at ys[i]


def bounds_of(*points: Tensor, margin: float = 0.15) -> tuple[float, float, float, float]:
    """x_min, x_max, y_min, y_max around all the (N, 2) point sets, widened by `margin` of the span on every side."""
    x = torch.cat(points)
    low, high = x.min(0).values, x.max(0).values
    pad = margin * (high - low).clamp_min(1e-3)
    (x_min, y_min), (x_max, y_max) = (low - pad).tolist(), (high + pad).tolist()
    return x_min, x_max, y_min, y_max


def _grid_points(bounds: Sequence[float], resolution: int) -> tuple[Tensor, Tensor, Tensor]:
    if not 2 <= resolution <= limits.MAX_TOY_RESOLUTION:
        raise UserInputError(f"grid resolution must be in 2…{limits.MAX_TOY_RESOLUTION}; got {resolution}")
    x_min, x_max, y_min, y_max = bounds
    xs, ys = torch.linspace(x_min, x_max, resolution), torch.linspace(y_min, y_max, resolution)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (R, R) each, row = y
    return xs, ys, torch.stack([gx.flatten(), gy.flatten()], 1)  # (R·R, 2)


def decision_grid(model: nn.Module, bounds: Sequence[float], resolution: int) -> Grid:
    """Class probabilities at every point of a resolution × resolution grid over `bounds`: values (K, R, R)."""
    xs, ys, points = _grid_points(bounds, resolution)
    with evaluating(model), torch.no_grad():
        probs = torch.softmax(model(points), 1)  # (R·R, K)
    return Grid(xs.numpy(), ys.numpy(), probs.T.reshape(-1, resolution, resolution).numpy())


def unit_grids(model: nn.Sequential, bounds: Sequence[float], resolution: int) -> Grid | None:
    """Each first-hidden-layer unit's activation over the grid: values (units, R, R); None for a linear model."""
    if len(model) < 4:  # FeatureMap, Linear: no hidden layer
        return None
    xs, ys, points = _grid_points(bounds, resolution)
    with evaluating(model), torch.no_grad():
        units = model[:3](points)  # FeatureMap → Linear → activation: (R·R, units)
    return Grid(xs.numpy(), ys.numpy(), units.T.reshape(-1, resolution, resolution).numpy())
