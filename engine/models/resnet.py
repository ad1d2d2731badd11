"""`resnet_small`: the CIFAR ResNet of He et al. (depth 6n+2), with the skip connections switchable.

Turning `skip` off gives the "plain" network of the same depth that the paper compares against:
the identical layers without the shortcut, which is what makes deep plain nets hard to train.

References:
    He et al. 2016, "Deep Residual Learning for Image Recognition", arXiv 1512.03385, §4.2.
    Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", arXiv 1712.09913.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from engine.errors import UserInputError
from engine.models.blocks import make_activation, norm2d
from engine.models.registry import register


class BasicBlock(nn.Module):
    """conv3×3 → norm → act → conv3×3 → norm, plus the shortcut (when `skip`), then act."""

    def __init__(self, *, conv1: nn.Module, norm1: nn.Module, act1: nn.Module, conv2: nn.Module,
                 norm2: nn.Module, shortcut: nn.Module, act2: nn.Module, skip: bool = True):
        super().__init__()
        self.conv1, self.norm1, self.act1 = conv1, norm1, act1
        self.conv2, self.norm2 = conv2, norm2
        self.shortcut, self.act2 = shortcut, act2
        self.skip = skip

    def forward(self, x: Tensor) -> Tensor:
        out = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        if self.skip:
            out = out + self.shortcut(x)  # F(x) + x: the block learns a residual
        return self.act2(out)

    def export_kwargs(self) -> dict:
        """Constructor arguments besides the child modules (used by engine.models.export)."""
        return {"skip": self.skip}

    def extra_repr(self) -> str:
        return f"skip={self.skip}"


def basic_block(c_in: int, c_out: int, stride: int, *, act: str, norm: str, skip: bool) -> BasicBlock:
    shortcut: nn.Module = nn.Identity()
    if stride != 1 or c_in != c_out:
        # Projection shortcut (the paper's option B) when the shape changes.
        shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), norm2d(norm, c_out))
    return BasicBlock(
        conv1=nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), norm1=norm2d(norm, c_out),
        act1=make_activation(act), conv2=nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        norm2=norm2d(norm, c_out), shortcut=shortcut, act2=make_activation(act), skip=skip)


@register("resnet_small", title="Small ResNet", family="cnn", gradcam_layer="stage3",
          description="CIFAR-style ResNet, depth 6n+2 (8, 14, 20, …, 56); skip connections on or off.")
def resnet_small(*, in_channels: int, num_classes: int, image_size: int, depth: int = 8, width: int = 16,
                 skip: bool = True, activation: str = "relu", norm: str = "batch",
                 dropout: float = 0.0) -> nn.Sequential:
    if depth < 8 or (depth - 2) % 6:
        raise UserInputError(f"resnet_small depth must be 6n+2 with n ≥ 1 (8, 14, 20, 26, 32, …); got {depth}")
    if not 1 <= width <= 128:
        raise UserInputError(f"resnet_small width must be in 1…128; got {width}")
    if not 0.0 <= dropout < 1.0:
        raise UserInputError(f"dropout must be in [0, 1); got {dropout}")
    n = (depth - 2) // 6
    layers: list[tuple[str, nn.Module]] = [
        ("stem", nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                               norm2d(norm, width), make_activation(activation)))]
    c_in = width
    for stage, (c_out, stride) in enumerate([(width, 1), (2 * width, 2), (4 * width, 2)], start=1):
        blocks = [basic_block(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1,
                              act=activation, norm=norm, skip=skip) for i in range(n)]
        layers.append((f"stage{stage}", nn.Sequential(*blocks)))
        c_in = c_out
    layers += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),  # (B, C, 1, 1) -> (B, C)
               ("dropout", nn.Dropout(dropout)), ("fc", nn.Linear(c_in, num_classes))]
    return nn.Sequential(OrderedDict(layers))
