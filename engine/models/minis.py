"""The classic ImageNet CNNs scaled down to train on a laptop CPU: `alexnet_mini`, `vgg_mini`, `inception_mini`.

Each keeps what made its network famous and shrinks the rest: AlexNet's ReLUs, overlapping max-pools
and dropout before three fully connected layers; VGG's stacks of 3×3 convolutions (two see a 5×5
window with 2·9C² instead of 25C² weights) doubling the width after each pool; GoogLeNet's Inception
modules (parallel 1×1, 1×1→3×3, 1×1→5×5 and pool→1×1 branches concatenated, the 1×1s as cheap
bottlenecks) and its auxiliary classifier, whose loss the Trainer adds with weight λ
(engine.training.objective). The channel counts are the originals' times `width / 64`; the first
convolution reads 32×32 images with a small stride-1 kernel instead of 224×224 with a large
strided one. DenseNet is in engine.models.densenet (it comes after ResNet in the lectures).

A configuration that pools an image away (VGG's fifth block on 8×8 digits) raises a UserInputError
naming the layer where the map would vanish, when the model is built, so before any training;
`plan` reports parameters, MACs and how the map shrinks for any registered model.

References:
    Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep Convolutional Neural Networks".
    Simonyan & Zisserman 2015, "Very Deep Convolutional Networks", arXiv 1409.1556.
    Szegedy et al. 2015, "Going Deeper with Convolutions", arXiv 1409.4842 (table 1, §5).
    torchvision `models/alexnet.py`, `vgg.py`, `googlenet.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.errors import UserInputError
from engine.models.blocks import make_activation, norm2d
from engine.models.registry import build, register
from engine.models.summary import summary

MAX_WIDTH = 128  # channels of the first convolution (the originals: 64)
MAX_FC_WIDTH = 4096  # AlexNet's and VGG's fully connected layers
MAX_BLOCKS = 6
MAX_CONVS_PER_BLOCK = 4
MAX_AUX_WEIGHT = 10.0
# torchvision's AlexNet, the one-GPU variant of the paper's 96-256-384-384-256 two-GPU layout.
ALEXNET_CHANNELS = (64, 192, 384, 256, 256)
# GoogLeNet's table 1: (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj) per module.
GOOGLENET = {"inception3a": (64, 96, 128, 16, 32, 32), "inception3b": (128, 128, 192, 32, 96, 64),
             "inception4a": (192, 96, 208, 16, 48, 64), "inception4b": (160, 112, 224, 24, 64, 64),
             "inception4c": (128, 128, 256, 24, 64, 64)}
GOOGLENET_STEM = 192  # channels after GoogLeNet's stem (conv3)


# ---------------------------------------------------------------- checks and map sizes
def check_whole(model: str, name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserInputError(f"{model} {name} must be a whole number in {low}…{high}; got {value!r}")
    return value


def check_dropout(model: str, p: float, name: str = "dropout") -> None:
    if not (isinstance(p, (int, float)) and 0.0 <= p < 1.0):
        raise UserInputError(f"{model} {name} must be in [0, 1); got {p!r}")


class Sides:
    """Follows the feature map's side through a network while it is built; names the layer where it would vanish."""

    def __init__(self, model: str, image_size: int, *, advice: str):
        self.model, self.image, self.advice = model, image_size, advice
        self.side = image_size

    def pool(self, layer: str, kernel: int, stride: int, padding: int = 0) -> int:
        """The side after a `kernel`×`kernel` pooling: ⌊(N + 2P − K) / S⌋ + 1 (as PyTorch computes it)."""
        out = (self.side + 2 * padding - kernel) // stride + 1
        if out < 1:
            raise UserInputError(
                f"{self.model} does not fit {self.image}×{self.image} images: {layer} ({kernel}×{kernel} pool, "
                f"stride {stride}) would shrink the {self.side}×{self.side} map to nothing. {self.advice}")
        self.side = out
        return out


@dataclass(frozen=True)
class Footprint:
    """A model's size and cost for one input size, and how its feature map shrinks."""

    params: int
    macs: int  # per image at inference: layers that only run in training (an aux head) are left out
    sides: list[tuple[str, int]]  # (layer, side) where the map's side changes, from ("input", image side)


def footprint(model: nn.Module, input_shape: tuple[int, int, int]) -> Footprint:
    rows = summary(model, input_shape)
    sides = [("input", input_shape[-1])]
    for row in rows:
        if len(row.output_shape) == 3 and not row.train_only and row.output_shape[-1] != sides[-1][1]:
            sides.append((row.name, row.output_shape[-1]))
    return Footprint(sum(p.numel() for p in model.parameters()),
                     sum(r.macs for r in rows if not r.train_only), sides)


def plan(name: str, *, in_channels: int, num_classes: int, image_size: int, **options) -> Footprint:
    """The footprint of registered model `name` built for this input, without training it.

    Raises the model's UserInputError naming the layer where the map would vanish (or any other
    bad option), so a page can show it before training.
    """
    model = build(name, in_channels=in_channels, num_classes=num_classes, image_size=image_size, **options)
    return footprint(model, (in_channels, image_size, image_size))


def _scaled(channels: int, width: int) -> int:
    return max(1, round(channels * width / 64))


# ---------------------------------------------------------------- AlexNet
@register("alexnet_mini", title="AlexNet (mini)", family="cnn", gradcam_layer="act5",
          description="Krizhevsky et al. 2012, scaled down: 5 convs with ReLU and overlapping max-pools, "
                      "then 3 fully connected layers with dropout — most parameters sit in the FC layers.")
def alexnet_mini(*, in_channels: int, num_classes: int, image_size: int, width: int = 16, fc_width: int = 512,
                 activation: str = "relu", dropout: float = 0.5) -> nn.Sequential:
    check_whole("alexnet_mini", "width", width, 1, MAX_WIDTH)
    check_whole("alexnet_mini", "fc_width", fc_width, 1, MAX_FC_WIDTH)
    check_dropout("alexnet_mini", dropout)
    c1, c2, c3, c4, c5 = (_scaled(c, width) for c in ALEXNET_CHANNELS)
    # Overlapping 3×3 pools of stride 2 (the paper's §3.4) with padding 1 halve any side and keep 1×1 at 1×1.
    sides = Sides("alexnet_mini", image_size, advice="Use larger images.")
    for layer in ("pool1", "pool2", "pool5"):
        side = sides.pool(layer, 3, 2, 1)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(in_channels, c1, 5, padding=2)), ("act1", make_activation(activation)),
        ("pool1", nn.MaxPool2d(3, 2, 1)),
        ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("act2", make_activation(activation)),
        ("pool2", nn.MaxPool2d(3, 2, 1)),
        ("conv3", nn.Conv2d(c2, c3, 3, padding=1)), ("act3", make_activation(activation)),
        ("conv4", nn.Conv2d(c3, c4, 3, padding=1)), ("act4", make_activation(activation)),
        ("conv5", nn.Conv2d(c4, c5, 3, padding=1)), ("act5", make_activation(activation)),
        ("pool5", nn.MaxPool2d(3, 2, 1)),
        ("flatten", nn.Flatten()),  # (B, C5, s, s) -> (B, C5·s·s)
        ("drop6", nn.Dropout(dropout)), ("fc6", nn.Linear(c5 * side * side, fc_width)),
        ("act6", make_activation(activation)),
        ("drop7", nn.Dropout(dropout)), ("fc7", nn.Linear(fc_width, fc_width)), ("act7", make_activation(activation)),
        ("fc8", nn.Linear(fc_width, num_classes)),
    ]))


# ---------------------------------------------------------------- VGG
@register("vgg_mini", title="VGG (mini)", family="cnn", gradcam_layer="features",
          description="Simonyan & Zisserman 2015, scaled down: blocks of 3×3 convs, the width doubling after "
                      "each 2×2 max-pool, then 3 fully connected layers with dropout.")
def vgg_mini(*, in_channels: int, num_classes: int, image_size: int, blocks: int = 3, convs_per_block: int = 2,
             width: int = 16, fc_width: int = 256, norm: str = "none", dropout: float = 0.5) -> nn.Sequential:
    check_whole("vgg_mini", "blocks", blocks, 1, MAX_BLOCKS)
    check_whole("vgg_mini", "convs_per_block", convs_per_block, 1, MAX_CONVS_PER_BLOCK)
    check_whole("vgg_mini", "width", width, 1, MAX_WIDTH)
    check_whole("vgg_mini", "fc_width", fc_width, 1, MAX_FC_WIDTH)
    check_dropout("vgg_mini", dropout)
    most = max(1, image_size.bit_length() - 1)  # ⌊log₂ side⌋ halvings leave at least 1×1
    sides = Sides(f"vgg_mini with {blocks} blocks", image_size,
                  advice=f"Use at most {most} blocks at {image_size}×{image_size}, or larger images.")
    stages, c_in = [], in_channels
    for b in range(1, blocks + 1):
        c_out = width * 2 ** min(b - 1, 3)  # 64, 128, 256, 512, 512 in VGG
        layers: list[tuple[str, nn.Module]] = []
        for i in range(1, convs_per_block + 1):
            layers += [(f"conv{i}", nn.Conv2d(c_in if i == 1 else c_out, c_out, 3, padding=1, bias=norm == "none")),
                       (f"norm{i}", norm2d(norm, c_out)), (f"act{i}", nn.ReLU())]
        if b < blocks:  # the last pool sits outside `features`, so Grad-CAM reads the last conv map unpooled
            layers.append(("pool", nn.MaxPool2d(2)))
            sides.pool(f"features.block{b}.pool", 2, 2)
        stages.append((f"block{b}", nn.Sequential(OrderedDict(layers))))
        c_in = c_out
    side = sides.pool("pool", 2, 2)
    return nn.Sequential(OrderedDict([
        ("features", nn.Sequential(OrderedDict(stages))),
        ("pool", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),  # (B, C, s, s) -> (B, C·s·s)
        ("fc6", nn.Linear(c_in * side * side, fc_width)), ("act6", nn.ReLU()), ("drop6", nn.Dropout(dropout)),
        ("fc7", nn.Linear(fc_width, fc_width)), ("act7", nn.ReLU()), ("drop7", nn.Dropout(dropout)),
        ("fc8", nn.Linear(fc_width, num_classes)),
    ]))


# ---------------------------------------------------------------- GoogLeNet / Inception
class InceptionModule(nn.Module):
    """Four parallel branches on the same input — 1×1, 1×1→3×3, 1×1→5×5, 3×3 max-pool→1×1 — concatenated."""

    def __init__(self, *, branch1: nn.Module, branch3: nn.Module, branch5: nn.Module, branch_pool: nn.Module):
        super().__init__()
        self.branch1, self.branch3, self.branch5, self.branch_pool = branch1, branch3, branch5, branch_pool

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)]
        return torch.cat(branches, dim=1)  # 4 × (B, Cᵢ, H, W) -> (B, ΣCᵢ, H, W)

    def export_kwargs(self) -> dict:
        return {}


class InceptionNet(nn.Module):
    """Stem → inception 3a, 3b → pool → 4a (→ auxiliary classifier) → 4b, 4c → global average pool → classifier.

    In train mode with an auxiliary classifier, returns {"logits": main scores, "aux": its scores}
    and declares the aux loss weight λ in `head_weights` (engine.models.heads' protocol); in eval
    mode, the main scores alone (the auxiliary head is dropped at inference, as in GoogLeNet).
    """

    def __init__(self, *, stem: nn.Module, pool1: nn.Module, inception3a: nn.Module, inception3b: nn.Module,
                 pool2: nn.Module, inception4a: nn.Module, inception4b: nn.Module, inception4c: nn.Module,
                 pool: nn.Module, flatten: nn.Module, dropout: nn.Module, fc: nn.Module,
                 aux: nn.Module | None = None, aux_weight: float = 0.3):
        super().__init__()
        self.stem, self.pool1, self.inception3a, self.inception3b = stem, pool1, inception3a, inception3b
        self.pool2, self.inception4a, self.inception4b, self.inception4c = pool2, inception4a, inception4b, inception4c
        self.pool, self.flatten, self.dropout, self.fc = pool, flatten, dropout, fc
        self.aux, self.aux_weight = aux, aux_weight  # registered last: the same seed gives the same trunk

    @property
    def head_weights(self) -> dict[str, float]:
        """λ of each extra head's loss, read by the Trainer's Objective."""
        return {} if self.aux is None else {"aux": self.aux_weight}

    def forward(self, x: Tensor):
        x = self.pool2(self.inception3b(self.inception3a(self.pool1(self.stem(x)))))
        tap = self.inception4a(x)
        x = self.inception4c(self.inception4b(tap))
        logits = self.fc(self.dropout(self.flatten(self.pool(x))))  # (B, C, 1, 1) -> (B, C) -> (B, K)
        if self.aux is None or not self.training:
            return logits
        # The aux head runs after the main path, so its dropout draws leave the main path's unchanged.
        return {"logits": logits, "aux": self.aux(tap)}

    def export_kwargs(self) -> dict:
        return {"aux_weight": self.aux_weight}

    def extra_repr(self) -> str:
        return f"aux_weight={self.aux_weight}" if self.aux is not None else ""


def _unit(c_in: int, c_out: int, kernel: int, norm: str) -> nn.Sequential:
    """conv → norm → ReLU (torchvision's BasicConv2d)."""
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=norm == "none")),
        ("norm", norm2d(norm, c_out)), ("act", nn.ReLU())]))


def inception_module(c_in: int, spec: tuple[int, ...], norm: str) -> InceptionModule:
    c1, c3r, c3, c5r, c5, cp = spec
    return InceptionModule(
        branch1=_unit(c_in, c1, 1, norm),
        branch3=nn.Sequential(OrderedDict([("reduce", _unit(c_in, c3r, 1, norm)), ("conv", _unit(c3r, c3, 3, norm))])),
        branch5=nn.Sequential(OrderedDict([("reduce", _unit(c_in, c5r, 1, norm)), ("conv", _unit(c5r, c5, 5, norm))])),
        branch_pool=nn.Sequential(OrderedDict([("pool", nn.MaxPool2d(3, stride=1, padding=1)),
                                               ("proj", _unit(c_in, cp, 1, norm))])))


def _aux_head(c_in: int, width: int, norm: str, num_classes: int) -> nn.Sequential:
    """GoogLeNet's auxiliary classifier: average pool → 1×1 conv (128) → FC (1024) → dropout 0.7 → FC."""
    conv, hidden = _scaled(128, width), _scaled(1024, width)
    return nn.Sequential(OrderedDict([
        ("pool", nn.AdaptiveAvgPool2d(2)), ("conv", _unit(c_in, conv, 1, norm)),
        ("flatten", nn.Flatten()),  # (B, conv, 2, 2) -> (B, 4·conv)
        ("fc1", nn.Linear(4 * conv, hidden)), ("act", nn.ReLU()), ("dropout", nn.Dropout(0.7)),
        ("fc2", nn.Linear(hidden, num_classes))]))


@register("inception_mini", title="GoogLeNet / Inception (mini)", family="cnn", gradcam_layer="net.inception4c",
          description="Szegedy et al. 2015, scaled down: five Inception modules (parallel 1×1 / 3×3 / 5×5 / "
                      "pool branches, 1×1 bottlenecks), global average pooling, an optional auxiliary classifier.")
def inception_mini(*, in_channels: int, num_classes: int, image_size: int, width: int = 16, aux: bool = True,
                   aux_weight: float = 0.3, norm: str = "batch", dropout: float = 0.4) -> nn.Sequential:
    check_whole("inception_mini", "width", width, 1, MAX_WIDTH)
    check_dropout("inception_mini", dropout)
    if not isinstance(aux, bool):
        raise UserInputError(f"inception_mini aux must be true or false; got {aux!r}")
    if not (isinstance(aux_weight, (int, float)) and 0 <= aux_weight <= MAX_AUX_WEIGHT):
        raise UserInputError(f"inception_mini aux_weight λ must be a number in 0…{MAX_AUX_WEIGHT:g}; got {aux_weight!r}")
    stem = _unit(in_channels, _scaled(GOOGLENET_STEM, width), 3, norm)
    modules, channels, c_in = {}, {}, stem.conv.out_channels
    for name, spec in GOOGLENET.items():
        scaled = tuple(_scaled(c, width) for c in spec)
        modules[name] = inception_module(c_in, scaled, norm)
        c_in = channels[name] = scaled[0] + scaled[2] + scaled[4] + scaled[5]  # the branches, concatenated
    fc = nn.Linear(c_in, num_classes)
    head = _aux_head(channels["inception4a"], width, norm, num_classes) if aux else None  # built last
    # Padded 3×3 pools of stride 2 halve any side and keep 1×1 at 1×1: no image is too small.
    net = InceptionNet(stem=stem, pool1=nn.MaxPool2d(3, 2, 1), pool2=nn.MaxPool2d(3, 2, 1), **modules,
                       pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), dropout=nn.Dropout(dropout), fc=fc,
                       aux=head, aux_weight=float(aux_weight))
    return nn.Sequential(OrderedDict([("net", net)]))
