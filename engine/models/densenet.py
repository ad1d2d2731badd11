"""`densenet_mini`: dense blocks in which every layer reads the concatenation of all the maps before it.

Layer ℓ of a dense block computes k new maps (the growth rate) from [x₀, x₁, …, x_{ℓ−1}] and appends
them, so a block of L layers turns C channels into C + L·k; a transition (norm → ReLU → 1×1 conv
halving the channels → 2×2 average pool) shrinks the map between blocks. It comes after ResNet in
the lectures: where ResNet adds a block's input to its output, DenseNet concatenates it.

References:
    Huang, Liu, van der Maaten & Weinberger 2017, "Densely Connected Convolutional Networks",
        arXiv 1608.06993 (§3; the CIFAR nets: growth rate 12, three blocks, compression θ = 0.5).
    torchvision `models/densenet.py`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from engine.models.blocks import norm2d
from engine.models.minis import MAX_BLOCKS, Sides, check_whole
from engine.models.registry import register

MAX_GROWTH_RATE = 64
MAX_LAYERS_PER_BLOCK = 16
COMPRESSION = 0.5  # θ: a transition keeps this share of the channels (DenseNet-C)


class DenseLayer(nn.Module):
    """norm → ReLU → 3×3 conv making `growth_rate` new maps, appended to every map that came before."""

    def __init__(self, *, norm: nn.Module, act: nn.Module, conv: nn.Module):
        super().__init__()
        self.norm, self.act, self.conv = norm, act, conv

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.conv(self.act(self.norm(x)))], dim=1)  # (B, C, H, W) -> (B, C + k, H, W)

    def export_kwargs(self) -> dict:
        return {}


def dense_block(c_in: int, layers: int, growth_rate: int, norm: str) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        (f"layer{i + 1}", DenseLayer(norm=norm2d(norm, c_in + i * growth_rate), act=nn.ReLU(),
                                     conv=nn.Conv2d(c_in + i * growth_rate, growth_rate, 3, padding=1, bias=False)))
        for i in range(layers)))


def transition(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    return nn.Sequential(OrderedDict([("norm", norm2d(norm, c_in)), ("act", nn.ReLU()),
                                      ("conv", nn.Conv2d(c_in, c_out, 1, bias=False)), ("pool", nn.AvgPool2d(2))]))


@register("densenet_mini", title="DenseNet (mini)", family="cnn", gradcam_layer="act",
          description="Huang et al. 2017, scaled down: dense blocks concatenating every earlier map (growth "
                      "rate k new maps per layer), transitions with a 1×1 conv and 2×2 average pooling.")
def densenet_mini(*, in_channels: int, num_classes: int, image_size: int, growth_rate: int = 12,
                  layers_per_block: int = 3, blocks: int = 3, norm: str = "batch") -> nn.Sequential:
    check_whole("densenet_mini", "growth_rate", growth_rate, 1, MAX_GROWTH_RATE)
    check_whole("densenet_mini", "layers_per_block", layers_per_block, 1, MAX_LAYERS_PER_BLOCK)
    check_whole("densenet_mini", "blocks", blocks, 1, MAX_BLOCKS)
    most = max(1, image_size.bit_length())  # blocks − 1 halvings leave at least 1×1
    sides = Sides(f"densenet_mini with {blocks} blocks", image_size,
                  advice=f"Use at most {most} blocks at {image_size}×{image_size}, or larger images.")
    channels = 2 * growth_rate  # the stem's maps, as in the paper's DenseNet-BC
    stages: list[tuple[str, nn.Module]] = [("stem", nn.Conv2d(in_channels, channels, 3, padding=1, bias=False))]
    for b in range(1, blocks + 1):
        stages.append((f"block{b}", dense_block(channels, layers_per_block, growth_rate, norm)))
        channels += layers_per_block * growth_rate
        if b < blocks:
            sides.pool(f"features.transition{b}.pool", 2, 2)
            reduced = max(1, int(channels * COMPRESSION))
            stages.append((f"transition{b}", transition(channels, reduced, norm)))
            channels = reduced
    stages.append(("norm", norm2d(norm, channels)))
    return nn.Sequential(OrderedDict([
        ("features", nn.Sequential(OrderedDict(stages))), ("act", nn.ReLU()),
        ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),  # (B, C, 1, 1) -> (B, C)
        ("fc", nn.Linear(channels, num_classes)),
    ]))
