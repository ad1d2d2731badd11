"""What training minimizes: the data loss plus named extra terms, one mechanism for all of them.

    total = L(main head) + Σᵢ λᵢ L(headᵢ) + weight penalties (L2, L1 subgradient, elastic net)

Every term is returned by name, so the Trainer reports each one per epoch and a page can plot
them: "data", "head_<name>" (already multiplied by its λ), "l2", "l1", "elastic". Extra heads come
from the model's train-mode output dict (engine.models.heads); each is scored against the batch's
target, or against the target mapped through the head's class mapping (e.g. digit → odd/even).

References:
    Szegedy et al. 2015, "Going Deeper with Convolutions" (auxiliary loss weight 0.3), arXiv 1409.4842.
    Goodfellow, Bengio & Courville 2016, "Deep Learning", §7.1 (parameter norm penalties).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from engine.errors import UserInputError
from engine.models.heads import MAIN
from engine.training.penalties import Penalties, penalized_parameters, penalty_terms
from engine.training.targets import head_classes, map_target

LossFn = Callable[[Tensor, Tensor], Tensor]
HEAD_OPTIONS = ("weight", "targets")


def head_sizes(heads: dict[str, dict], num_classes: int) -> dict[str, int]:
    """Classes per extra head, checking each head's options: {"weight": λ ≥ 0, "targets": class mapping or None}."""
    sizes = {}
    for name, spec in heads.items():
        unknown = sorted(set(spec) - set(HEAD_OPTIONS))
        if unknown:
            raise UserInputError(f"head {name!r} has no option {', '.join(unknown)}; "
                                 f"its options are {', '.join(HEAD_OPTIONS)}")
        weight = spec.get("weight", 1.0)
        if not (isinstance(weight, (int, float)) and weight >= 0 and math.isfinite(weight)):
            raise UserInputError(f"head {name!r} weight must be a number ≥ 0; got {weight!r}")
        sizes[name] = head_classes(spec.get("targets"), num_classes, name)
    return sizes


class Objective:
    """Called on a model's output and the batch's target; returns (main scores, {term name: value})."""

    def __init__(self, loss_fn: LossFn, model: nn.Module, *, heads: dict[str, dict], num_classes: int,
                 penalties: Penalties, device: torch.device):
        head_sizes(heads, num_classes)
        self.loss_fn, self.penalties = loss_fn, penalties
        self.weights = {name: float(spec.get("weight", 1.0)) for name, spec in heads.items()}
        self.mappings = {name: torch.tensor(spec["targets"], device=device)
                         for name, spec in heads.items() if spec.get("targets") is not None}
        self.penalized = penalized_parameters(model, include_all=penalties.include_all)

    def __call__(self, output: Tensor | dict[str, Tensor], target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if isinstance(output, dict):
            missing = sorted(set(self.weights) - set(output))
            if missing:
                raise UserInputError(f"the model has no head {', '.join(missing)}; "
                                     f"its heads are {', '.join(output)}")
            logits = output[MAIN]
            terms = {"data": self.loss_fn(logits, target)}
            for name, scores in output.items():
                if name != MAIN:  # a head the config does not mention counts with weight 1, as the model made it
                    mapped = map_target(target, self.mappings.get(name))
                    terms[f"head_{name}"] = self.weights.get(name, 1.0) * self.loss_fn(scores, mapped)
        else:
            logits, terms = output, {"data": self.loss_fn(output, target)}
        if self.penalties.in_loss:
            terms.update(penalty_terms(self.penalized, self.penalties))
        return logits, terms
