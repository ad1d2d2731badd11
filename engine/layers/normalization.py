"""Normalization: BatchNorm in train vs eval mode, folding it into a conv, which axes each norm reduces over,
and the pixel preprocessing that precedes the first layer.

References:
    Ioffe & Szegedy 2015, "Batch Normalization", arXiv 1502.03167 (running statistics, §3.1).
    Ba et al. 2016, "Layer Normalization", arXiv 1607.06450; Ulyanov et al. 2016, "Instance
    Normalization", arXiv 1607.08022; Wu & He 2018, "Group Normalization", arXiv 1803.08494 (Fig. 2).
    Krizhevsky et al. 2012 (AlexNet: subtract the mean image); Simonyan & Zisserman 2014 (VGG: per-channel mean).
    PyTorch, torch.fx fuse example (`fuse_conv_bn_eval`), https://pytorch.org/tutorials/intermediate/fx_conv_bn_fuser.html
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from engine import limits
from engine.device import seeded
from engine.errors import UserInputError

AXIS_NAMES = ("N", "C", "H", "W")
NORM_KINDS = ("batch", "layer", "instance", "group")
PREPROCESSING = ("none", "mean_image", "channel_mean", "standardize")
HIST_BINS = 50


# ---- BatchNorm at test time ---------------------------------------------------------------------

def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv equal to `conv` followed by `bn` in eval mode (running statistics).

    In eval mode BN is y = γ (x − μ) / √(σ² + ε) + β per output channel, an affine map, so it
    folds into the conv: W' = W·s, b' = (b − μ)·s + β with s = γ / √(σ² + ε).
    """
    if bn.num_features != conv.out_channels:
        raise UserInputError(f"BatchNorm features ({bn.num_features}) must equal the conv's output channels "
                             f"({conv.out_channels})")
    if bn.running_mean is None or bn.running_var is None:
        raise UserInputError("the BatchNorm keeps no running statistics (track_running_stats=False), "
                             "so there is no fixed affine map to fold")
    fused = copy.deepcopy(conv)
    fused.bias = nn.Parameter(torch.zeros(conv.out_channels, device=conv.weight.device)) if conv.bias is None \
        else fused.bias
    with torch.no_grad():
        gamma = bn.weight if bn.affine else torch.ones_like(bn.running_mean)
        beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        scale = gamma / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
        fused.bias.copy_((bias - bn.running_mean) * scale + beta)
    return fused


def batchnorm_train_eval(bn: nn.BatchNorm2d, x: Tensor, *, gamma: float | None = None,
                         beta: float | None = None) -> tuple[Tensor, Tensor]:
    """`bn`'s output on `x` in train mode (batch statistics) and in eval mode (running ones).

    `gamma`/`beta` set every channel's scale/shift. Runs on copies: `bn`'s parameters, running
    statistics, counter and mode are left as found.
    """
    probe = copy.deepcopy(bn)
    with torch.no_grad():
        if gamma is not None:
            probe.weight.fill_(gamma)
        if beta is not None:
            probe.bias.fill_(beta)
        eval_out = copy.deepcopy(probe).eval()(x)
        train_out = probe.train()(x)
    return train_out, eval_out


@dataclass
class ModesDemo:
    """Channel 0 of one batch through BatchNorm in both modes, as plain numbers for a page."""

    train_values: list[float]
    eval_values: list[float]
    train_mean: float
    train_std: float
    eval_mean: float
    eval_std: float


def modes_demo(bn: nn.BatchNorm2d, x: Tensor, *, gamma: float | None = None, beta: float | None = None) -> ModesDemo:
    """`batchnorm_train_eval` summarized: channel 0's values and each mode's overall mean and std."""
    train_out, eval_out = batchnorm_train_eval(bn, x, gamma=gamma, beta=beta)
    return ModesDemo(train_out[:, 0].flatten().tolist(), eval_out[:, 0].flatten().tolist(), float(train_out.mean()),
                     float(train_out.std()), float(eval_out.mean()), float(eval_out.std()))


@dataclass
class FoldingDemo:
    max_difference: float  # largest |fused(x) − bn(conv(x))| on the images
    params_before: int  # conv + BN parameters and buffers
    params_after: int
    steps: int
    description: str


def folding_demo(images: Tensor, *, channels: int = 8, steps: int = 20, seed: int = 0) -> FoldingDemo:
    """Train a conv + BN's statistics on `images` (N, C, H, W), fold them, and compare outputs in eval mode."""
    with seeded(seed):  # nn.Conv2d and the γ, β draws come from torch's global generator
        conv = nn.Conv2d(images.shape[1], channels, 3, padding=1)
        bn = nn.BatchNorm2d(channels)
        nn.init.uniform_(bn.weight, 0.5, 2.0)  # as if trained: γ, β away from 1 and 0
        nn.init.normal_(bn.bias)
    with torch.no_grad():
        bn.train()
        for step in range(steps):
            bn(conv(images[step % 2::2]))  # alternate halves: the running statistics average batches
        bn.eval()
        fused = fold_batchnorm(conv, bn)
        difference = float((fused(images) - bn(conv(images))).abs().max())
    count = lambda *ms: sum(t.numel() for m in ms for t in [*m.parameters(), *m.buffers()] if t.dim())  # noqa: E731
    return FoldingDemo(difference, count(conv, bn), count(fused), steps,
                       f"3×3 conv ({images.shape[1]} → {channels} channels) + BatchNorm")


@dataclass
class RunningStats:
    """How BatchNorm's running mean/var follow the batch statistics during training."""

    batch_mean: list[float]  # channel 0 of each batch, step by step
    batch_var: list[float]
    running_mean: list[float]  # after each step
    running_var: list[float]
    data_mean: float  # over the whole stream: what the running estimate should approach
    data_var: float
    module: nn.BatchNorm2d = field(repr=False)  # the BatchNorm after the last step


def running_stats(x: Tensor, *, batch_size: int, momentum: float, steps: int, seed: int = 0) -> RunningStats:
    """Feed random batches of `x` (N, C, H, W) to a fresh BatchNorm2d in train mode; trace channel 0.

    running ← (1 − momentum)·running + momentum·batch, starting from mean 0 and variance 1.
    """
    if not 0 < momentum <= 1:
        raise UserInputError(f"momentum must be in (0, 1]; got {momentum}")
    if not 2 <= batch_size <= len(x):
        raise UserInputError(f"batch size must be in 2…{len(x)} (the images at hand); got {batch_size}")
    if not 0 <= steps <= limits.MAX_RUNNING_STATS_STEPS:
        raise UserInputError(f"steps must be in 0…{limits.MAX_RUNNING_STATS_STEPS}; got {steps}")
    bn = nn.BatchNorm2d(x.shape[1], momentum=momentum).train()
    gen = torch.Generator().manual_seed(seed)
    trace = RunningStats([], [], [], [], float(x[:, 0].mean()), float(x[:, 0].var()), bn)
    with torch.no_grad():
        for _ in range(steps):
            batch = x[torch.randperm(len(x), generator=gen)[:batch_size]]
            bn(batch)
            trace.batch_mean.append(float(batch[:, 0].mean()))
            trace.batch_var.append(float(batch[:, 0].var()))  # unbiased, as BN's running_var uses
            trace.running_mean.append(float(bn.running_mean[0]))
            trace.running_var.append(float(bn.running_var[0]))
    return trace


def batch_dependence(x: Tensor, *, batch_sizes: list[int], trials: int = 30, seed: int = 0) -> list[float]:
    """How much one image's train-mode BatchNorm output depends on the other images in its batch.

    For each batch size B: put image 0 with B − 1 random companions `trials` times and return the
    mean (over its elements) std of its normalized output. Shrinks like 1/√B; 0 in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(x.shape[1], affine=False, track_running_stats=False)
    spread = []
    with torch.no_grad():
        for size in batch_sizes:
            if not 2 <= size <= len(x):
                raise UserInputError(f"batch size must be in 2…{len(x)}; got {size}")
            outs = []
            for _ in range(trials):
                others = 1 + torch.randperm(len(x) - 1, generator=gen)[:size - 1]
                outs.append(bn(torch.cat([x[:1], x[others]]))[0])
            spread.append(float(torch.stack(outs).std(0).mean()))
    return spread


def conv_features(images: Tensor, *, channels: int = 6, side: int = 4, seed: int = 0) -> Tensor:
    """A small real activation tensor: images through a random 3×3 conv, pooled to side × side."""
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(channels, images.shape[1], 3, 3, generator=gen) / 3
    bias = torch.randn(channels, generator=gen)
    out = nn.functional.conv2d(images, weight, bias, padding=1)  # (N, C_in, H, W) -> (N, channels, H, W)
    return nn.functional.adaptive_avg_pool2d(out, side)  # -> (N, channels, side, side)


# ---- which axes each norm reduces over ------------------------------------------------------------

def make_norm(kind: str, channels: int, *, groups: int = 2) -> nn.Module:
    """The four norms of Wu & He's Fig. 2 on (N, C, H, W), with γ = 1 and β = 0."""
    if kind not in NORM_KINDS:
        raise UserInputError(f"norm must be one of {', '.join(NORM_KINDS)}; got {kind!r}")
    if kind == "group" and (groups < 1 or channels % groups):
        raise UserInputError(f"groups must divide the {channels} channels; got {groups}")
    return {"batch": lambda: nn.BatchNorm2d(channels, track_running_stats=False),
            "layer": lambda: nn.GroupNorm(1, channels),
            "instance": lambda: nn.InstanceNorm2d(channels),
            "group": lambda: nn.GroupNorm(groups, channels)}[kind]()


def norm_group(kind: str, x: Tensor, *, index: tuple[int, int, int, int] = (0, 0, 0, 0),
               groups: int = 2) -> tuple[Tensor, tuple[str, ...]]:
    """Which elements of `x` (N, C, H, W) share one mean and variance with `x[index]` under a norm.

    Found by experiment on the real layer: nudge x[index] and see which outputs move. Returns the
    (N, C, H, W) boolean mask of that group and the axes it spans (the axes the norm reduces over).
    """
    if x.dim() != 4:
        raise UserInputError(f"the tensor must have 4 axes (N, C, H, W); got shape {tuple(x.shape)}")
    norm = make_norm(kind, x.shape[1], groups=groups).train()
    x = x.double()
    nudged = x.clone()
    nudged[index] += 1.0
    with torch.no_grad():
        moved = (norm.double()(nudged) - norm.double()(x)).abs() > 1e-9
    moved[index] = True
    # An axis is reduced over when the group holds more than one index along it.
    axes = tuple(name for axis, name in enumerate(AXIS_NAMES)
                 if moved.movedim(axis, 0).reshape(moved.shape[axis], -1).any(1).sum() > 1)
    return moved, axes


# ---- pixel preprocessing ----------------------------------------------------------------------------

@dataclass
class Preprocessed:
    x: Tensor  # (N, C, H, W) after the step
    mean_image: Tensor  # (C, H, W) of the input
    channel_mean: list[float]
    channel_std: list[float]


def preprocess(x: Tensor, mode: str) -> Preprocessed:
    """Centre (and scale) pixels as AlexNet (mean image), VGG (per-channel mean) or ResNet (standardize) did."""
    if mode not in PREPROCESSING:
        raise UserInputError(f"preprocessing must be one of {', '.join(PREPROCESSING)}; got {mode!r}")
    mean_image = x.mean(0)  # (N, C, H, W) -> (C, H, W)
    mean = x.mean((0, 2, 3))  # (C,)
    std = x.std((0, 2, 3)).clamp_min(1e-6)
    out = {"none": lambda: x,
           "mean_image": lambda: x - mean_image,
           "channel_mean": lambda: x - mean.view(1, -1, 1, 1),
           "standardize": lambda: (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)}[mode]()
    return Preprocessed(out, mean_image, mean.tolist(), std.tolist())


def channel_histograms(x: Tensor, *, bins: int = HIST_BINS) -> tuple[list[float], list[list[int]]]:
    """Bin edges shared by all channels and one histogram of pixel values per channel of (N, C, H, W)."""
    lo, hi = float(x.min()), float(x.max())
    hi = hi if hi > lo else lo + 1e-6
    edges = torch.linspace(lo, hi, bins + 1).tolist()
    counts = [torch.histc(x[:, c].float(), bins=bins, min=lo, max=hi).long().tolist() for c in range(x.shape[1])]
    return edges, counts


def signed_to_unit(x: Tensor) -> Tensor:
    """Map centred values to [0, 1] for display: 0 → 0.5 (gray), ±max|x| → 0 and 1."""
    limit = float(x.abs().max())
    return x / (2 * limit) + 0.5 if limit > 0 else torch.full_like(x, 0.5)
