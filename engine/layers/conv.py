"""Convolution and pooling arithmetic: output sizes, the rules PyTorch enforces, windows.

Everything here mirrors what `nn.Conv2d`, `nn.ConvTranspose2d`, `nn.MaxPool2d` and `nn.AvgPool2d`
compute (tests/test_conv.py checks it against them), so a page can explain a configuration —
or say exactly which rule it breaks — before PyTorch runs it. Sizes are per spatial dimension.

References:
    V. Dumoulin & F. Visin, "A guide to convolution arithmetic for deep learning" (2016),
        https://arxiv.org/abs/1603.07285
    PyTorch: torch.nn.Conv2d, ConvTranspose2d, MaxPool2d docs; aten/src/ATen/native/Pool.h
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.device import seeded
from engine.errors import UserInputError

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
POOL_KINDS = ("max", "avg")


@dataclass(frozen=True)
class ConvConfig:
    """One `nn.Conv2d` (or, with `transposed`, `nn.ConvTranspose2d`) with square kernels."""

    in_channels: int = 1
    out_channels: int = 1
    kernel_size: int = 3
    stride: int = 1
    padding: int | str = 0  # a number of pixels per side, "same" or "valid"
    dilation: int = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    transposed: bool = False
    output_padding: int = 0


@dataclass(frozen=True)
class PoolConfig:
    """One `nn.MaxPool2d` / `nn.AvgPool2d`; `stride=None` means stride = kernel size, as in PyTorch."""

    kind: str = "max"
    kernel_size: int = 2
    stride: int | None = None
    padding: int = 0
    dilation: int = 1  # max pooling only
    ceil_mode: bool = False

    @property
    def step(self) -> int:
        return self.kernel_size if self.stride is None else self.stride


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int  # multiply-accumulates for one image
    out_h: int
    out_w: int


@dataclass(frozen=True)
class Window:
    """The input positions one output (i, j) reads, in input coordinates (may lie in the padding)."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]


# ---- small helpers ---------------------------------------------------------------------------

def _whole(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        rule = "positive" if low == 1 else f"≥ {low}"
        raise UserInputError(f"{name} must be a {rule} whole number, got {value!r}")
    return int(value)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """The span a dilated kernel covers: d(k − 1) + 1."""
    return dilation * (kernel - 1) + 1


def padding_amounts(kernel: int, padding: int | str, dilation: int = 1) -> tuple[int, int]:
    """Pixels added before and after the input. "same" pads d(k − 1) in total, the extra one after."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = dilation * (kernel - 1)
        return total // 2, total - total // 2
    if isinstance(padding, str):
        raise UserInputError(f"padding must be a number, 'same' or 'valid', got {padding!r}")
    p = _whole("padding", padding, 0)
    return p, p


# ---- output size --------------------------------------------------------------------------------

def output_size(n: int, kernel: int, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                transposed: bool = False, output_padding: int = 0, ceil_mode: bool = False) -> int:
    """Output length of a convolution, transposed convolution or (with `ceil_mode`) pooling.

    Convolution: ⌊(N + 2P − D(K − 1) − 1) / S⌋ + 1; transposed: (N − 1)S − 2P + D(K − 1) + P_out + 1.
    Pooling with `ceil_mode` rounds up, but drops a last window that would start in the right padding.
    Raises UserInputError when the result is < 1.
    """
    n, kernel = _whole("input size", n, 1), _whole("kernel size", kernel, 1)
    stride, dilation = _whole("stride", stride, 1), _whole("dilation", dilation, 1)
    if padding == "same" and stride != 1:
        raise UserInputError(f"padding='same' needs stride 1 (PyTorch refuses strided 'same'), got stride {stride}")
    if transposed and isinstance(padding, str):
        raise UserInputError(f"a transposed convolution takes a number as padding, got {padding!r}")
    before, after = padding_amounts(kernel, padding, dilation)
    span = effective_kernel(kernel, dilation)
    if transposed:
        out = (n - 1) * stride - before - after + span + _whole("output_padding", output_padding, 0)
        if out < 1:
            raise UserInputError(
                f"output size (N−1)S − 2P + D(K−1) + P_out + 1 = ({n}−1)·{stride} − 2·{before} + "
                f"{span - 1} + {output_padding} + 1 = {out} must be ≥ 1: padding {before} crops too much")
        return out
    room = n + before + after - span  # how far the window can slide
    if ceil_mode:
        out = (room + stride - 1) // stride + 1  # floor division of a negative rounds down, as in ATen
        if (out - 1) * stride >= n + before:
            out -= 1  # PyTorch: the last window must start inside the input or the left padding
    else:
        out = room // stride + 1
    if out < 1:
        raise UserInputError(
            f"the kernel's span D(K−1)+1 = {span} is larger than the padded input N+2P = {n + before + after} "
            f"(input {n}, padding {before}+{after}): the window does not fit once, so the output would be empty")
    return out


def output_hw(config: ConvConfig | PoolConfig, height: int, width: int) -> tuple[int, int]:
    if isinstance(config, PoolConfig):
        return tuple(output_size(n, config.kernel_size, config.step, config.padding, config.dilation,
                                 ceil_mode=config.ceil_mode) for n in (height, width))
    return tuple(output_size(n, config.kernel_size, config.stride, config.padding, config.dilation,
                             transposed=config.transposed, output_padding=config.output_padding)
                 for n in (height, width))


# ---- the rules PyTorch enforces -------------------------------------------------------------------

def check_conv(config: ConvConfig, height: int, width: int) -> tuple[int, int]:
    """Raise UserInputError naming the first rule `config` breaks on an H×W input; else the output (H, W)."""
    c = config
    in_ch, out_ch = _whole("in_channels", c.in_channels, 1), _whole("out_channels", c.out_channels, 1)
    groups = _whole("groups", c.groups, 1)
    _whole("kernel_size", c.kernel_size, 1), _whole("stride", c.stride, 1), _whole("dilation", c.dilation, 1)
    if in_ch % groups:
        raise UserInputError(f"groups must divide in_channels: {in_ch} channels cannot be split into {groups} "
                             "equal groups")
    if out_ch % groups:
        raise UserInputError(f"groups must divide out_channels: {out_ch} filters cannot be split into {groups} "
                             "equal groups")
    if c.padding_mode not in PADDING_MODES:
        raise UserInputError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {c.padding_mode!r}")
    if c.transposed:
        if c.padding_mode != "zeros":
            raise UserInputError(f"a transposed convolution only pads with zeros (its padding crops the output), "
                                 f"got padding_mode {c.padding_mode!r}")
        op = _whole("output_padding", c.output_padding, 0)
        if op >= c.stride and op >= c.dilation:
            raise UserInputError(f"output_padding ({op}) must be smaller than the stride ({c.stride}) or the "
                                 f"dilation ({c.dilation}); otherwise it would add rows no input pixel reaches")
    elif c.output_padding:
        raise UserInputError(f"output_padding only applies to transposed convolutions, got {c.output_padding}")
    if c.padding == "same" and c.stride != 1:
        raise UserInputError(f"padding='same' needs stride 1 (PyTorch refuses strided 'same'), got stride {c.stride}")
    before, after = padding_amounts(c.kernel_size, c.padding, c.dilation)
    for n, axis in ((height, "height"), (width, "width")):
        _whole(f"input {axis}", n, 1)
        if c.padding_mode == "reflect" and max(before, after) >= n:
            raise UserInputError(f"reflect padding ({max(before, after)}) must be smaller than the input {axis} "
                                 f"({n}): reflection mirrors pixels without repeating the edge, so it runs out")
        if c.padding_mode == "circular" and max(before, after) > n:
            raise UserInputError(f"circular padding ({max(before, after)}) must be at most the input {axis} "
                                 f"({n}): wrapping around more than once is not supported")
    return output_hw(c, height, width)


def check_pool(config: PoolConfig, height: int, width: int) -> tuple[int, int]:
    """Raise UserInputError naming the first rule `config` breaks on an H×W input; else the output (H, W)."""
    c = config
    if c.kind not in POOL_KINDS:
        raise UserInputError(f"pooling kind must be one of {', '.join(POOL_KINDS)}, got {c.kind!r}")
    k = _whole("kernel_size", c.kernel_size, 1)
    _whole("stride", c.step, 1), _whole("dilation", c.dilation, 1)
    p = _whole("padding", c.padding, 0)
    if c.kind == "avg" and c.dilation != 1:
        raise UserInputError(f"average pooling has no dilation, got dilation {c.dilation}")
    if 2 * p > k:
        raise UserInputError(f"pooling padding ({p}) must be at most half the kernel size ({k}): otherwise a "
                             "window could lie entirely in the padding and see no input")
    for n, axis in ((height, "height"), (width, "width")):
        _whole(f"input {axis}", n, 1)
    return output_hw(c, height, width)


# ---- running the real modules ---------------------------------------------------------------------

def conv_module(config: ConvConfig) -> nn.Module:
    c = config
    if c.transposed:
        return nn.ConvTranspose2d(c.in_channels, c.out_channels, c.kernel_size, stride=c.stride,
                                  padding=c.padding, output_padding=c.output_padding, groups=c.groups,
                                  bias=c.bias, dilation=c.dilation, padding_mode=c.padding_mode)
    return nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, stride=c.stride, padding=c.padding,
                     dilation=c.dilation, groups=c.groups, bias=c.bias, padding_mode=c.padding_mode)


def pool_module(config: PoolConfig) -> nn.Module:
    c = config
    if c.kind == "max":
        return nn.MaxPool2d(c.kernel_size, c.step, c.padding, c.dilation, ceil_mode=c.ceil_mode)
    return nn.AvgPool2d(c.kernel_size, c.step, c.padding, ceil_mode=c.ceil_mode)


def weight_shape(config: ConvConfig) -> tuple[int, int, int, int]:
    c, k = config, config.kernel_size
    if c.transposed:
        return c.in_channels, c.out_channels // c.groups, k, k
    return c.out_channels, c.in_channels // c.groups, k, k


def make_weight(config: ConvConfig, *, kernel: Tensor | None = None, seed: int = 0) -> Tensor:
    """Weights for `config`: `kernel` (K, K) in every filter, averaged over the input channels it sees;
    or, without `kernel`, PyTorch's default initialization drawn from `seed`."""
    shape = weight_shape(config)
    if kernel is not None:
        if tuple(kernel.shape) != shape[2:]:
            raise UserInputError(f"the kernel must be {shape[2]}×{shape[3]}, got {tuple(kernel.shape)}")
        fan = config.in_channels // config.groups  # channels summed into one output
        return kernel.to(torch.float32).expand(shape).clone() / (1 if config.transposed else fan)
    weight = torch.empty(shape)
    # nn.Conv2d.reset_parameters: kaiming_uniform_(a=√5), i.e. U(±1/√fan_in), from our generator
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=torch.Generator().manual_seed(seed))
    return weight


def make_bias(config: ConvConfig, *, seed: int = 0) -> Tensor | None:
    """PyTorch's default bias, U(±1/√fan_in), drawn from `seed`; None without bias."""
    if not config.bias:
        return None
    fan_in = math.prod(weight_shape(config)[1:])  # nn.init._calculate_fan_in_and_fan_out
    bound = 1 / math.sqrt(fan_in)
    gen = torch.Generator().manual_seed(seed + 1)
    return (torch.rand(config.out_channels, generator=gen) * 2 - 1) * bound


def run_conv(config: ConvConfig, image: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The real module on one image (C, H, W) → (C_out, H', W'), checked first."""
    check_conv(config, image.shape[-2], image.shape[-1])
    if image.shape[0] != config.in_channels:
        raise UserInputError(f"in_channels ({config.in_channels}) must equal the image's channels ({image.shape[0]})")
    with seeded(0):  # the constructor draws weights from torch's global generator; ours replace them
        module = conv_module(config)
    with torch.no_grad():
        module.weight.copy_(weight)
        if module.bias is not None:
            module.bias.copy_(bias if bias is not None else torch.zeros(config.out_channels))
        return module(image[None].float())[0]  # (1, C, H, W) -> (C, H, W)


def run_pool(config: PoolConfig, image: Tensor) -> tuple[Tensor, Tensor | None]:
    """Pool one image (C, H, W); for max pooling also the flat H·W index of each window's winner."""
    check_pool(config, image.shape[-2], image.shape[-1])
    with torch.no_grad():
        if config.kind == "max":
            c = config
            out, idx = F.max_pool2d(image[None].float(), c.kernel_size, c.step, c.padding, c.dilation,
                                    ceil_mode=c.ceil_mode, return_indices=True)
            return out[0], idx[0]
        return pool_module(config)(image[None].float())[0], None


def pad_image(image: Tensor, config: ConvConfig) -> Tensor:
    """The input as the convolution sees it: (C, H, W) with the chosen padding mode applied."""
    before, after = padding_amounts(config.kernel_size, config.padding, config.dilation)
    if config.transposed or (before == after == 0):
        return image
    mode = "constant" if config.padding_mode == "zeros" else config.padding_mode
    return F.pad(image[None].float(), (before, after, before, after), mode=mode)[0]


def padded_corner(image: Tensor, config: ConvConfig, *, corner: int) -> tuple[np.ndarray, int]:
    """Channel 0's top-left `corner`×`corner` input pixels with the padding before them, and that padding.

    A transposed convolution's padding crops its output instead, so its input is shown unpadded.
    """
    before = 0 if config.transposed else padding_amounts(config.kernel_size, config.padding, config.dilation)[0]
    return pad_image(image, config)[0, :corner + before, :corner + before].numpy(), before


def conv_cost(config: ConvConfig, height: int, width: int) -> Cost:
    """Parameters and multiply-accumulates; each weight is used once per output (or, transposed, input) pixel."""
    out_h, out_w = check_conv(config, height, width)
    weights = math.prod(weight_shape(config))
    params = weights + (config.out_channels if config.bias else 0)
    positions = height * width if config.transposed else out_h * out_w
    return Cost(params, positions * weights, out_h, out_w)


# ---- windows: which inputs feed an output ------------------------------------------------------------

def source_index(position: int, n: int, mode: str) -> int | None:
    """The input index a (possibly padded) coordinate reads, or None where it is a zero."""
    if 0 <= position < n:
        return position
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(position, 0), n - 1)
    if mode == "circular":
        return position % n
    return -position if position < 0 else 2 * (n - 1) - position  # reflect, edge not repeated


def window(config: ConvConfig | PoolConfig, i: int, j: int) -> Window:
    """Input coordinates read by output (i, j) of a convolution or pooling: i·S − P + a·D, a = 0…K−1."""
    if isinstance(config, ConvConfig) and config.transposed:
        raise UserInputError("a transposed convolution scatters each input over a window; use feeding_positions")
    stride = config.step if isinstance(config, PoolConfig) else config.stride
    before, _ = padding_amounts(config.kernel_size, config.padding, config.dilation)
    taps = [a * config.dilation for a in range(config.kernel_size)]
    return Window(tuple(i * stride - before + t for t in taps), tuple(j * stride - before + t for t in taps))


def _axis_feeders(config: ConvConfig, index: int, n: int) -> list[int]:
    """Input indices along one axis whose values reach output `index` (padding resolved to its source)."""
    c = config
    before, _ = padding_amounts(c.kernel_size, c.padding, c.dilation)
    if c.transposed:  # output o = m·S − P + a·D collects input m
        hits = [(index + before - a * c.dilation) for a in range(c.kernel_size)]
        return sorted({h // c.stride for h in hits if h % c.stride == 0 and 0 <= h // c.stride < n})
    stride = c.stride
    positions = [index * stride - before + a * c.dilation for a in range(c.kernel_size)]
    return sorted({s for p in positions if (s := source_index(p, n, c.padding_mode)) is not None})


def feeding_positions(config: ConvConfig | PoolConfig, height: int, width: int, i: int, j: int) -> set[tuple[int, int]]:
    """Every input pixel (row, col) whose value enters output (i, j); padding mapped to what it copies."""
    if isinstance(config, PoolConfig):
        win = window(config, i, j)
        rows = [r for r in win.rows if 0 <= r < height]
        cols = [c for c in win.cols if 0 <= c < width]
    else:
        rows, cols = _axis_feeders(config, i, height), _axis_feeders(config, j, width)
    return {(r, c) for r in rows for c in cols}


def window_products(padded: Tensor, kernel: Tensor, config: ConvConfig, i: int, j: int) -> tuple[Tensor, float]:
    """The K×K patch of a padded single-channel input (H+2P, W+2P) under output (i, j), times `kernel`.

    Returns the element-wise products (K, K) and their sum: a cross-correlation, as in nn.Conv2d.
    """
    before, _ = padding_amounts(config.kernel_size, config.padding, config.dilation)
    win = window(config, i, j)
    rows = torch.tensor(win.rows) + before  # into padded coordinates
    cols = torch.tensor(win.cols) + before
    patch = padded[rows][:, cols]  # (K, K), dilation picks every D-th pixel
    products = patch * kernel
    return products, float(products.sum())


@dataclass(frozen=True)
class WindowStep:
    """One output (i, j) of a single-channel convolution worked out by hand, beside what nn.Conv2d gives."""

    i: int
    j: int
    padded: Tensor  # (H + P_before + P_after, W + …) the input as the window sees it
    padding: tuple[int, int]  # pixels before and after
    cells: tuple[tuple[int, int], ...]  # the window's (row, col) in padded coordinates
    patch: Tensor  # (K, K) the inputs under the window
    products: Tensor  # (K, K) patch × kernel
    total: float  # their sum
    module_value: float  # nn.Conv2d's output at (i, j)


def _single_channel(config: ConvConfig) -> ConvConfig:
    return ConvConfig(1, 1, config.kernel_size, config.stride, config.padding, config.dilation,
                      padding_mode=config.padding_mode, bias=False)


def window_positions(config: ConvConfig, grid: Tensor) -> int:
    """Outputs the window of `config` visits on a (1, H, W) grid; UserInputError when the layer does not fit it."""
    out_h, out_w = check_conv(_single_channel(config), grid.shape[-2], grid.shape[-1])
    return out_h * out_w


def window_step(config: ConvConfig, grid: Tensor, kernel: Tensor, *, index: int) -> WindowStep:
    """Output number `index` (row by row) of `config`'s window on a (1, H, W) grid with one (K, K) kernel."""
    one = _single_channel(config)
    out = run_conv(one, grid, kernel[None, None])[0]  # (1, H', W') -> (H', W')
    i, j = divmod(min(max(index, 0), out.numel() - 1), out.shape[1])
    before, after = padding_amounts(config.kernel_size, config.padding, config.dilation)
    padded = pad_image(grid, one)[0]
    win = window(one, i, j)
    rows, cols = [r + before for r in win.rows], [c + before for c in win.cols]
    products, total = window_products(padded, kernel, one, i, j)
    return WindowStep(i, j, padded, (before, after), tuple((r, c) for r in rows for c in cols),
                      padded[rows][:, cols], products, total, float(out[i, j]))


def shrink(image: Tensor, max_side: int) -> Tensor:
    """Scale (C, H, W) down (antialiased) so its longer side is at most `max_side`; smaller images stay as they are."""
    height, width = image.shape[-2:]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def global_average(image: Tensor) -> Tensor:
    """nn.AdaptiveAvgPool2d(1) on one image (C, H, W) → (C,): each channel's mean."""
    with torch.no_grad():
        return nn.AdaptiveAvgPool2d(1)(image[None].float()).flatten()  # (1, C, 1, 1) -> (C,)
