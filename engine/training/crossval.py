"""k-fold cross-validation for the small bundled sets: how much one validation split's score can be trusted.

The training and validation splits are pooled and dealt, class by class, into k folds; each fold is
validated once by a model trained on the other k − 1 (normalized with their own mean and std, so
no statistic of the held-out fold leaks in). The test split is never read. The spread of the k
scores shows how far a single 10 % validation split can be off — on digits' 179 validation images
one image is 0.56 points.

References:
    Stone 1974, "Cross-Validatory Choice and Assessment of Statistical Predictions", JRSS B 36(2).
    Kohavi 1995, "A Study of Cross-Validation and Bootstrap for Accuracy Estimation and Model
        Selection", IJCAI (stratified 10-fold as the recommended default).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from engine import limits
from engine.data.sets import STD_FLOOR, Dataset, Split
from engine.device import generator
from engine.errors import UserInputError
from engine.training.config import TrainConfig
from engine.training.events import EpochEnd
from engine.training.trainer import Trainer


@dataclass
class FoldResult:
    fold: int  # 1-based
    folds: int
    val_acc: float | None  # None if it was cancelled or diverged before an epoch ended
    train_acc: float | None
    images: int  # validated in this fold
    kind: str = "fold"


@dataclass
class CrossValidated:
    accuracies: list[float] = field(default_factory=list)  # one per finished fold
    mean: float | None = None
    std: float | None = None  # sample standard deviation over the folds
    seconds: float = 0.0
    cancelled: bool = False
    kind: str = "cross_validated"


def fold_indices(y: torch.Tensor, folds: int, seed: int) -> list[torch.Tensor]:
    """Indices of each fold: every class shuffled and dealt round robin, so folds keep the class shares."""
    gen = generator(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in range(folds)]
    start = 0  # the next class starts dealing where the last one stopped, so fold sizes differ by at most one
    for label in torch.unique(y).tolist():
        index = torch.nonzero(y == label).flatten()
        index = index[torch.randperm(len(index), generator=gen)]
        for i in range(folds):
            parts[(start + i) % folds].append(index[i::folds])
        start = (start + len(index)) % folds
    return [torch.cat(p) for p in parts]


def check_folds(dataset: Dataset, folds: int) -> None:
    """Refuse a k outside [2, MAX_FOLDS] and a set too large for k trainings."""
    pooled = len(dataset.train) + len(dataset.val)
    if pooled > limits.MAX_CROSS_VALIDATION_IMAGES:
        raise UserInputError(f"k-fold cross-validation is for small sets: {dataset.name} has {pooled:,} training "
                             f"and validation images, above {limits.MAX_CROSS_VALIDATION_IMAGES:,}")
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= limits.MAX_FOLDS:
        raise UserInputError(f"folds must be between 2 and {limits.MAX_FOLDS}; got {folds}")


def fold_datasets(dataset: Dataset, folds: int, seed: int) -> list[Dataset]:
    """k data sets: train = the other folds (with their own mean/std), val = the fold; test untouched."""
    check_folds(dataset, folds)
    x = torch.cat([dataset.train.x, dataset.val.x])
    y = torch.cat([dataset.train.y, dataset.val.y])
    parts = fold_indices(y, folds, seed)
    out = []
    for k, held_out in enumerate(parts):
        kept = torch.cat([p for j, p in enumerate(parts) if j != k])
        var, mean = torch.var_mean(x[kept], dim=(0, 2, 3), correction=0)
        out.append(dataclasses.replace(dataset, train=Split(x[kept], y[kept]), val=Split(x[held_out], y[held_out]),
                                       mean=tuple(mean.tolist()), std=tuple(var.sqrt().clamp_min(STD_FLOOR).tolist())))
    return out


def cross_validate(should_stop: Callable[[], bool], *, dataset: Dataset, config: TrainConfig,
                   folds: int = 5) -> Iterator[FoldResult | CrossValidated]:
    """Train `config` k times (a job): one FoldResult per fold, then CrossValidated with mean ± std."""
    started = time.perf_counter()
    config = dataclasses.replace(config, evaluate_test=False)
    accuracies = []
    for k, part in enumerate(fold_datasets(dataset, folds, config.seed), start=1):
        if should_stop():
            break
        trainer = Trainer(config, part)
        last = None
        for event in trainer.run(should_stop):
            if isinstance(event, EpochEnd):
                last = event
        if should_stop():
            break
        yield FoldResult(k, folds, last.val_acc if last else None, last.train_acc if last else None, len(part.val))
        if last is not None:
            accuracies.append(last.val_acc)
    yield CrossValidated(accuracies, statistics.fmean(accuracies) if accuracies else None,
                         statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                         time.perf_counter() - started, cancelled=should_stop())
