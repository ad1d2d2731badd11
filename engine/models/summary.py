"""`summary(model, input_shape)`: per layer, the output shape, parameters and multiply-accumulates.

MACs count the multiply-accumulates of convolutions and linear layers for ONE example (FLOPs ≈ 2 × MACs);
element-wise layers (activations, normalization, pooling) are listed with 0 MACs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.models.blocks import evaluating


@dataclass(frozen=True)
class LayerSummary:
    name: str
    kind: str
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int
    macs: int


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
    up to `sum(p.numel() for p in model.parameters())`.
    """
    rows: dict[str, LayerSummary] = {}
    handles = []

    def hook_for(name: str):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor):
                own = sum(p.numel() for p in module.parameters(recurse=False))
                rows[name] = LayerSummary(name, type(module).__name__, tuple(output.shape[1:]), own,
                                          _macs(module, output))
        return hook

    # Identity placeholders (e.g. norm="none") compute nothing and would only clutter the table.
    watched = [(n, m) for n, m in model.named_modules()
               if n and not isinstance(m, nn.Identity)
               and (not list(m.children()) or any(True for _ in m.parameters(recurse=False)))]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        for name, module in watched:
            handles.append(module.register_forward_hook(hook_for(name)))
        with evaluating(model), torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    order = [n for n, _ in watched]
    return sorted(rows.values(), key=lambda r: order.index(r.name))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
