"""Receptive fields of conv/pool stacks, stacks written as short text, and the output-size quiz.

References:
    A. Araujo, W. Norris & J. Sim, "Computing receptive fields of convolutional neural networks",
        Distill (2019), https://distill.pub/2019/computing-receptive-fields/
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from torch import nn

from engine.errors import UserInputError
from engine.layers.conv import _whole, output_size

LAYER_KINDS = ("conv", "pool")


@dataclass(frozen=True)
class RFLayer:
    """A layer of a receptive-field stack: only its geometry matters."""

    kind: str = "conv"
    kernel_size: int = 3
    stride: int = 1
    padding: int = 0
    dilation: int = 1


@dataclass(frozen=True)
class RFRow:
    """After a layer: receptive field `size`, `jump` (input pixels between neighbouring units),
    `start` (input coordinate of unit 0's first pixel; negative = in the padding) and `out_size`."""

    layer: str
    size: int
    jump: int
    start: int
    out_size: int

    def span(self, index: int) -> tuple[int, int]:
        """First and last input coordinate seen by unit `index` (unclipped)."""
        first = self.start + index * self.jump
        return first, first + self.size - 1


# ---- receptive fields -----------------------------------------------------------------------------------

def receptive_field(layers: list[RFLayer], input_size: int | None = None) -> list[RFRow]:
    """Receptive field, jump and start after each layer (row 0 is the input itself).

    r ← r + (D(K − 1)) · j,  start ← start − P · j,  j ← j · S  (Araujo et al., 2019).
    With `input_size`, each row also carries the layer's output size (−1 where it is not given).
    """
    size, jump, start, n = 1, 1, 0, input_size
    rows = [RFRow("input", 1, 1, 0, input_size or -1)]
    for index, layer in enumerate(layers, start=1):
        if layer.kind not in LAYER_KINDS:
            raise UserInputError(f"layer {index}: kind must be one of {', '.join(LAYER_KINDS)}, got {layer.kind!r}")
        k = _whole(f"layer {index} kernel", layer.kernel_size, 1)
        s = _whole(f"layer {index} stride", layer.stride, 1)
        d = _whole(f"layer {index} dilation", layer.dilation, 1)
        p = _whole(f"layer {index} padding", layer.padding, 0)
        if layer.kind == "pool" and d != 1:
            raise UserInputError(f"layer {index}: pooling layers here have no dilation, got dilation {d}")
        if layer.kind == "pool" and 2 * p > k:
            raise UserInputError(f"layer {index}: pooling padding ({p}) must be at most half the kernel size ({k})")
        if n is not None:
            try:
                n = output_size(n, k, s, p, d)
            except UserInputError as error:
                raise UserInputError(f"layer {index}: {error}") from None
        size += d * (k - 1) * jump
        start -= p * jump
        jump *= s
        label = f"{index}: {layer.kind} {k}×{k}" + (f" s{s}" if s > 1 else "") + (f" d{d}" if d > 1 else "")
        rows.append(RFRow(label, size, jump, start, n if n is not None else -1))
    return rows


def layer_module(layer: RFLayer, channels: int = 1) -> nn.Module:
    """A real module with the layer's geometry (pools average, so every window pixel gets gradient)."""
    if layer.kind == "pool":
        return nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding)
    return nn.Conv2d(channels, channels, layer.kernel_size, layer.stride, layer.padding, layer.dilation)


# ---- exam-style questions: the output-size quiz ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SizeQuestion:
    n: int
    kernel: int
    stride: int
    padding: int

    @property
    def answer(self) -> int:
        return output_size(self.n, self.kernel, self.stride, self.padding)

    @property
    def exact(self) -> bool:
        """Whether (N − F + 2P)/S is a whole number (some courses call other settings invalid)."""
        return (self.n - self.kernel + 2 * self.padding) % self.stride == 0


def random_question(seed: int) -> SizeQuestion:
    """An output-size question with a valid answer; about a third do not divide evenly."""
    rng = random.Random(seed)
    while True:
        n = rng.choice([5, 7, 8, 9, 11, 14, 15, 16, 28, 31, 32, 37, 64, 224, 227])
        kernel = rng.choice([1, 2, 3, 3, 5, 5, 7, 11])
        stride = rng.choice([1, 1, 2, 2, 3, 4])
        padding = rng.choice([0, 0, 1, 2, 3])
        if kernel <= n + 2 * padding and padding < kernel:
            return SizeQuestion(n, kernel, stride, padding)


# ---- stacks as short text ("c3p1,p2,c3d2") -------------------------------------------------------------------

_LETTERS = {"s": "stride", "p": "padding", "d": "dilation"}


def parse_layers(text: str) -> list[RFLayer]:
    """"c3s1p1,p2s2" → layers: c/p = conv/pool and its kernel, then s, p, d options (pool stride defaults to K)."""
    layers = []
    for index, item in enumerate(filter(None, (t.strip() for t in text.lower().split(","))), start=1):
        match = re.fullmatch(r"([cp])(\d+)((?:[spd]\d+)*)", item)
        if not match:
            raise UserInputError(f"layer {index}: {item!r} is not like 'c3', 'c3s2p1d2' or 'p2s2' "
                                 "(c = conv, p = pool, then kernel; s = stride, p = padding, d = dilation)")
        kind = "conv" if match[1] == "c" else "pool"
        kernel = int(match[2])
        options = {_LETTERS[key]: int(value) for key, value in re.findall(r"([spd])(\d+)", match[3])}
        options.setdefault("stride", kernel if kind == "pool" else 1)
        layers.append(RFLayer(kind, kernel, **options))
    if not layers:
        raise UserInputError("the stack needs at least one layer, e.g. 'c3p1'")
    return layers


def format_layers(layers: list[RFLayer]) -> str:
    parts = []
    for layer in layers:
        text = ("c" if layer.kind == "conv" else "p") + str(layer.kernel_size)
        default_stride = layer.kernel_size if layer.kind == "pool" else 1
        text += f"s{layer.stride}" if layer.stride != default_stride else ""
        text += f"p{layer.padding}" if layer.padding else ""
        text += f"d{layer.dilation}" if layer.dilation != 1 else ""
        parts.append(text)
    return ",".join(parts)
