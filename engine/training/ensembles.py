"""Ensembles: several networks trained on one data split, combined by soft or hard voting.

Members differ by their seed (initial weights, batch order, dropout) or by their architecture;
the data split stays fixed, so the members' differences are the training's own randomness. Soft
voting averages the members' class probabilities, p̄(c|x) = 1/M Σₘ pₘ(c|x); hard voting counts
each member's top class, and a tie goes to the tied class with the highest mean probability.
Averaging helps where members make different mistakes: what one gets wrong, the others outvote.

References:
    Dietterich 2000, "Ensemble Methods in Machine Learning", MCS 2000 (why ensembles work).
    Lakshminarayanan et al. 2017, "Simple and Scalable Predictive Uncertainty Estimation using Deep
        Ensembles", arXiv 1612.01474 (members from random seeds alone).
    Krizhevsky et al. 2012, "ImageNet Classification with Deep Convolutional Neural Networks" (averaging
        the predictions of several CNNs lowered the error by about 2 points).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from engine import models
from engine.data.sets import Dataset
from engine.errors import UserInputError
from engine.job_messages import Progress
from engine.limits import MAX_ENSEMBLE_MEMBERS, MAX_TRAIN_SECONDS
from engine.training.config import TrainConfig
from engine.training.events import Diverged, Done, EpochEnd
from engine.training.trainer import Trainer, predict


# ----------------------------------------------------------------------------- voting
def soft_vote(probs: Tensor) -> Tensor:
    """Mean class probabilities (N, K) of the members' probabilities (M, N, K)."""
    return probs.mean(0)


def hard_vote(probs: Tensor) -> Tensor:
    """The class (N,) most members predict; among tied classes the one with the highest mean probability."""
    members, _, classes = probs.shape
    votes = F.one_hot(probs.argmax(2), classes).sum(0)  # (M, N) top classes -> (N, K) vote counts
    tied = votes == votes.max(1, keepdim=True).values
    return torch.where(tied, soft_vote(probs), torch.tensor(-1.0)).argmax(1)


def accuracy(predicted: Tensor, labels: Tensor) -> float:
    return float((predicted == labels).float().mean()) if len(labels) else 0.0


@dataclass(frozen=True)
class EnsembleSummary:
    """How the members and their votes did on one split."""

    member_acc: list[float]
    soft_vote: float
    hard_vote: float
    vs_k: list[dict]  # [{"k": 1, "soft_vote": …, "hard_vote": …}, …] over the first k members
    member_votes: Tensor  # (M, N) each member's top class
    soft_pred: Tensor  # (N,)
    hard_pred: Tensor  # (N,)
    disagreements: list[int]  # images the members disagree on and the soft vote gets right


def disagreement_indices(member_votes: Tensor, ensemble_pred: Tensor, labels: Tensor) -> list[int]:
    """Images where the members do not all agree and the ensemble is right, most members wrong first."""
    wrong = (member_votes != labels).sum(0)  # (N,) members that got the image wrong
    split = (member_votes != member_votes[:1]).any(0) & (ensemble_pred == labels)
    index = torch.nonzero(split).flatten()
    order = torch.argsort(wrong[index], descending=True, stable=True)
    return index[order].tolist()


def summarize(probs: Tensor, labels: Tensor) -> EnsembleSummary:
    """Each member's accuracy, both votes, accuracy against k, and the disagreements, from (M, N, K)."""
    if probs.ndim != 3 or len(probs) == 0:
        raise UserInputError("an ensemble needs at least one trained member")
    votes = probs.argmax(2)
    soft, hard = soft_vote(probs).argmax(1), hard_vote(probs)
    vs_k = [{"k": k, "soft_vote": accuracy(soft_vote(probs[:k]).argmax(1), labels),
             "hard_vote": accuracy(hard_vote(probs[:k]), labels)} for k in range(1, len(probs) + 1)]
    return EnsembleSummary([accuracy(v, labels) for v in votes], accuracy(soft, labels), accuracy(hard, labels),
                           vs_k, votes, soft, hard, disagreement_indices(votes, soft, labels))


# ----------------------------------------------------------------------------- members
@dataclass(frozen=True)
class Member:
    name: str  # "tinyvgg, seed 3"
    config: TrainConfig


def plan_members(config: TrainConfig, *, model_names: Sequence[str], members: int) -> list[Member]:
    """`members` copies of `config` with seeds S+1…S+k (S = config.seed), cycling through `model_names`."""
    if not 1 <= members <= MAX_ENSEMBLE_MEMBERS:
        raise UserInputError(f"an ensemble has 1 to {MAX_ENSEMBLE_MEMBERS} members; got {members}")
    if not model_names:
        raise UserInputError("an ensemble needs at least one model")
    for name in model_names:
        models.info(name)  # an unknown name raises the registry's message
    planned = []
    for i in range(members):
        model, seed = model_names[i % len(model_names)], config.seed + 1 + i
        options = config.model_options if model == config.model else {}
        planned.append(Member(f"{model}, seed {seed}",
                              dataclasses.replace(config, model=model, model_options=dict(options), seed=seed)))
    return planned


def estimate_seconds(members: Sequence[Member], dataset: Dataset) -> float:
    """Seconds the whole ensemble should take (timed probe steps of each architecture)."""
    per_model: dict[str, float] = {}
    for member in members:
        if member.config.model not in per_model:
            per_model[member.config.model] = Trainer(member.config, dataset).estimate_seconds()
    return sum(per_model[m.config.model] for m in members)


def check_time(seconds: float) -> None:
    if seconds > MAX_TRAIN_SECONDS:
        raise UserInputError(f"the ensemble would take about {seconds:.0f} s, over the {MAX_TRAIN_SECONDS} s "
                             "limit: use fewer members, fewer epochs or a smaller model")


# Events; `kind` lets scripts print them without isinstance chains.
@dataclass
class MemberResult:
    """One finished member: its test accuracy and its class probabilities on the test split."""

    index: int
    name: str
    model: str
    seed: int
    test_acc: float
    probs: Tensor  # (N, K) on the test split
    seconds: float
    kind: str = "member"


EnsembleEvent = Progress | MemberResult


def train_ensemble(should_stop: Callable[[], bool] | None = None, *, members: Sequence[Member],
                   dataset: Dataset) -> Iterator[EnsembleEvent]:
    """Train the members one after another on `dataset`; a MemberResult after each finished member.

    One member at a time, so a Cancel keeps every member that finished. A member whose training
    diverges is left out, and the progress message says so.
    """
    should_stop = should_stop or (lambda: False)
    total = sum(m.config.epochs for m in members)
    finished = 0
    for index, member in enumerate(members):
        trainer = Trainer(member.config, dataset)
        started = time.perf_counter()
        label = f"member {index + 1} of {len(members)} ({member.name})"
        for event in trainer.run(should_stop):
            if should_stop():
                return
            if isinstance(event, EpochEnd):
                yield Progress((finished + event.epoch) / total, f"{label}: epoch {event.epoch} of {event.epochs}")
            elif isinstance(event, Diverged):
                yield Progress((finished + member.config.epochs) / total, f"{label}: {event.message} Left out.")
            elif isinstance(event, Done):
                yield MemberResult(index, member.name, member.config.model, member.config.seed, event.test_acc,
                                   predict(trainer.model, dataset.test.x), time.perf_counter() - started)
        finished += member.config.epochs


def run_ensemble(config: TrainConfig, dataset: Dataset, *, model_names: Sequence[str], members: int,
                 should_stop: Callable[[], bool] | None = None,
                 on_event: Callable[[EnsembleEvent], None] | None = None) -> tuple[list[MemberResult], EnsembleSummary]:
    """Plan, check the time, train and summarize on the test split: the CLI's and scripts' one call."""
    planned = plan_members(config, model_names=model_names, members=members)
    check_time(estimate_seconds(planned, dataset))
    results = []
    for event in train_ensemble(should_stop, members=planned, dataset=dataset):
        if on_event is not None:
            on_event(event)
        if isinstance(event, MemberResult):
            results.append(event)
    if not results:
        raise UserInputError("no member finished training: try a smaller learning rate")
    return results, summarize(torch.stack([r.probs for r in results]), dataset.test.y)
