"""What training minimizes: the data loss plus named extra terms, one mechanism for all of them.

    total = λ₀ L(main head) + Σᵢ λᵢ L(headᵢ) + weight penalties (L2, L1 subgradient, elastic net)

Every term is returned by name, so the Trainer reports each one per epoch and a page can plot
them: "data" (the main loss, without λ₀), "head_<name>" (already multiplied by its λ), "l2", "l1",
"elastic". Extra heads come from the model's train-mode output dict (engine.models.heads); each is
scored against the batch's target, against the target mapped through the head's class mapping
(e.g. digit → odd/even), or against another label set of the data set (multi-task learning:
shapes' colour beside their shape). λ₀ (`main_weight`, default 1) weighs the main head's loss.

References:
    Szegedy et al. 2015, "Going Deeper with Convolutions" (auxiliary loss weight 0.3), arXiv 1409.4842.
    Caruana 1997, "Multitask Learning", Machine Learning 28 (one shared base, a weighted sum of losses).
    Goodfellow, Bengio & Courville 2016, "Deep Learning", §7.1 (parameter norm penalties).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from engine.data.sets import Dataset
from engine.errors import UserInputError
from engine.models.heads import MAIN
from engine.training.penalties import Penalties, penalized_parameters, penalty_terms
from engine.training.targets import head_classes, map_target

LossFn = Callable[[Tensor, Tensor], Tensor]
HEAD_OPTIONS = ("weight", "targets", "labels", "classes")  # classes: of the label set, filled in by label_heads


def _is_weight(weight: object) -> bool:
    return not isinstance(weight, bool) and isinstance(weight, (int, float)) and weight >= 0 and math.isfinite(weight)


def head_sizes(heads: dict[str, dict], num_classes: int, *, main_weight: float = 1.0) -> dict[str, int]:
    """Classes per extra head, checking each head's options: {"weight": λ ≥ 0, and "targets": a class
    mapping, or "labels": an extra label set of the data set}; and λ₀ = `main_weight` ≥ 0."""
    if not _is_weight(main_weight):
        raise UserInputError(f"the main head's loss weight must be a number ≥ 0; got {main_weight!r}")
    sizes = {}
    for name, spec in heads.items():
        unknown = sorted(set(spec) - set(HEAD_OPTIONS))
        if unknown:
            raise UserInputError(f"head {name!r} has no option {', '.join(unknown)}; "
                                 f"its options are {', '.join(HEAD_OPTIONS)}")
        if not _is_weight(spec.get("weight", 1.0)):
            raise UserInputError(f"head {name!r} weight must be a number ≥ 0; got {spec.get('weight')!r}")
        if spec.get("labels") is None:
            sizes[name] = head_classes(spec.get("targets"), num_classes, name)
        elif spec.get("targets") is not None:
            raise UserInputError(f"head {name!r} takes a class mapping (targets) or a label set (labels), not both")
        elif not (isinstance(spec.get("classes"), int) and spec["classes"] >= 2):
            raise UserInputError(f"head {name!r} scores label set {spec['labels']!r}, whose number of classes "
                                 f"(≥ 2) is missing: got {spec.get('classes')!r}")
        else:
            sizes[name] = spec["classes"]
    if main_weight == 0 and all(spec.get("weight", 1.0) == 0 for spec in heads.values()):
        raise UserInputError("every loss weight is 0, so nothing would train: give the main head or another head "
                             "a weight > 0")
    return sizes


def label_heads(heads: dict[str, dict], dataset: Dataset) -> dict[str, dict]:
    """`heads` with each label-set head's number of classes filled in (a saved run rebuilds from it alone).

    A head naming a label set that `dataset` (its train and val splits) lacks is refused.
    """
    label_names, filled = dataset.label_names, {}
    for name, spec in heads.items():
        labels = spec.get("labels")
        if labels is not None and not (labels in label_names and labels in dataset.train.labels
                                       and labels in dataset.val.labels):
            have = ", ".join(label_names) or "none"
            raise UserInputError(f"head {name!r} scores label set {labels!r}, which this data set does not have "
                                 f"(its extra label sets: {have})")
        filled[name] = spec if labels is None else {**spec, "classes": len(label_names[labels])}
    return filled


class Objective:
    """Called on a model's output and the batch's target; returns (main scores, {term name: value})."""

    def __init__(self, loss_fn: LossFn, model: nn.Module, *, heads: dict[str, dict], num_classes: int,
                 penalties: Penalties, device: torch.device, main_weight: float = 1.0):
        head_sizes(heads, num_classes, main_weight=main_weight)
        self.loss_fn, self.penalties = loss_fn, penalties
        self.main_weight = float(main_weight)  # λ₀
        # λ of each extra head: the config's, else the model's own (a module's `head_weights`, e.g.
        # inception_mini's aux classifier), else 1
        declared = {name: float(w) for m in model.modules() for name, w in getattr(m, "head_weights", {}).items()}
        self.weights = declared | {name: float(spec.get("weight", 1.0)) for name, spec in heads.items()}
        self.mappings = {name: torch.tensor(spec["targets"], device=device)
                         for name, spec in heads.items() if spec.get("targets") is not None}
        self.label_sets = {name: spec["labels"] for name, spec in heads.items()
                           if spec.get("labels") is not None}  # head -> the label set it scores
        self.penalized = penalized_parameters(model, include_all=penalties.include_all)

    def total(self, terms: dict[str, Tensor]) -> Tensor:
        """What is minimized: λ₀ × the main loss plus every other term (already weighted)."""
        rest = [value for name, value in terms.items() if name != "data"]
        data = terms["data"] if self.main_weight == 1 else self.main_weight * terms["data"]
        return sum(rest, data) if rest else data

    def __call__(self, output: Tensor | dict[str, Tensor], target: Tensor,
                 labels: Mapping[str, Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """`labels`: the batch's extra label sets, by name (those in `label_sets`)."""
        if isinstance(output, dict):
            missing = sorted(set(self.weights) - set(output))
            if missing:
                raise UserInputError(f"the model has no head {', '.join(missing)}; "
                                     f"its heads are {', '.join(output)}")
            logits = output[MAIN]
            terms = {"data": self.loss_fn(logits, target)}
            for name, scores in output.items():
                if name != MAIN:  # a head neither the config nor the model weighs counts with weight 1
                    if name in self.label_sets:
                        head_target = labels[self.label_sets[name]]
                    else:
                        head_target = map_target(target, self.mappings.get(name))
                    terms[f"head_{name}"] = self.weights.get(name, 1.0) * self.loss_fn(scores, head_target)
        else:
            logits, terms = output, {"data": self.loss_fn(output, target)}
        if self.penalties.in_loss:
            terms.update(penalty_terms(self.penalized, self.penalties))
        return logits, terms
