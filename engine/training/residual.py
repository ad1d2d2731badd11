"""Residual learning experiments: the degradation problem, the lesion study, and the paths of a ResNet.

Degradation (He et al. 2016, fig. 1 and 6): a deeper *plain* network ends with a higher *training*
loss than a shallower one, so the problem is optimization, not overfitting; the same networks with
shortcuts do not get worse with depth. Lesion (Veit, Wilber & Belongie 2016): delete one residual
branch F from a trained ResNet (the shortcut stays, projections included) and its test accuracy
barely moves, while deleting a layer of a plain network destroys it; a ResNet of n blocks behaves
like an ensemble of its 2ⁿ paths, whose lengths follow a binomial distribution.

References:
    He et al. 2016, "Deep Residual Learning for Image Recognition", arXiv 1512.03385, §4.2.
    Veit, Wilber & Belongie 2016, "Residual Networks Behave Like Ensembles of Relatively Shallow
        Networks", arXiv 1605.06431, §4–5.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from engine.data.sets import Dataset, Split
from engine.errors import UserInputError
from engine.models.blocks import evaluating
from engine.models.resnet import ResidualBlock
from engine.training.config import TrainConfig
from engine.training.events import Event
from engine.training.interleaved import train_interleaved
from engine.training.runs import Run
from engine.training.trainer import evaluate

LESION_DRAWS = 10  # random block subsets per k, as in Veit et al. fig. 5
MIN_DEPTHS = 2  # the degradation experiment compares depths


# ---------------------------------------------------------------- degradation
@dataclass(frozen=True)
class DegradationRecipe:
    """The one recipe every net of the experiment trains with (measured in benchmarks/degradation.py).

    Plain SGD at η = 0.1 with a cosine decay: SGD + momentum 0.9 at the paper's η = 0.1 also left
    the 44-layer *residual* net far from converged in 10 epochs on digits.
    """

    depths: tuple[int, ...] = (8, 20, 32, 44)
    width: int = 16
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9  # used only by the momentum optimizers
    batch_size: int = 64
    epochs: int = 10
    schedule: str = "cosine"
    seed: int = 0

    def config(self, data: str, depth: int, *, skip: bool, image_size: int | None = None) -> TrainConfig:
        return TrainConfig(data=data, image_size=image_size, model="resnet_small",
                           model_options={"depth": depth, "width": self.width, "skip": skip},
                           optimizer=self.optimizer, lr=self.lr, momentum=self.momentum, batch_size=self.batch_size,
                           epochs=self.epochs, schedule=self.schedule, seed=self.seed)

    def describe(self) -> str:
        return (f"{self.optimizer} η={self.lr:g} ({self.schedule}), batch {self.batch_size}, {self.epochs} epochs, "
                f"width {self.width}, seed {self.seed}")


def run_name(depth: int, skip: bool) -> str:
    return f"{'residual' if skip else 'plain'}-{depth}"


def degradation_runs(recipe: DegradationRecipe, dataset: Dataset) -> list[tuple[str, TrainConfig, Dataset]]:
    """(name, config, data set) of every net: plain and residual at each depth, shallowest first."""
    depths = sorted(set(recipe.depths))
    if len(depths) < MIN_DEPTHS:
        raise UserInputError(f"the degradation experiment compares depths: pick at least {MIN_DEPTHS}; got {depths}")
    return [(run_name(depth, skip), recipe.config(dataset.name, depth, skip=skip, image_size=dataset.image_size),
             dataset) for depth in depths for skip in (False, True)]


def degradation_experiment(should_stop: Callable[[], bool], *, recipe: DegradationRecipe,
                           dataset: Dataset) -> Iterator[tuple[str, Event, Run | None]]:
    """Train every net of `degradation_runs` as one job, an epoch of each in turn (train_interleaved's events)."""
    yield from train_interleaved(should_stop, runs=degradation_runs(recipe, dataset))


@dataclass(frozen=True)
class Degradation:
    """Final training loss by depth, plain and residual, and whether He et al.'s finding shows."""

    plain: dict[int, float]
    residual: dict[int, float]

    @property
    def plain_degrades(self) -> bool:
        """The deepest plain net ends above every shallower plain net."""
        deepest = max(self.plain, default=None)
        return len(self.plain) >= 2 and all(self.plain[deepest] > loss for d, loss in self.plain.items() if d != deepest)

    @property
    def residual_holds(self) -> bool:
        """The deepest residual net ends no higher than the shallowest one."""
        return len(self.residual) >= 2 and self.residual[max(self.residual)] <= self.residual[min(self.residual)]

    @property
    def reproduced(self) -> bool:
        return self.plain_degrades and self.residual_holds


def net_of(run: Run) -> tuple[str, int] | None:
    """("plain" | "residual", depth) of a resnet_small Run, else None."""
    if run.model_config.name != "resnet_small":
        return None
    options = run.model_config.options
    return ("residual" if options.get("skip", True) else "plain"), options.get("depth", 8)


def degradation(runs: Iterable[Run]) -> Degradation:
    """Read the final training loss of each resnet_small Run (finished or cancelled) by depth and skip."""
    final: dict[str, dict[int, float]] = {"plain": {}, "residual": {}}
    for run in runs:
        if (net := net_of(run)) is not None and run.history.train_loss:
            final[net[0]][net[1]] = run.history.train_loss[-1]
    return Degradation(dict(sorted(final["plain"].items())), dict(sorted(final["residual"].items())))


# ---------------------------------------------------------------- lesion
class _WithoutResidual(nn.Module):
    """Stands in for a ResidualBlock during a lesion: its shortcut path only."""

    def __init__(self, block: ResidualBlock):
        super().__init__()
        self.block = block

    def forward(self, x: Tensor) -> Tensor:
        return self.block.without_residual(x)


def blocks_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The units a lesion removes: the residual blocks (with or without shortcut) of a resnet_small;
    for any other model, its top-level layers that hold parameters (the input normalization aside)."""
    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, ResidualBlock)]
    return blocks or [(name, m) for name, m in model.named_children()
                      if name != "normalize" and any(True for _ in m.parameters())]


def _shapes(model: nn.Module, names: list[str], image: Tensor) -> dict[str, tuple[tuple, tuple]]:
    """(input shape, output shape) of each named module for one image, batch dimension dropped."""
    shapes, handles = {}, []

    def hook_for(name: str):
        def hook(module, inputs, output):
            shapes[name] = (tuple(inputs[0].shape[1:]), tuple(output.shape[1:]))
        return hook

    try:
        for name in names:
            handles.append(model.get_submodule(name).register_forward_hook(hook_for(name)))
        with evaluating(model), torch.no_grad():
            model(image)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


@dataclass(frozen=True)
class NotRemovable:
    block: str
    reason: str


def removable(model: nn.Module, image: Tensor) -> tuple[list[str], list[NotRemovable]]:
    """Blocks a lesion can delete, and the others with why: a block with a shortcut always (F goes, the
    shortcut stays); one without, only where an identity can stand in (its output shape equals its input's)."""
    blocks = blocks_of(model)
    shapes = _shapes(model, [name for name, _ in blocks], image[:1])
    names, refused = [], []
    for name, block in blocks:
        if isinstance(block, ResidualBlock) and block.shortcut is not None:
            names.append(name)
        elif name not in shapes:
            refused.append(NotRemovable(name, "it never runs on this input"))
        elif shapes[name][0] != shapes[name][1]:
            refused.append(NotRemovable(name, f"it changes the shape {shapes[name][0]} → {shapes[name][1]}, "
                                              "so an identity cannot take its place"))
        else:
            names.append(name)
    return names, refused


@contextmanager
def lesioned(model: nn.Module, names: Iterable[str]):
    """`model` with the named blocks deleted for the duration: F removed where a block has a shortcut,
    the whole block replaced by an identity otherwise. The original blocks are put back afterwards."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            block = parent.get_submodule(child)
            has_shortcut = isinstance(block, ResidualBlock) and block.shortcut is not None
            setattr(parent, child, _WithoutResidual(block) if has_shortcut else nn.Identity())
            swapped.append((parent, child, block))
        yield model
    finally:
        for parent, child, block in reversed(swapped):
            setattr(parent, child, block)


@dataclass(frozen=True)
class Removal:
    block: str
    acc: float


@dataclass(frozen=True)
class RandomK:
    k: int  # blocks removed at once
    acc_mean: float  # over the draws
    acc_std: float  # population standard deviation over the draws


@dataclass
class Lesion:
    baseline_acc: float
    chance: float  # 1 / classes
    removed: list[Removal] = field(default_factory=list)
    not_removable: list[NotRemovable] = field(default_factory=list)
    random_k: list[RandomK] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def lesion_study(model: nn.Module, split: Split, *, num_classes: int, seed: int = 0, draws: int = LESION_DRAWS,
                 progress: Callable[[float, str], None] | None = None) -> Lesion:
    """Test accuracy of `model` with each removable block deleted alone, then with k random ones deleted
    (`draws` seeded subsets for each k = 1…n), after Veit et al. 2016 §4–5. Leaves `model` as it was.

    Raises UserInputError when no block can be removed (every one changes its input's shape).
    """
    if draws < 0:
        raise UserInputError(f"lesion draws per k must be ≥ 0 (0: single blocks only); got {draws}")
    device = next(model.parameters()).device
    split = Split(split.x.to(device), split.y.to(device))
    names, refused = removable(model, split.x)
    if not names:
        reasons = "; ".join(f"{r.block}: {r.reason}" for r in refused) or "it has no blocks"
        raise UserInputError(f"this model has no block a lesion can remove ({reasons}). Residual blocks always "
                             "can (their shortcut stays); a plain block only where its output shape equals its input's")
    generator = torch.Generator().manual_seed(seed)
    drawn = {k: [frozenset(names[i] for i in torch.randperm(len(names), generator=generator)[:k].tolist())
                 for _ in range(draws)] for k in range(1, len(names) + 1) if draws}
    singles = [frozenset([name]) for name in names]
    # a subset drawn twice (all n blocks, every draw) is evaluated once
    distinct = list(dict.fromkeys([frozenset(), *singles, *(s for subsets in drawn.values() for s in subsets)]))
    accuracy: dict[frozenset, float] = {}
    for i, subset in enumerate(distinct):
        with lesioned(model, subset):
            accuracy[subset] = evaluate(model, split, nn.functional.cross_entropy)[1]
        if progress is not None:
            progress((i + 1) / len(distinct), f"lesion {i + 1} of {len(distinct)}: {len(subset)} blocks removed")
    random_k = []
    for k, subsets in drawn.items():
        values = [accuracy[s] for s in subsets]
        random_k.append(RandomK(k, statistics.fmean(values), statistics.pstdev(values)))
    return Lesion(accuracy[frozenset()], 1 / num_classes, [Removal(n, accuracy[frozenset([n])]) for n in names],
                  refused, random_k)


def run_lesion(run: Run, split: Split, *, seed: int = 0, draws: int = LESION_DRAWS,
               progress: Callable[[float, str], None] | None = None) -> Lesion:
    """`lesion_study` of a Run's model on `split` (its data set's test split)."""
    return lesion_study(run.model, split, num_classes=run.model_config.num_classes, seed=seed, draws=draws,
                        progress=progress)


def lesion_seconds(run: Run, test_images: int, *, draws: int = LESION_DRAWS) -> float:
    """About how long `run_lesion` takes: one test pass per distinct subset, a forward pass costing about
    a third of a training step (the run's own measured images per second)."""
    blocks = len(blocks_of(run.model))
    evaluations = 1 + blocks + blocks * draws
    return evaluations * test_images / (3 * max(run.history.mean_images_per_s(), 1.0))


def lesion_pair(runs: Mapping[str, Run], split: Split, *, seed: int = 0,
                progress: Callable[[float, str], None] | None = None) -> dict[str, Lesion]:
    """`run_lesion` of several Runs on one split (e.g. residual vs plain), progress over all of them."""
    results, total = {}, len(runs)
    for i, (name, run) in enumerate(runs.items()):
        share = (lambda f, m, i=i, name=name: progress((i + f) / total, f"{name}: {m}")) if progress else None
        results[name] = run_lesion(run, split, seed=seed, progress=share)
    return results


# ---------------------------------------------------------------- paths
def path_lengths(n: int) -> list[int]:
    """How many of the 2ⁿ input-to-output paths of an n-block ResNet pass through k residual branches,
    for k = 0…n: C(n, k) (each block is either entered or skipped; Veit et al. §3)."""
    if n < 0:
        raise UserInputError(f"the number of residual blocks n must be ≥ 0; got {n}")
    return [math.comb(n, k) for k in range(n + 1)]
