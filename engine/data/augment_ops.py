"""Batched image transforms with per-image random parameters: the operations behind engine.data.augment.

Every function takes pixels (B, C, H, W) in [0, 1] and the run's CPU generator, and draws each image's
own parameters (B numbers per parameter, then moved to the batch's device): one seed fixes every draw,
and no Python loop runs over the images of a batch. Each call draws the same count of numbers whatever
the batch holds, so a run's later draws do not depend on which images came before.

Geometric transforms return output→input matrices (B, 3, 3) in pixel units about the image centre; the
pipeline multiplies consecutive ones and resamples once with `warp` (affine_grid + grid_sample), so a
crop followed by a rotation blurs the image once, not twice.

References:
    torchvision.transforms.v2 (RandomResizedCrop, RandomAffine, ColorJitter, GaussianBlur,
        RandomErasing): the parameter conventions used here. https://pytorch.org/vision/stable/transforms.html
    Jaderberg et al. 2015, "Spatial Transformer Networks" (affine grids, bilinear sampling), arXiv 1506.02025.
    Zhong et al. 2017, "Random Erasing Data Augmentation", arXiv 1708.04896.
    Krizhevsky et al. 2012, "ImageNet Classification with Deep CNNs" (crops, flips, colour changes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as torchvision's rgb_to_grayscale
MIN_ERASE_AREA = 0.02  # of the image: torchvision RandomErasing's smallest box
ERASE_RATIO = 3.3  # erased boxes have aspect ratios between 1/3.3 and 3.3 (torchvision's default)
MIN_BLUR_SIGMA = 0.1  # pixels; each image's σ is drawn from [0.1, sigma]
# RGB -> YIQ: Y is brightness, (I, Q) the colour; turning (I, Q) about the Y axis shifts hue.
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


# ---- draws -----------------------------------------------------------------------------------------

def uniform(generator: torch.Generator, batch: int, low: float, high: float, like: Tensor) -> Tensor:
    """(B,) numbers uniform in [low, high), on `like`'s device and dtype."""
    return (torch.rand(batch, generator=generator) * (high - low) + low).to(like.device, like.dtype)


def chosen(generator: torch.Generator, batch: int, p: float, like: Tensor) -> Tensor:
    """(B,) booleans, each True with probability p: which images a transform applies to."""
    return torch.rand(batch, generator=generator).to(like.device) < p


def normal_like(x: Tensor, generator: torch.Generator) -> Tensor:
    """N(0, 1) noise of x's shape. On a GPU it is drawn there, from a generator seeded by the run's."""
    if x.device.type == "cpu":
        return torch.randn(x.shape, generator=generator, dtype=x.dtype)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    device_generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.randn(x.shape, generator=device_generator, device=x.device, dtype=x.dtype)


# ---- geometry: output→input matrices in centred pixel units ----------------------------------------------

def _identity(batch: int, like: Tensor) -> Tensor:
    return torch.eye(3, device=like.device, dtype=like.dtype).repeat(batch, 1, 1)  # (B, 3, 3)


def crop_matrix(x: Tensor, generator: torch.Generator, *, scale: float, ratio: float) -> Tensor:
    """RandomResizedCrop: a box of area ∈ [scale, 1] of the image and aspect ∈ [1/ratio, ratio] (log-uniform),
    anywhere inside the image, stretched back to the full size."""
    b, _, h, w = x.shape
    area = uniform(generator, b, scale, 1.0, x)
    aspect = uniform(generator, b, -math.log(ratio), math.log(ratio), x).exp()
    box_w, box_h = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)  # of the sides
    m = _identity(b, x)
    m[:, 0, 0], m[:, 1, 1] = box_w, box_h
    m[:, 0, 2] = uniform(generator, b, -1, 1, x) * (1 - box_w) * w / 2  # the box's centre stays inside
    m[:, 1, 2] = uniform(generator, b, -1, 1, x) * (1 - box_h) * h / 2
    return m


def rotation_matrix(x: Tensor, generator: torch.Generator, *, degrees: float) -> Tensor:
    """Turn each image by an angle uniform in [−degrees, degrees] about its centre."""
    angle = uniform(generator, len(x), -degrees, degrees, x) * (math.pi / 180)
    m = _identity(len(x), x)
    m[:, 0, 0], m[:, 0, 1] = angle.cos(), -angle.sin()
    m[:, 1, 0], m[:, 1, 1] = angle.sin(), angle.cos()
    return m


def shear_matrix(x: Tensor, generator: torch.Generator, *, degrees: float) -> Tensor:
    """Slant each image horizontally: x' = x + tan(φ)·y with φ uniform in [−degrees, degrees]."""
    angle = uniform(generator, len(x), -degrees, degrees, x) * (math.pi / 180)
    m = _identity(len(x), x)
    m[:, 0, 1] = angle.tan()
    return m


def shift_matrix(x: Tensor, generator: torch.Generator, *, fraction: float) -> Tensor:
    """Translate each image by up to ±fraction of its width and height."""
    b, _, h, w = x.shape
    m = _identity(b, x)
    m[:, 0, 2] = uniform(generator, b, -fraction, fraction, x) * w
    m[:, 1, 2] = uniform(generator, b, -fraction, fraction, x) * h
    return m


def warp(x: Tensor, matrix: Tensor, *, fill: str = "zeros") -> Tensor:
    """Resample each image through its output→input matrix (B, 3, 3); `fill` is grid_sample's padding_mode."""
    _, _, h, w = x.shape
    to_pixels = torch.diag(torch.tensor([w / 2, h / 2, 1.0], device=x.device, dtype=x.dtype))
    to_grid = torch.diag(torch.tensor([2 / w, 2 / h, 1.0], device=x.device, dtype=x.dtype))
    theta = (to_grid @ matrix @ to_pixels)[:, :2]  # (B, 2, 3) in affine_grid's [−1, 1] units
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=fill, align_corners=False)


# ---- pixels ------------------------------------------------------------------------------------------------

def flip(x: Tensor, generator: torch.Generator, *, p: float, dim: int = -1) -> Tensor:
    """Mirror each image with probability p: left–right (dim −1) or top–bottom (dim −2)."""
    mirrored = chosen(generator, len(x), p, x).view(-1, 1, 1, 1)
    return torch.where(mirrored, x.flip(dim), x)


def gray(x: Tensor) -> Tensor:
    """Luma (B, 1, H, W) of RGB images; a one-channel image is its own."""
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    weights = torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _hue_matrices(turns: Tensor) -> Tensor:
    """(B, 3, 3) RGB→RGB matrices turning the colour plane of YIQ by `turns` of a full circle."""
    yiq = _YIQ.to(turns.device, turns.dtype)
    angle = turns * 2 * math.pi
    turn = torch.zeros(len(turns), 3, 3, device=turns.device, dtype=turns.dtype)
    turn[:, 0, 0] = 1
    turn[:, 1, 1], turn[:, 1, 2] = angle.cos(), -angle.sin()
    turn[:, 2, 1], turn[:, 2, 2] = angle.sin(), angle.cos()
    return torch.linalg.inv(yiq) @ turn @ yiq


def jitter(x: Tensor, generator: torch.Generator, *, brightness: float, contrast: float, saturation: float,
           hue: float) -> Tensor:
    """ColorJitter with each image's own factors: brightness, contrast, saturation ∈ [1 − v, 1 + v], hue shift
    ∈ [−hue, hue] turns (saturation and hue: colour images only).

    All four are linear maps of a pixel's RGB, so they compose into one 3×3 matrix and one offset per
    image, applied in one pass and clipped once; torchvision clips after each, and turns HSV's hue
    where this turns YIQ's colour plane — close, not identical.
    """
    b = len(x)
    scale, contrast_f, saturation_f = [uniform(generator, b, max(0.0, 1 - v), 1 + v, x)
                                       for v in (brightness, contrast, saturation)]
    turns = uniform(generator, b, -hue, hue, x)
    # contrast blends towards the mean grey level, which brightness scales too
    offset = ((1 - contrast_f) * scale * gray(x).mean((1, 2, 3))).view(b, 1, 1, 1)
    scale = scale * contrast_f
    if x.shape[1] != 3:
        return (x * scale.view(b, 1, 1, 1) + offset).clamp(0, 1)
    luma = torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype)
    eye = torch.eye(3, device=x.device, dtype=x.dtype)
    # saturation s: x -> s·x + (1 − s)·luma(x), i.e. the matrix s·I + (1 − s)·1·wᵀ
    matrix = saturation_f.view(b, 1, 1) * eye + (1 - saturation_f).view(b, 1, 1) * luma.expand(3, 3)
    matrix = scale.view(b, 1, 1) * matrix
    if hue != 0:
        matrix = _hue_matrices(turns) @ matrix  # hue keeps grey grey, so the offset stays as it is
    out = torch.einsum("bij,bjhw->bihw", matrix, x)  # (B, 3, 3) · (B, 3, H, W): one colour matrix per image
    return (out + offset).clamp(0, 1)


def noise(x: Tensor, generator: torch.Generator, *, std: float) -> Tensor:
    """Add Gaussian pixel noise of standard deviation `std`, clipped to [0, 1]."""
    return (x + normal_like(x, generator) * std).clamp(0, 1)


def blur(x: Tensor, generator: torch.Generator, *, sigma: float, p: float) -> Tensor:
    """Gaussian blur of each chosen image (probability p) with its own σ ∈ [0.1, sigma] pixels: two 1-D passes,
    one kernel per image (grouped convolution), reflecting at the borders."""
    b, c, h, w = x.shape
    sigmas = uniform(generator, b, MIN_BLUR_SIGMA, max(sigma, MIN_BLUR_SIGMA), x)
    applied = chosen(generator, b, p, x)
    radius = max(1, min(math.ceil(2 * sigma), h - 1, w - 1))
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernels = torch.exp(-offsets[None] ** 2 / (2 * sigmas[:, None] ** 2))  # (B, K)
    kernels = (kernels / kernels.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B·C, K): one per channel
    flat = x.reshape(1, b * c, h, w)  # (B, C, H, W) -> (1, B·C, H, W): each channel its own group
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernels[:, None, None, :], groups=b * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernels[:, None, :, None], groups=b * c)
    return torch.where(applied.view(-1, 1, 1, 1), flat.view(b, c, h, w), x)


def erase(x: Tensor, generator: torch.Generator, *, p: float, scale: float, value: float) -> Tensor:
    """RandomErasing: in each chosen image (probability p) fill a box of area ∈ [0.02, scale] of the image and
    aspect ∈ [1/3.3, 3.3] with `value`."""
    b, _, h, w = x.shape
    area = uniform(generator, b, MIN_ERASE_AREA, scale, x) * h * w
    aspect = uniform(generator, b, -math.log(ERASE_RATIO), math.log(ERASE_RATIO), x).exp()
    box_h = (area * aspect).sqrt().round().clamp(1, h)
    box_w = (area / aspect).sqrt().round().clamp(1, w)
    top = (uniform(generator, b, 0, 1, x) * (h - box_h + 1)).floor()
    left = (uniform(generator, b, 0, 1, x) * (w - box_w + 1)).floor()
    applied = chosen(generator, b, p, x)
    rows = torch.arange(h, device=x.device, dtype=x.dtype)[None]  # (1, H)
    cols = torch.arange(w, device=x.device, dtype=x.dtype)[None]
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])  # (B, W)
    box = in_rows[:, None, :, None] & in_cols[:, None, None, :] & applied.view(-1, 1, 1, 1)  # (B, 1, H, W)
    return torch.where(box, torch.as_tensor(value, dtype=x.dtype, device=x.device), x)
