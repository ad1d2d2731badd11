"""CNN vs ViT on the same data and budget: size and cost, and test accuracy against the amount of training data.

A CNN builds in locality and translation equivariance; a ViT has to learn them from data, so it
usually trails on small training sets and narrows the gap as data grows (Dosovitskiy et al. 2021,
§4.3). The data-size experiment trains every configuration on growing subsets of one training
split and tests each model on the full test set. It is long work, so it is a generator of small
events that a script prints and a page draws, and it stops as soon as its consumer stops asking.

References:
    Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", arXiv 2010.11929, fig. 3–4.
    d'Ascoli et al. 2021, "ConViT: Improving Vision Transformers with Soft Convolutional Inductive Biases",
        arXiv 2103.10697 (the sample-efficiency gap on subsets of ImageNet).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from engine import models
from engine.data.sets import Dataset, Split
from engine.errors import UserInputError
from engine.job_messages import Progress
from engine.limits import MAX_TRAIN_SECONDS
from engine.models.vit import attention_macs
from engine.training.config import TrainConfig
from engine.training.events import Diverged, Done, EpochEnd
from engine.training.trainer import Trainer, model_config_for


@dataclass(frozen=True)
class ModelCost:
    params: int
    macs: int  # multiply-accumulates per image, including a ViT's QKᵀ and A·V products


def model_costs(configs: Sequence[TrainConfig], dataset: Dataset) -> dict[str, ModelCost]:
    """Parameters and MACs of each configuration's model, built for `dataset`, by model name."""
    costs = {}
    for config in configs:
        model = models.build_from_config(model_config_for(config, dataset))
        shape = (dataset.channels, dataset.image_size, dataset.image_size)
        macs = sum(row.macs for row in models.summary(model, shape)) + attention_macs(model)
        costs[config.model] = ModelCost(models.count_params(model), macs)
    return costs


def subset_size(dataset: Dataset, fraction: float) -> int:
    """Training images in a `fraction` of the training split; at least one per class."""
    if not 0 < fraction <= 1:
        raise UserInputError(f"training-set fraction must be in (0, 1]; got {fraction}")
    return max(dataset.num_classes, round(fraction * len(dataset.train)))


def subset(dataset: Dataset, images: int) -> Dataset:
    """The first `images` of the training split (already in random order, so a random subset); val/test unchanged."""
    return dataclasses.replace(dataset, train=Split(dataset.train.x[:images], dataset.train.y[:images]))


def full_estimates(configs: Sequence[TrainConfig], dataset: Dataset) -> dict[str, float]:
    """Seconds each configuration takes on the whole training split (timed probe steps), by model name."""
    return {config.model: Trainer(config, dataset).estimate_seconds() for config in configs}


@dataclass(frozen=True)
class Training:
    """One point of the experiment: `config` trained on the first `images` training images."""

    config: TrainConfig
    images: int
    seconds: float  # estimated


@dataclass(frozen=True)
class DataSizePlan:
    trainings: tuple[Training, ...]

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.trainings)


def plan_data_size(configs: Sequence[TrainConfig], dataset: Dataset, *, fractions: Sequence[float],
                   full_seconds: Mapping[str, float],
                   done: Collection[tuple[str, int]] = ()) -> DataSizePlan:
    """The trainings still to run, smallest subset first, skipping (model, images) pairs in `done`.

    Training time scales with the number of training images, so each estimate is the full-set
    estimate times the fraction.
    """
    trainings = []
    for fraction in sorted(set(fractions)):
        images = subset_size(dataset, fraction)
        for config in configs:
            if (config.model, images) not in done:
                seconds = full_seconds[config.model] * images / len(dataset.train)
                trainings.append(Training(config, images, seconds))
    return DataSizePlan(tuple(trainings))


def check_plan(plan: DataSizePlan) -> None:
    """Refuse a plan estimated over MAX_TRAIN_SECONDS, naming the estimate and the limit."""
    if plan.seconds > MAX_TRAIN_SECONDS:
        raise UserInputError(
            f"the data-size experiment would take about {plan.seconds:.0f} s ({len(plan.trainings)} trainings), "
            f"over the {MAX_TRAIN_SECONDS} s limit: pick fewer or smaller fractions, fewer epochs or a smaller "
            "ViT")


# Events of the experiment; `kind` lets scripts print them without isinstance chains.
@dataclass
class SizeResult:
    model: str
    images: int  # training images
    test_acc: float
    seconds: float
    kind: str = "result"


SizeEvent = Progress | SizeResult


def data_size_experiment(plan: DataSizePlan, dataset: Dataset, *,
                         should_stop: Callable[[], bool] | None = None) -> Iterator[SizeEvent]:
    """Train each point of `plan` in turn; yield progress after every epoch and a result after every training.

    Refuses a plan over the time limit before training anything. Stops at once (the training under
    way is dropped) when `should_stop()` is true or the consumer stops iterating.
    """
    check_plan(plan)
    should_stop = should_stop or (lambda: False)
    total = max(plan.seconds, 1e-9)
    finished = 0.0  # estimated seconds of the trainings done
    for i, training in enumerate(plan.trainings, start=1):
        # A batch larger than the subset is refused by the Trainer (5 % of digits is 63 images).
        config = dataclasses.replace(training.config, batch_size=min(training.config.batch_size, training.images))
        label = f"{config.model} on {training.images} images ({i} of {len(plan.trainings)})"
        trainer = Trainer(config, subset(dataset, training.images))
        for event in trainer.run(should_stop):
            if should_stop():
                return
            if isinstance(event, EpochEnd):
                share = finished + training.seconds * event.epoch / event.epochs
                yield Progress(min(1.0, share / total), f"{label}: epoch {event.epoch} of {event.epochs}")
            elif isinstance(event, Done):
                finished += training.seconds
                yield SizeResult(config.model, training.images, event.test_acc, event.seconds)
                yield Progress(min(1.0, finished / total), f"{label}: test accuracy {event.test_acc:.1%}")
            elif isinstance(event, Diverged):
                finished += training.seconds
                yield Progress(min(1.0, finished / total), f"{label}: {event.message} No result for this point.")
