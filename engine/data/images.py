"""Safe image loading: decode untrusted files within limits, make model inputs, unpack zips.

Every check that can be made from a header is made before any pixel is decoded, so a tiny
file that declares a gigantic image (a "decompression bomb") is refused cheaply.

References:
    - Pillow, ``Image.open`` and decompression bombs:
      https://pillow.readthedocs.io/en/stable/reference/Image.html#PIL.Image.open
    - Pillow, ``ImageOps.exif_transpose``:
      https://pillow.readthedocs.io/en/stable/reference/ImageOps.html#PIL.ImageOps.exif_transpose
    - Snyk, "Zip Slip" (archive path traversal): https://security.snyk.io/research/zip-slip-vulnerability
    - ITU-R BT.601 luma weights: https://www.itu.int/rec/R-REC-BT.601
    - torchvision ImageNet preprocessing (resize the shorter side, centre-crop):
      https://pytorch.org/vision/stable/transforms.html
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from engine import limits
from engine.errors import UserInputError

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, R, G, B
_GRAY_MODES = {"1", "L", "I", "F"}  # plus the "I;16*" family, matched by prefix
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_COPY_CHUNK = 1 << 20  # bytes per read while extracting
# Raster formats Pillow decodes itself (JPEG includes MPO); the EPS plugin runs Ghostscript.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA", "ICO")


def _mb(num_bytes: int) -> str:
    return f"{num_bytes / 1024**2:.1f} MB"


def _read_source(data: bytes | str | Path, *, name: str) -> bytes:
    """The file's bytes, refusing anything over the upload limit before reading it."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        path = Path(data)
        if not path.is_file():
            raise UserInputError(f"{name}: no file at {str(path)!r}")
        size = path.stat().st_size
        if size > limits.MAX_UPLOAD_BYTES:
            raise UserInputError(
                f"{name} is {_mb(size)}; a file may be at most {_mb(limits.MAX_UPLOAD_BYTES)}"
            )
        raw = path.read_bytes()
    if len(raw) > limits.MAX_UPLOAD_BYTES:
        raise UserInputError(
            f"{name} is {_mb(len(raw))}; a file may be at most {_mb(limits.MAX_UPLOAD_BYTES)}"
        )
    return raw


def _gray_array(img: Image.Image) -> np.ndarray:
    """(H, W) float32 in [0, 1] from a one-channel mode, scaled by its bit depth."""
    if img.mode == "1":
        return np.asarray(img, dtype=np.float32)
    if img.mode == "L":
        return np.asarray(img, dtype=np.float32) / 255.0
    arr = np.asarray(img).astype(np.float32)
    if img.mode.startswith("I;16") or (img.mode == "I" and arr.min() >= 0 and arr.max() <= 65535):
        return arr / 65535.0  # 16-bit PNG/TIFF
    if img.mode == "F" and arr.min() >= 0 and arr.max() <= 1:
        return arr
    low, high = float(arr.min()), float(arr.max())  # 32-bit ints/floats have no fixed range
    return (arr - low) / (high - low) if high > low else np.zeros_like(arr)


def _rgb_array(img: Image.Image) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]; transparency is composited over white."""
    has_alpha = img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)
    if not has_alpha:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def decode_image(data: bytes | str | Path, *, name: str = "image") -> Tensor:
    """Decode an untrusted image file into a float32 ``(C, H, W)`` tensor in [0, 1].

    ``C`` is 1 for grayscale modes (1, L, I, I;16, F; 16-bit scaled by 65535) and 3 otherwise
    (RGBA/LA/P with transparency composited over white; CMYK, YCbCr, … converted). The pixel
    count is checked from the header before decoding; EXIF orientation is applied.

    Args:
        name: how messages refer to the file (e.g. its upload name).
    """
    raw = _read_source(data, name=name)
    try:
        img = Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS)  # lazy: reads the header only
    except Image.UnidentifiedImageError as exc:
        raise UserInputError(
            f"{name} could not be decoded as an image: it is not one of "
            f"{', '.join(IMAGE_FORMATS)}"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise UserInputError(
            f"{name} declares too many pixels; an image may have at most "
            f"{limits.MAX_IMAGE_PIXELS:,} pixels ({exc})"
        ) from exc
    except Exception as exc:  # Pillow's plugins raise many types on malformed input
        raise UserInputError(f"{name} could not be decoded as an image: {exc}") from exc
    width, height = img.size
    if width * height > limits.MAX_IMAGE_PIXELS:
        raise UserInputError(
            f"{name} is {width}×{height} = {width * height:,} pixels; an image may have at most "
            f"{limits.MAX_IMAGE_PIXELS:,} pixels"
        )
    if width < 1 or height < 1:
        raise UserInputError(f"{name} has an empty size {width}×{height}")
    try:
        img.load()
    except Exception as exc:  # truncated data, bad checksums, unsupported codecs, …
        raise UserInputError(f"{name} could not be decoded as an image: {exc}") from exc
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not cost the user the picture
        pass
    if img.mode in _GRAY_MODES or img.mode.startswith("I;16"):
        arr = _gray_array(img)[None]  # (H, W) -> (1, H, W)
    else:
        arr = _rgb_array(img).transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).clamp_(0.0, 1.0)


def drawing_to_image(rgba: np.ndarray) -> Tensor | None:
    """A canvas drawing (H, W, 4) uint8, light strokes on dark, as a gray (1, H, W) image; None if blank."""
    if rgba.ndim != 3 or rgba.shape[2] < 3:
        raise UserInputError(f"a drawing must be an (H, W, 3 or 4) array; got shape {tuple(rgba.shape)}")
    gray = torch.from_numpy(np.ascontiguousarray(rgba[..., :3])).float().mean(-1) / 255  # (H, W)
    if float(gray.max()) - float(gray.min()) < 0.05:
        return None
    return gray[None]  # (1, H, W)


def _convert_channels(x: Tensor, channels: int) -> Tensor:
    """(N, C, H, W) with C in {1, 3} -> (N, channels, H, W)."""
    if x.shape[1] == channels:
        return x
    if channels == 1:
        weights = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    return x.expand(-1, 3, -1, -1).contiguous()


def resize_batch(x: Tensor, image_size: int) -> Tensor:
    """Resize ``(N, C, H, W)`` images to ``(N, C, image_size, image_size)``.

    The shorter side is resized to ``image_size`` with antialiased bilinear interpolation and
    the longer side is centre-cropped (torchvision's ``Resize`` + ``CenterCrop``); square
    images are therefore resized whole.
    """
    if x.dim() != 4:
        raise UserInputError(f"images must have shape (N, C, H, W); got shape {tuple(x.shape)}")
    if int(image_size) < 1:
        raise UserInputError(f"image_size must be at least 1; got {image_size}")
    height, width = x.shape[-2:]
    if height == width == image_size:
        return x
    scale = image_size / min(height, width)
    new_h, new_w = max(image_size, round(height * scale)), max(image_size, round(width * scale))
    out = F.interpolate(
        x.float(), size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
    )
    top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
    return out[..., top : top + image_size, left : left + image_size].clamp(0.0, 1.0).contiguous()


def to_model_input(image: Tensor, *, channels: int, image_size: int) -> Tensor:
    """One ``(C, H, W)`` image in [0, 1] -> a ``(1, channels, image_size, image_size)`` batch.

    Colour becomes gray with BT.601 luma weights; gray becomes colour by repeating the channel.
    Resizing is :func:`resize_batch`'s: shorter side to ``image_size``, then a centre crop.
    """
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise UserInputError(
            f"image must have shape (C, H, W) with C = 1 or 3; got shape {tuple(image.shape)}"
        )
    if channels not in (1, 3):
        raise UserInputError(f"channels must be 1 or 3; got {channels}")
    x = _convert_channels(image[None].float(), channels)  # (C, H, W) -> (1, channels, H, W)
    return resize_batch(x, image_size)


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's relative path, refusing absolute paths, '..', and symbolic links."""
    name = info.filename.replace("\\", "/")  # archives made on Windows sometimes use '\'
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or path.is_absolute():
        raise UserInputError(f"zip member {info.filename!r} has an absolute path; paths must be relative")
    if ".." in path.parts:
        raise UserInputError(f"zip member {info.filename!r} contains '..'; members must stay inside the archive")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UserInputError(f"zip member {info.filename!r} is a symbolic link; links are not allowed")
    return path


def _ignored(path: PurePosixPath) -> bool:
    """macOS resource forks and hidden files (.DS_Store, ._x.png, .git/…) are not data."""
    return any(part == "__MACOSX" or part.startswith(".") for part in path.parts)


def safe_extract_zip(zip_source: bytes | str | Path, dest: Path) -> list[str]:
    """Extract a zip archive into ``dest`` and return the extracted relative paths (sorted).

    Member count and declared total size are checked from the central directory before
    anything is written; absolute paths, '..' components and symbolic links are refused; the
    bytes actually written are counted too, in case sizes were misdeclared.
    """
    raw = _read_source(zip_source, name="zip_source")
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise UserInputError("zip_source is not a zip archive (no zip central directory found)")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserInputError(f"zip_source is not a readable zip archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.MAX_ZIP_FILES:
            raise UserInputError(
                f"the zip has {len(infos):,} members; at most {limits.MAX_ZIP_FILES:,} are allowed"
            )
        declared = sum(info.file_size for info in infos)
        if declared > limits.MAX_ZIP_UNCOMPRESSED_BYTES:
            raise UserInputError(
                f"the zip unpacks to {_mb(declared)}; at most "
                f"{_mb(limits.MAX_ZIP_UNCOMPRESSED_BYTES)} uncompressed is allowed"
            )
        members = [(info, _member_path(info)) for info in infos]  # validate all before writing
        written, extracted = 0, []
        for info, path in members:
            if info.is_dir() or _ignored(path) or not path.parts:
                continue
            target = root.joinpath(*path.parts)
            if not target.resolve().is_relative_to(root):
                raise UserInputError(f"zip member {info.filename!r} would be written outside the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(_COPY_CHUNK):
                        written += len(chunk)
                        if written > limits.MAX_ZIP_UNCOMPRESSED_BYTES:
                            raise UserInputError(
                                f"the zip unpacks to more than "
                                f"{_mb(limits.MAX_ZIP_UNCOMPRESSED_BYTES)}; that is the limit"
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError) as exc:
                # corrupt data, bad CRC, encrypted members, unsupported compression methods
                raise UserInputError(f"zip member {info.filename!r} could not be extracted: {exc}") from exc
            extracted.append(path.as_posix())
    return sorted(set(extracted))
