"""`summary(model, input_shape)`: per layer, the output shape, parameters and multiply-accumulates.

MACs count the multiply-accumulates of convolutions and linear layers for ONE example (FLOPs ≈ 2 × MACs);
element-wise layers (activations, normalization, pooling) are listed with 0 MACs. Layers that only run
in training (an auxiliary classifier, extra heads) are measured in a train-mode pass on a copy and
marked `train_only`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from engine.device import seeded
from engine.models.blocks import evaluating


@dataclass(frozen=True)
class LayerSummary:
    name: str
    kind: str
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int
    macs: int
    train_only: bool = False  # runs only in train mode (e.g. an auxiliary classifier)


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    per_example = output[0].numel()
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        return per_example * (module.in_channels // module.groups) * k_h * k_w
    if isinstance(module, nn.Linear):
        return per_example * module.in_features
    return 0


def summary(model: nn.Module, input_shape: tuple[int, int, int]) -> list[LayerSummary]:
    """Run one zero image of shape (C, H, W) through `model` and describe every layer that computes.

    A row is a leaf module, or any module holding parameters of its own; the rows' parameters add
    up to `sum(p.numel() for p in model.parameters())`, train-only layers included.
    """
    rows: dict[str, LayerSummary] = {}
    # Identity placeholders (e.g. norm="none") compute nothing and would only clutter the table.
    watched = [n for n, m in model.named_modules()
               if n and not isinstance(m, nn.Identity)
               and (not list(m.children()) or any(True for _ in m.parameters(recurse=False)))]
    with evaluating(model):
        ran = _measure(model, watched, input_shape, rows, batch=1)
    idle = [n for n in watched if n not in ran]
    if any(True for n in idle for _ in model.get_submodule(n).parameters()):
        # e.g. an auxiliary head: measured on a copy in train mode, so BatchNorm statistics stay untouched
        work = copy.deepcopy(model).train()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with seeded(0, device):  # dropout draws from the global generator
            _measure(work, idle, input_shape, rows, batch=2, train_only=True)  # BatchNorm needs 2 examples
    return sorted(rows.values(), key=lambda r: watched.index(r.name))


def _measure(model: nn.Module, names: list[str], input_shape: tuple[int, int, int], rows: dict[str, LayerSummary],
             *, batch: int, train_only: bool = False) -> set[str]:
    """One forward pass of zero images with a hook on each module in `names`, adding its row to `rows`;
    returns the names of the modules that ran."""
    ran: set[str] = set()

    def hook_for(name: str):
        def hook(module, inputs, output):
            ran.add(name)
            if isinstance(output, torch.Tensor):
                own = sum(p.numel() for p in module.parameters(recurse=False))
                rows[name] = LayerSummary(name, type(module).__name__, tuple(output.shape[1:]), own,
                                          _macs(module, output), train_only)
        return hook

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    handles = []
    try:
        for name in names:
            handles.append(model.get_submodule(name).register_forward_hook(hook_for(name)))
        with torch.no_grad():
            model(torch.zeros(batch, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return ran


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
