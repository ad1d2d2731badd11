"""Photos bundled with scikit-learn and scikit-image, for the pages that filter one picture."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from engine.registry import Registry

PHOTOS: Registry[str] = Registry("photo")  # name -> the package that ships it; no download needed
for _name in ("astronaut", "camera", "chelsea", "china", "coffee", "coins", "flower", "horse",
              "immunohistochemistry", "moon", "page", "rocket", "text"):
    PHOTOS.add(_name, "scikit-learn" if _name in ("china", "flower") else "scikit-image")


def photo_names() -> list[str]:
    return PHOTOS.names()


def load_photo(name: str) -> Tensor:
    """A bundled photo as float32 ``(C, H, W)`` in [0, 1]; C = 1 for grayscale, 3 for colour."""
    if PHOTOS.get(name) == "scikit-learn":
        from sklearn.datasets import load_sample_image

        arr = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        arr = getattr(skimage.data, name)()
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.floating):
        pixels = arr.astype(np.float32)
    else:
        pixels = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    x = torch.from_numpy(np.clip(pixels, 0.0, 1.0))
    if x.dim() == 2:
        return x[None].contiguous()  # (H, W) -> (1, H, W)
    if x.shape[-1] == 4:  # RGBA: composite over white
        x = x[..., :3] * x[..., 3:] + (1 - x[..., 3:])
    return x.permute(2, 0, 1).contiguous()  # (H, W, 3) -> (3, H, W)
