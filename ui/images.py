"""Tensors and arrays → images a page can show: uint8 pixels, nearest-neighbour upscaling, colormaps, grids.

Pure numpy/torch conversion for display; nothing here computes what a model does.

References:
    Okabe & Ito, "Color Universal Design", https://jfly.uni-koeln.de/color/
    ColorBrewer "RdBu" (diverging, colour-blind safe), https://colorbrewer2.org/#type=diverging&scheme=RdBu
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

DISPLAY_SIZE = 96  # pixels; tiny images are upscaled to at least this side so a projector shows them
GAP_GRAY = 128  # mid-gray between tiles reads on both the light and the dark theme
# ColorBrewer RdBu (11 classes) reversed: negative = blue, 0 = near-white, positive = red.
_DIVERGING = np.array([
    (5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240), (247, 247, 247),
    (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43), (103, 0, 31),
], dtype=np.float64)


def _numpy(image: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(image, Tensor):
        return image.detach().to("cpu", torch.float32).numpy()
    return np.asarray(image)


def _hwc(array: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) → (H, W) for one channel, (H, W, 3) for three."""
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[0] == 1:
        return array[0]
    if array.ndim == 3 and array.shape[0] == 3:
        return array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    raise ValueError(f"expected an image of shape (H, W), (1, H, W) or (3, H, W); got {array.shape}")


def upscale(pixels: np.ndarray, upscale_to: int | None = DISPLAY_SIZE) -> np.ndarray:
    """Repeat every pixel an integer number of times so the longer side reaches `upscale_to`."""
    if not upscale_to:
        return pixels
    factor = max(1, math.ceil(upscale_to / max(pixels.shape[:2])))
    if factor == 1:
        return pixels
    return pixels.repeat(factor, axis=0).repeat(factor, axis=1)  # nearest neighbour keeps pixels crisp


def to_display(image: Tensor | np.ndarray, *, upscale_to: int | None = DISPLAY_SIZE) -> np.ndarray:
    """An image in [0, 1], (C, H, W) or (H, W), as uint8 (H', W') gray or (H', W', 3) colour for st.image.

    Values outside [0, 1] are clipped; uint8 input is taken as it is.
    """
    array = _numpy(image)
    if array.dtype != np.uint8:
        array = (np.clip(np.nan_to_num(array.astype(np.float64)), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return upscale(np.ascontiguousarray(_hwc(array)), upscale_to)


def signed_to_rgb(values: Tensor | np.ndarray, *, limit: float | None = None,
                  upscale_to: int | None = None) -> np.ndarray:
    """Signed values (H, W) or (1, H, W) → uint8 (H, W, 3) on a blue–white–red diverging map centred on 0.

    `limit` maps to the ends of the map (default: the largest |value|), so -limit is dark blue, 0 is
    near-white and +limit dark red. Pass one shared limit to compare several maps.
    """
    array = _numpy(values).astype(np.float64)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"signed_to_rgb expects (H, W) or (1, H, W); got {array.shape}")
    array = np.nan_to_num(array)
    if limit is None:
        limit = float(np.abs(array).max())
    position = (np.clip(array / limit, -1.0, 1.0) + 1.0) / 2.0 if limit > 0 else np.full(array.shape, 0.5)
    stops = np.linspace(0.0, 1.0, len(_DIVERGING))
    rgb = np.stack([np.interp(position, stops, _DIVERGING[:, c]) for c in range(3)], axis=-1)
    return upscale(rgb.round().astype(np.uint8), upscale_to)


def signed_colour(values: Tensor | np.ndarray, *, limit: float | None = None,
                  upscale_to: int | None = None) -> np.ndarray:
    """Signed colour weights (3, H, W) → uint8 (H, W, 3) with 0 at mid-gray, ±limit at 0 and 255 per channel.

    The CS231n way to show colour templates: a red template means "red pixels raise this score".
    """
    array = np.nan_to_num(_numpy(values).astype(np.float64))
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"signed_colour expects (3, H, W); got {array.shape}")
    if limit is None:
        limit = float(np.abs(array).max())
    scaled = 0.5 + array / (2.0 * limit) if limit > 0 else np.full(array.shape, 0.5)
    return to_display(scaled, upscale_to=upscale_to)


def tile(images: Tensor | np.ndarray, columns: int, *, gap: int = 1,
         upscale_to: int | None = None) -> np.ndarray:
    """A grid of images with `gap`-pixel mid-gray lines between them, as one uint8 array.

    `images` is (N, C, H, W) or (N, H, W) in [0, 1], or uint8 (N, H, W, 3) from the colormaps here.
    Each image is upscaled first (`upscale_to`), so the gaps stay one pixel wide.
    """
    array = _numpy(images)
    if len(array) == 0:
        raise ValueError("tile needs at least one image")
    if array.dtype == np.uint8 and array.ndim == 4 and array.shape[-1] == 3:
        cells = [upscale(cell, upscale_to) for cell in array]
    else:
        cells = [to_display(cell, upscale_to=upscale_to) for cell in array]
    colour = any(cell.ndim == 3 for cell in cells)
    if colour:  # mixing gray and colour cells: gray ones become three equal channels
        cells = [cell if cell.ndim == 3 else np.repeat(cell[..., None], 3, axis=-1) for cell in cells]
    columns = max(1, min(int(columns), len(cells)))
    rows = math.ceil(len(cells) / columns)
    h, w = cells[0].shape[:2]
    shape = (rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap) + ((3,) if colour else ())
    grid = np.full(shape, GAP_GRAY, dtype=np.uint8)
    for i, cell in enumerate(cells):
        top, left = (i // columns) * (h + gap), (i % columns) * (w + gap)
        grid[top:top + h, left:left + w] = cell
    return grid
