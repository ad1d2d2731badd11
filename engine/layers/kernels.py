"""Classic image-processing kernels: the hand-made filters a CNN's first layer tends to rediscover.

Blurs scale to any size; the 3×3 operators (sharpen, Sobel, Laplacian, emboss) sit at the centre
of a larger kernel, padded with zeros, and need a kernel of at least 3×3.

References:
    Sobel & Feldman, "A 3×3 isotropic gradient operator for image processing" (1968).
    R. Szeliski, "Computer Vision: Algorithms and Applications", 2nd ed., §3.2 (linear filtering).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from engine.errors import UserInputError
from engine.registry import Registry

_FIXED = {
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],  # responds to left→right brightness changes
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],  # top→bottom
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
KERNELS: Registry[str] = Registry("kernel")  # name -> title, in the order the page lists them
for _name, _title in (("identity", "Identity (copies the input)"), ("box_blur", "Box blur (mean)"),
                      ("gaussian_blur", "Gaussian blur"), ("sharpen", "Sharpen"),
                      ("sobel_x", "Sobel x (vertical edges)"), ("sobel_y", "Sobel y (horizontal edges)"),
                      ("laplacian", "Laplacian (all edges)"), ("emboss", "Emboss")):
    KERNELS.add(_name, _title)


def names() -> list[str]:
    return KERNELS.names()


def title(name: str) -> str:
    return KERNELS.get(name)


def kernel(name: str, size: int = 3) -> Tensor:
    """The `name` kernel as a float32 ``(size, size)`` tensor; even sizes put the centre up-left."""
    KERNELS.get(name)
    if not isinstance(size, int) or size < 1:
        raise UserInputError(f"kernel size must be a whole number ≥ 1, got {size!r}")
    centre = (size - 1) // 2
    if name == "identity":
        out = torch.zeros(size, size)
        out[centre, centre] = 1.0
        return out
    if name == "box_blur":
        return torch.full((size, size), 1.0 / size**2)
    if name == "gaussian_blur":
        sigma = max(size / 6, 0.5)  # ±3σ spans the kernel
        x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        g = torch.exp(-x**2 / (2 * sigma**2))
        out = g[:, None] * g[None, :]  # separable: outer product of two 1-D Gaussians
        return out / out.sum()
    if size < 3:
        raise UserInputError(f"the {name} kernel is 3×3, so the kernel size must be ≥ 3, got {size}")
    out = torch.zeros(size, size)
    top = centre - 1
    out[top:top + 3, top:top + 3] = torch.tensor(_FIXED[name], dtype=torch.float32)
    return out


def gaussian_sigma(size: int) -> float:
    """σ of the Gaussian blur of this size (shown beside the kernel)."""
    return max(size / 6, 0.5) if size > 0 else math.nan
