"""Models with more than one output: extra heads beside the classifier, and a new head on a source network.

The protocol every multi-output model follows (torchvision's GoogLeNet does the same): in train
mode `forward` returns a dict `{"logits": main scores, head name: that head's scores, …}`; in eval
mode it returns the main scores alone, so prediction, explanation and export treat it like any
other classifier. The Trainer weights each extra head's loss (Σ λᵢ Lᵢ).

References:
    Szegedy et al. 2015, "Going Deeper with Convolutions" (auxiliary classifiers), arXiv 1409.4842.
    Caruana 1997, "Multitask Learning", Machine Learning 28.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from engine.device import seeded
from engine.errors import UserInputError

MAIN = "logits"  # the main head's key in a train-mode output dict


class MultiHead(nn.Sequential):
    """A Sequential classifier whose last module's input also feeds extra heads (the last children).

    The classifier's children keep their names, so Grad-CAM layers, saved weights of the source
    network and `model.fc` work as before.
    """

    def __init__(self, *, heads: tuple[str, ...], **children: nn.Module):
        super().__init__(OrderedDict(children))
        self.heads = tuple(heads)

    def forward(self, x: torch.Tensor):
        for name, module in self.named_children():
            if name in self.heads:
                break  # the extra heads come last
            features, x = x, module(x)
        if not self.training:
            return x
        return {"logits": x, **{name: self._modules[name](features) for name in self.heads}}

    def export_kwargs(self) -> dict:
        return {"heads": self.heads}


def _last_linear(model: nn.Sequential) -> tuple[str, nn.Linear]:
    name, last = list(model.named_children())[-1]
    if not isinstance(last, nn.Linear):
        raise UserInputError(f"extra heads attach before a final Linear layer; this model ends with "
                             f"{type(last).__name__} ({name})")
    return name, last


def add_heads(model: nn.Sequential, heads: dict[str, int], *, seed: int = 0) -> MultiHead:
    """`model` with one new Linear head per entry (name -> classes), fed what its classifier is fed."""
    _, last = _last_linear(model)
    children = dict(model.named_children())
    for name in heads:
        if name == MAIN or name in children:
            raise UserInputError(f"a head cannot be called {name!r}: the model already uses that name")
    with seeded(seed + 1):  # the heads' initial weights follow the run's seed, whoever else is drawing
        new = {name: nn.Linear(last.in_features, classes) for name, classes in heads.items()}
    multi = MultiHead(heads=tuple(heads), **children, **new)
    return multi.to(next(model.parameters()).device)


def replace_head(model: nn.Sequential, num_classes: int, *, seed: int = 0) -> nn.Sequential:
    """A source network with a fresh final Linear layer for `num_classes` classes (transfer learning)."""
    name, last = _last_linear(model)
    with seeded(seed + 1):
        head = nn.Linear(last.in_features, num_classes).to(last.weight.device)
    children = OrderedDict(model.named_children())
    children[name] = head
    return nn.Sequential(children)
