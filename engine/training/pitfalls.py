"""Data pitfalls: class imbalance (and class weights as a remedy) and test images leaking into training.

Imbalance: with few images of some classes, a model can score well overall while missing the rare
classes; the balanced accuracy (the mean of the per-class recalls) shows it, and weighting each
class's loss by n / (K · n_c) is the simplest remedy. Leakage: a test image that was also trained
on is no test at all; the score on such a test set is inflated, and only images that no model
trained on (the clean held-out part) measure the model honestly.

References:
    Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples", arXiv 1901.05555.
    Brodersen et al. 2010, "The balanced accuracy and its posterior distribution", ICPR.
    Kaufman et al. 2012, "Leakage in Data Mining: Formulation, Detection, and Avoidance", ACM TKDD.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from sklearn.metrics import balanced_accuracy_score
from torch import nn

from engine.data.sets import Dataset, Split
from engine.data.subsample import class_counts, subsample
from engine.device import generator
from engine.errors import UserInputError
from engine.training.config import TrainConfig
from engine.training.losses import balanced_class_weights
from engine.training.trainer import predict

NO_REMEDY, CLASS_WEIGHTS = "no remedy", "class weights"
MAX_IMBALANCE_RATIO = 1000.0


# ----------------------------------------------------------------------------- imbalance
@dataclass(frozen=True)
class ImbalancePlan:
    """How many training images each class keeps, and what had to give to get there."""

    counts: list[int]
    notes: list[str]  # messages for the page: a class that would have been left empty, a size cut down

    @property
    def ratio(self) -> float:
        return self.counts[0] / self.counts[-1]


def imbalance_plan(dataset: Dataset, *, per_class: int, ratio: float) -> ImbalancePlan:
    """Counts for the long tail n_c = per_class · ratio^(−c/(K−1)), first class largest.

    A class the formula would leave empty keeps one image (a class with no image cannot be learnt
    or weighted), and `per_class` above the smallest class's images is cut down to it; each says so.
    """
    if not 1 <= ratio <= MAX_IMBALANCE_RATIO:
        raise UserInputError(f"imbalance ratio must be between 1 and {MAX_IMBALANCE_RATIO:g}; got {ratio}")
    if per_class < 1:
        raise UserInputError(f"images of the largest class must be ≥ 1; got {per_class}")
    available = class_counts(dataset.train.y, dataset.num_classes)
    notes = []
    top = per_class
    if per_class > min(available):
        top = min(available)
        notes.append(f"The smallest class has only {top} training images, so the largest class keeps {top} "
                     f"instead of {per_class}.")
    k = dataset.num_classes
    raw = [top * ratio ** (-c / max(1, k - 1)) for c in range(k)]
    counts = [max(1, math.floor(n + 0.5)) for n in raw]
    empty = [dataset.class_names[c] for c, n in enumerate(raw) if n < 0.5]
    if empty:
        notes.append(f"At ratio {ratio:g} with {top} images for the first class, class"
                     f"{'es' if len(empty) > 1 else ''} {', '.join(map(repr, empty))} would get no training "
                     "image at all; each keeps 1, the fewest a class can have.")
    return ImbalancePlan(counts, notes)


def imbalance_runs(config: TrainConfig, dataset: Dataset, plan: ImbalancePlan
                   ) -> list[tuple[str, TrainConfig, Dataset]]:
    """The same model on the imbalanced training set, without and with balanced class weights in its loss."""
    if config.loss != "cross_entropy":
        raise UserInputError(f"class weights are an option of the cross_entropy loss; got loss {config.loss!r}")
    data = subsample(dataset, counts=plan.counts, seed=config.seed)
    config = dataclasses.replace(config, batch_size=min(config.batch_size, len(data.train)))
    weights = [round(w, 4) for w in balanced_class_weights(plan.counts)]
    weighted = dataclasses.replace(config, loss_options={**config.loss_options, "class_weights": weights})
    label = f"{config.model} · ratio {plan.ratio:g}"
    return [(f"{label} · {NO_REMEDY}", config, data), (f"{label} · {CLASS_WEIGHTS}", weighted, data)]


@dataclass(frozen=True)
class ClassScores:
    """A model's accuracy on one split, overall and per class."""

    accuracy: float
    balanced_accuracy: float  # mean of the per-class recalls of the classes present
    per_class: list[float]  # recall of each class; NaN for a class with no image in the split
    counts: list[int]  # images of each class in the split


def class_scores(model: nn.Module, split: Split, num_classes: int) -> ClassScores:
    """Accuracy, balanced accuracy (scikit-learn's) and per-class recall of `model` on `split`."""
    if not len(split):
        raise UserInputError("there are no images to score the model on")
    predicted = predict(model, split.x).argmax(1)
    labels = split.y.cpu()
    counts = class_counts(labels, num_classes)
    hits = torch.bincount(labels[predicted == labels], minlength=num_classes).tolist()
    per_class = [h / n if n else math.nan for h, n in zip(hits, counts)]
    return ClassScores(float((predicted == labels).float().mean()),
                       float(balanced_accuracy_score(labels.numpy(), predicted.numpy())), per_class, counts)


# ----------------------------------------------------------------------------- leakage
@dataclass
class Leakage:
    """Two training sets that differ only by leaked test images, and the two parts of the test split."""

    clean: Dataset  # the training split as it was; its test split is the held-out part
    leaky: Dataset  # the training split plus the leaked test images; the same held-out test split
    leaked: Split  # test images copied into the leaky training split
    held_out: Split  # test images no model trains on: the honest test
    test: Split  # the whole test split, as a careless report would use it


def leakage(dataset: Dataset, *, fraction: float, seed: int = 0) -> Leakage:
    """Copy a random `fraction` of the test images into training; keep the rest as a clean held-out part.

    Both data sets keep the same validation split and get the held-out part as their test split,
    so a run's own test accuracy is the honest one.
    """
    if not 0 < fraction < 1:
        raise UserInputError(f"the leaked share of the test images must be between 0 and 1 (exclusive), so some "
                             f"test images stay clean; got {fraction}")
    test = dataset.test
    order = torch.randperm(len(test), generator=generator(seed))
    n = round(fraction * len(test))
    if not 1 <= n < len(test):
        raise UserInputError(f"{fraction:.0%} of {len(test)} test images leaves no leaked or no clean image; "
                             "pick a share nearer the middle")
    leaked, held_out = test.take(order[:n]), test.take(order[n:])
    clean = dataclasses.replace(dataset, test=held_out)
    train = dataset.train
    extra = {name: torch.cat([y, leaked.labels[name]]) for name, y in train.labels.items() if name in leaked.labels}
    both = Split(torch.cat([train.x, leaked.x]), torch.cat([train.y, leaked.y]), extra)
    mixed = both.take(torch.randperm(len(both), generator=generator(seed + 1)))  # leaked images among the others
    return Leakage(clean, dataclasses.replace(clean, train=mixed), leaked, held_out, test)
