"""Pooling and 1×1 convolution as a page reads them: which input won each max-pooling window, channel mixing.

The arithmetic and the real modules live in `conv.py`; this module turns their outputs into what
a learner looks at: the numbers of one corner of the maps, the positions that won a window (only
they receive gradient in training), and a 1×1 convolution given as a plain (C_out, C_in) matrix.

References:
    Scherer, Müller & Behnke 2010, "Evaluation of Pooling Operations in Convolutional Architectures".
    Lin, Chen & Yan 2013, "Network In Network", arXiv 1312.4400 (1×1 convolutions, global average pooling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from engine.errors import UserInputError
from engine.layers.conv import ConvConfig, PoolConfig, make_weight, run_conv, run_pool


@dataclass
class PoolView:
    """One pooling layer on one image, with channel 0's top-left corner as numbers."""

    output: Tensor  # (C, H_out, W_out)
    input_corner: np.ndarray  # (≤corner, ≤corner) of channel 0
    output_corner: np.ndarray
    winners: list[tuple[int, int]]  # (row, col) inside the input corner that won a max-pooling window


def winners(indices: Tensor, *, width: int, corner: int) -> list[tuple[int, int]]:
    """Input positions (row, col) of channel 0's window maxima that lie in the top-left `corner`×`corner`.

    `indices` are max_pool2d's flat H·W indices (C, H_out, W_out); a position that wins several
    overlapping windows is listed once, in the order of the first window it wins.
    """
    found = dict.fromkeys(divmod(int(f), width) for f in indices[0].flatten())
    return [(r, c) for r, c in found if r < corner and c < corner]


def pool_view(config: PoolConfig, image: Tensor, *, corner: int) -> PoolView:
    """Run the pooling of `config` on `image` (C, H, W) and keep what the page shows of it."""
    out, indices = run_pool(config, image)
    won = [] if indices is None else winners(indices, width=image.shape[-1], corner=corner)
    return PoolView(out, image[0, :corner, :corner].numpy(), out[0, :corner, :corner].numpy(), won)


def random_mix(in_channels: int, out_channels: int, *, seed: int = 0) -> np.ndarray:
    """(C_out, C_in) weights of a 1×1 convolution with PyTorch's default initialization, from `seed`."""
    config = ConvConfig(in_channels, out_channels, 1, bias=False)
    return make_weight(config, seed=seed)[:, :, 0, 0].double().numpy()  # (O, C, 1, 1) -> (O, C)


def mix_channels(image: Tensor, weights: np.ndarray | Sequence[Sequence[float]]) -> Tensor:
    """A bias-free 1×1 convolution: every pixel's channel vector (C,) times the matrix `weights` (C_out, C)."""
    matrix = torch.as_tensor(np.asarray(weights, dtype=np.float32))
    if matrix.dim() != 2 or len(matrix) == 0:
        raise UserInputError(f"the 1×1 convolution needs at least one output channel: a (C_out, C_in) matrix; "
                             f"got shape {tuple(matrix.shape)}")
    if matrix.shape[1] != image.shape[0]:
        raise UserInputError(f"each row of the mixing matrix needs one weight per input channel ({image.shape[0]}); "
                             f"got {matrix.shape[1]}")
    config = ConvConfig(matrix.shape[1], matrix.shape[0], 1, bias=False)
    return run_conv(config, image, matrix[:, :, None, None])  # (O, C) -> (O, C, 1, 1)
