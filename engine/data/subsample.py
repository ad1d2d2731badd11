"""Fewer training images per class: k-shot sets, capacity curves and class imbalance from one function.

Only the training split shrinks: validation and test stay whole, so accuracies remain comparable
across sizes. An imbalance ratio r gives the long-tailed profile of Cui et al.: class c keeps
n_max · r^(−c/(K−1)) images, so the first class has r times as many as the last.

References:
    Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples", arXiv 1901.05555.
    Wang et al. 2020, "Generalizing from a Few Examples: A Survey on Few-Shot Learning", arXiv 1904.05046.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from engine.data.sets import STD_FLOOR, Dataset
from engine.device import generator
from engine.errors import UserInputError


def class_counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    return torch.bincount(labels, minlength=num_classes).tolist()


def _wanted(available: list[int], per_class: int | None, counts: Sequence[int] | None,
            imbalance_ratio: float | None) -> list[int]:
    k = len(available)
    if per_class is None and counts is None and imbalance_ratio is None:
        raise UserInputError("subsample needs per_class, counts or an imbalance_ratio")
    if per_class is not None and counts is not None:
        raise UserInputError("subsample takes per_class or counts, not both")
    if counts is not None:
        if imbalance_ratio is not None:
            raise UserInputError("subsample takes counts or an imbalance_ratio, not both")
        if len(counts) != k or any(int(c) < 1 for c in counts):
            raise UserInputError(f"counts must give a number ≥ 1 for each of the {k} classes; got {list(counts)}")
        return [int(c) for c in counts]
    if per_class is not None and per_class < 1:
        raise UserInputError(f"per_class must be ≥ 1; got {per_class}")
    top = per_class if per_class is not None else min(available)
    if imbalance_ratio is None:
        return [top] * k
    if not imbalance_ratio >= 1:
        raise UserInputError(f"imbalance_ratio must be ≥ 1 (first class ÷ last class); got {imbalance_ratio}")
    return [max(1, math.floor(top * imbalance_ratio ** (-c / max(1, k - 1)) + 0.5)) for c in range(k)]


def subsample(dataset: Dataset, *, per_class: int | None = None, counts: Sequence[int] | None = None,
              imbalance_ratio: float | None = None, seed: int = 0) -> Dataset:
    """`dataset` with a random subset of its training images: `per_class` each, `counts[c]` of class c,
    or an imbalanced profile from `per_class` (default: the smallest class) down by `imbalance_ratio`.

    The same seed picks the same images; train mean/std are recomputed, as every set's are.
    """
    train = dataset.train
    available = class_counts(train.y, dataset.num_classes)
    wanted = _wanted(available, per_class, counts, imbalance_ratio)
    short = [(dataset.class_names[c], available[c], n) for c, n in enumerate(wanted) if n > available[c]]
    if short:
        name, have, n = short[0]
        raise UserInputError(f"class {name!r} has only {have} training images; {n} were asked for")
    gen = generator(seed)
    chosen = []
    for label, n in enumerate(wanted):
        index = torch.nonzero(train.y == label).flatten()
        chosen.append(index[torch.randperm(len(index), generator=gen)[:n]])
    index = torch.cat(chosen)
    index = index[torch.randperm(len(index), generator=gen)]  # mix the classes, as every split is
    kept = train.take(index)  # the extra label sets too
    var, mean = torch.var_mean(kept.x, dim=(0, 2, 3), correction=0)
    return dataclasses.replace(dataset, train=kept, mean=tuple(mean.tolist()),
                               std=tuple(var.sqrt().clamp_min(STD_FLOOR).tolist()))
