"""From the linear classifier to a small VGG: `linear`, `mlp`, `tinyvgg`, `lenet5`.

References:
    LeCun et al. 1998, "Gradient-based learning applied to document recognition" (LeNet-5).
    Simonyan & Zisserman 2014, "Very Deep Convolutional Networks", arXiv 1409.1556 (VGG blocks).
    CNN Explainer's Tiny VGG, https://poloclub.github.io/cnn-explainer/
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from engine.errors import UserInputError
from engine.models.blocks import make_activation, norm1d, norm2d
from engine.models.registry import register


def _check_dropout(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise UserInputError(f"dropout must be in [0, 1); got {p}")


@register("linear", title="Linear classifier", family="linear",
          description="f = Wx + b: one weight row per class, viewable as a class template.")
def linear(*, in_channels: int, num_classes: int, image_size: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),  # (B, C, H, W) -> (B, C·H·W)
        ("fc", nn.Linear(in_channels * image_size**2, num_classes)),
    ]))


@register("mlp", title="Multi-layer perceptron", family="mlp",
          description="Fully connected layers with a non-linearity between them, e.g. 784-100-10.")
def mlp(*, in_channels: int, num_classes: int, image_size: int, hidden: Sequence[int] = (100,),
        activation: str = "relu", norm: str = "none", dropout: float = 0.0) -> nn.Sequential:
    _check_dropout(dropout)
    if not hidden or any(int(h) < 1 for h in hidden):
        raise UserInputError(f"mlp hidden sizes must be positive integers; got {list(hidden)}")
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]  # (B, C, H, W) -> (B, D)
    width = in_channels * image_size**2
    for i, h in enumerate(int(h) for h in hidden):
        layers += [(f"fc{i + 1}", nn.Linear(width, h)), (f"norm{i + 1}", norm1d(norm, h)),
                   (f"act{i + 1}", make_activation(activation)), (f"drop{i + 1}", nn.Dropout(dropout))]
        width = h
    layers.append(("fc_out", nn.Linear(width, num_classes)))
    return nn.Sequential(OrderedDict(layers))


@register("lenet5", title="LeNet-5", family="cnn", gradcam_layer="conv2",
          description="LeCun's 1998 digit reader: conv 5×5 (6) → pool → conv 5×5 (16) → pool → 120 → 84.")
def lenet5(*, in_channels: int, num_classes: int, image_size: int, activation: str = "tanh",
           dropout: float = 0.0) -> nn.Sequential:
    _check_dropout(dropout)
    if image_size < 4:
        raise UserInputError(f"lenet5 pools twice by 2, so image_size must be ≥ 4; got {image_size}")
    # The 1998 net read 32×32 with no padding; on smaller images (MNIST's 28, digits' 8) pad so the
    # maps do not vanish, as the common MNIST variant does.
    pad1 = 0 if image_size >= 32 else 2
    side1 = (image_size + 2 * pad1 - 4) // 2
    pad2 = 0 if side1 >= 10 else 2
    side2 = (side1 + 2 * pad2 - 4) // 2
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, 6, 5, padding=pad1)), ("act1", make_activation(activation)),
        ("pool1", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5, padding=pad2)), ("act2", make_activation(activation)),
        ("pool2", nn.AvgPool2d(2)),
        ("flatten", nn.Flatten()),  # (B, 16, s, s) -> (B, 16·s·s)
        ("fc1", nn.Linear(16 * side2 * side2, 120)), ("act3", make_activation(activation)),
        ("dropout", nn.Dropout(dropout)),
        ("fc2", nn.Linear(120, 84)), ("act4", make_activation(activation)),
        ("fc3", nn.Linear(84, num_classes)),
    ]))


def _conv_block(c_in: int, c_out: int, act: str, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none"), norm2d(norm, c_out), make_activation(act),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=norm == "none"), norm2d(norm, c_out), make_activation(act),
            nn.MaxPool2d(2)]


@register("tinyvgg", title="Tiny VGG", family="cnn", gradcam_layer="block2",
          description="Two blocks of conv-act-conv-act-maxpool, then a linear classifier.")
def tinyvgg(*, in_channels: int, num_classes: int, image_size: int, width: int = 16,
            activation: str = "relu", norm: str = "none", dropout: float = 0.0) -> nn.Sequential:
    _check_dropout(dropout)
    if image_size < 4:
        raise UserInputError(f"tinyvgg pools twice by 2, so image_size must be ≥ 4; got {image_size}")
    if not 1 <= width <= 256:
        raise UserInputError(f"tinyvgg width must be in 1…256; got {width}")
    side = image_size // 4
    return nn.Sequential(OrderedDict([
        ("block1", nn.Sequential(*_conv_block(in_channels, width, activation, norm))),
        ("block2", nn.Sequential(*_conv_block(width, width, activation, norm))),
        ("flatten", nn.Flatten()),  # (B, width, H/4, W/4) -> (B, width·H/4·W/4)
        ("dropout", nn.Dropout(dropout)),
        ("fc", nn.Linear(width * side * side, num_classes)),
    ]))
