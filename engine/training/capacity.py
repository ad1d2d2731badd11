"""Capacity and data: the same recipe at several widths and training-set sizes, and the train/validation gap.

Under-fitting shows as low accuracy on both curves (too little capacity, too few epochs);
over-fitting as a training curve that keeps improving while the validation curve stalls or turns
(too much capacity for the data). Widening the model moves a run towards the second, more data
towards the first. The grid below names each run by what changed, so one job of
engine.training.interleaved trains them side by side.

References:
    Goodfellow, Bengio & Courville 2016, "Deep Learning", §5.2 (capacity, over- and under-fitting).
    Zhang et al. 2017, "Understanding deep learning requires rethinking generalization", arXiv 1611.03530.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from engine import models
from engine.data.sets import Dataset
from engine.data.subsample import class_counts, subsample
from engine.errors import UserInputError
from engine.training.config import TrainConfig
from engine.training.runs import History

MAX_GRID_RUNS = 12  # runs one capacity/data grid trains


def width_option(model: str) -> str:
    """The option that sets `model`'s width: hidden units of an MLP, channels of a CNN, token width of a ViT."""
    defaults = models.info(model).defaults()
    if "hidden" in defaults:
        return "hidden"
    if "width" in defaults:
        return "width"
    raise UserInputError(f"model {model!r} has no width to change; choose one of "
                         + ", ".join(n for n in models.names() if {"hidden", "width"} & set(models.info(n).defaults())))


def with_width(config: TrainConfig, width: int) -> TrainConfig:
    """`config` with its model `width` units wide (an MLP gets one hidden layer of that size)."""
    if width < 1:
        raise UserInputError(f"width must be ≥ 1; got {width}")
    option = width_option(config.model)
    value = (int(width),) if option == "hidden" else int(width)
    return dataclasses.replace(config, model_options={**config.model_options, option: value})


def largest_per_class(dataset: Dataset) -> int:
    """Training images of the smallest class: the most a balanced subset can keep of each."""
    return min(class_counts(dataset.train.y, dataset.num_classes))


def sized(dataset: Dataset, per_class: int | None, *, seed: int = 0) -> Dataset:
    """`dataset` with `per_class` training images per class (None = all of them); val and test stay whole."""
    if per_class is None:
        return dataset
    most = largest_per_class(dataset)
    if not 1 <= per_class <= most:
        raise UserInputError(f"training images per class must be between 1 and {most} (the smallest class of "
                             f"{dataset.title} has {most}); got {per_class}")
    return subsample(dataset, per_class=per_class, seed=seed)


def width_of(config: TrainConfig) -> int:
    """The model's width in `config` (an MLP's first hidden layer), its default where the config sets none."""
    option = width_option(config.model)
    width = config.model_options.get(option, models.info(config.model).defaults()[option])
    return int(width[0] if isinstance(width, (tuple, list)) else width)


def run_name(config: TrainConfig, per_class: int | None) -> str:
    size = "all images" if per_class is None else f"{per_class}/class"
    return f"{config.model} w{width_of(config)} · {size}"


def capacity_grid(base: TrainConfig, dataset: Dataset, *, per_class: Sequence[int | None],
                  widths: Sequence[int]) -> list[tuple[str, TrainConfig, Dataset]]:
    """(run name, config, data set) for every width × training-set size: the runs of one interleaved job.

    The batch size shrinks to the subset where it would be larger (10 images cannot fill a batch of 32).
    """
    sizes, widths = list(dict.fromkeys(per_class)), list(dict.fromkeys(widths))
    if not sizes or not widths:
        raise UserInputError("pick at least one training-set size and one width")
    if len(sizes) * len(widths) > MAX_GRID_RUNS:
        raise UserInputError(f"{len(sizes)} sizes × {len(widths)} widths = {len(sizes) * len(widths)} runs; "
                             f"at most {MAX_GRID_RUNS} train as one job")
    runs = []
    for n in sizes:
        data = sized(dataset, n, seed=base.seed)
        for width in widths:
            config = with_width(base, width)
            config = dataclasses.replace(config, batch_size=min(config.batch_size, len(data.train)))
            runs.append((run_name(config, n), config, data))
    return runs


@dataclass(frozen=True)
class Gap:
    """Where a run ended, and how far its training accuracy is ahead of its validation accuracy."""

    epoch: int  # the epoch the numbers are from
    train_acc: float
    val_acc: float
    train_loss: float
    val_loss: float

    @property
    def gap(self) -> float:
        return self.train_acc - self.val_acc

    @property
    def verdict(self) -> str:
        """A rule of thumb for the page, not a theorem: under-fitting, over-fitting or a good fit."""
        if self.train_acc < 0.9 and self.gap < 0.1:
            return "under-fitting: both accuracies are low, the model cannot even fit its training images"
        if self.gap >= 0.1:
            return "over-fitting: the training accuracy runs far ahead of the validation accuracy"
        return "a good fit: high accuracy and a small gap"


def gap_at(history: History, epoch: int | None = None) -> Gap:
    """The gap at `epoch` (default: the best epoch when there is one, else the last)."""
    if not history.epoch:
        raise UserInputError("this run has no finished epoch yet")
    chosen = epoch or history.best_epoch or history.epoch[-1]
    if chosen not in history.epoch:
        raise UserInputError(f"the run has no epoch {chosen}; it has epochs 1 … {history.epoch[-1]}")
    i = history.epoch.index(chosen)
    return Gap(chosen, history.train_acc[i], history.val_acc[i], history.train_loss[i], history.val_loss[i])
