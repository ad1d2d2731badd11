"""Batch data augmentation on tensors: random flips, shifts and noise, vectorized over the batch.

Each augmentation takes (B, C, H, W) pixels in [0, 1] and the run's CPU generator, so a seed fixes
every draw. Shifts use one affine grid for the whole batch (no Python loop over images).

References:
    Shorten & Khoshgoftaar 2019, "A survey on Image Data Augmentation", J. Big Data 6:60.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.registry import Registry

Augment = Callable[[Tensor, torch.Generator], Tensor]

MAX_SHIFT = 0.125  # of the image side, each way
NOISE_STD = 0.05  # in pixel units


def _uniform(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.rand(shape, generator=generator).to(like.device)


def flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror a random half of the images left–right."""
    mirrored = _uniform((x.shape[0], 1, 1, 1), generator, x) < 0.5
    return torch.where(mirrored, x.flip(-1), x)


def shift(x: Tensor, generator: torch.Generator) -> Tensor:
    """Translate each image by up to ±MAX_SHIFT of its side, filling with the nearest border pixel."""
    b = x.shape[0]
    offsets = (_uniform((b, 2), generator, x) * 2 - 1) * MAX_SHIFT * 2  # grid units span 2
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = offsets
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def noise(x: Tensor, generator: torch.Generator) -> Tensor:
    """Add Gaussian pixel noise (σ = NOISE_STD), clipped to [0, 1]."""
    return (x + torch.randn(x.shape, generator=generator).to(x.device) * NOISE_STD).clamp(0, 1)


@dataclass(frozen=True)
class Augmentation:
    title: str
    steps: tuple[Augment, ...]  # applied in order


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")
for _name, _title, _steps in (("none", "None", ()), ("flip", "Horizontal flip", (flip,)),
                              ("shift", "Random shift", (shift,)), ("flip_shift", "Flip + shift", (flip, shift)),
                              ("noise", "Gaussian noise", (noise,))):
    AUGMENTATIONS.add(_name, Augmentation(_title, _steps))


def names() -> list[str]:
    return AUGMENTATIONS.names()


def info(name: str) -> Augmentation:
    return AUGMENTATIONS.get(name)


def build(name: str) -> Augment | None:
    """The augmentation `name` as one function, or None for "none"."""
    steps = info(name).steps
    if not steps:
        return None

    def apply(x: Tensor, generator: torch.Generator) -> Tensor:
        for step in steps:
            x = step(x, generator)
        return x
    return apply
