"""Safe image loading: decode untrusted files within limits, make model inputs, unpack zips.

Every check that can be made from a header is made before any pixel is decoded, so a tiny
file that declares a gigantic image (a "decompression bomb") is refused cheaply. Whatever is
refused is explained in the user's words: what the file is, and what to do instead.

References:
    - Pillow, ``Image.open`` and decompression bombs:
      https://pillow.readthedocs.io/en/stable/reference/Image.html#PIL.Image.open
    - Pillow, ``ImageOps.exif_transpose``:
      https://pillow.readthedocs.io/en/stable/reference/ImageOps.html#PIL.ImageOps.exif_transpose
    - ISO/IEC 23008-12 (HEIF): the ``ftyp`` box and its brands
    - PKWARE, APPNOTE.TXT (the zip format): general-purpose flag bits 0 (encrypted) and 11 (UTF-8 names)
    - Snyk, "Zip Slip" (archive path traversal): https://security.snyk.io/research/zip-slip-vulnerability
    - ITU-R BT.601 luma weights: https://www.itu.int/rec/R-REC-BT.601
    - torchvision ImageNet preprocessing (resize the shorter side, centre-crop):
      https://pytorch.org/vision/stable/transforms.html
"""

from __future__ import annotations

import io
import re
import stat
import warnings
import zipfile
import zlib
from dataclasses import dataclass
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
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_TRUNCATED = re.compile(r"truncat|end of file|EOF", re.IGNORECASE)  # Pillow's words for a cut-off file
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"II*\x00": "TIFF",
               b"MM\x00*": "TIFF"}


@dataclass(frozen=True)
class Decoded:
    """A decoded image, (C, H, W) float32 in [0, 1], and what decoding changed that a user should know."""

    image: Tensor
    format: str  # Pillow's name: "PNG", "JPEG", …
    notes: tuple[str, ...] = ()


def _mb(num_bytes: int) -> str:
    return f"{num_bytes / 1024**2:.1f} MB"


def _read_source(data: bytes | str | Path, *, name: str) -> bytes:
    """The file's bytes, refusing an empty file and anything over the upload limit before reading it."""
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
    if not raw:
        raise UserInputError(f"{name}: the file is empty (0 bytes); the upload or the copy may have failed")
    if len(raw) > limits.MAX_UPLOAD_BYTES:
        raise UserInputError(
            f"{name} is {_mb(len(raw))}; a file may be at most {_mb(limits.MAX_UPLOAD_BYTES)}"
        )
    return raw


def _what_else(raw: bytes) -> str | None:
    """What a file that is none of IMAGE_FORMATS is, from its first bytes, with what to do instead."""
    head = raw[:4096]
    if head[4:8] == b"ftyp":  # ISO base media (HEIF, AVIF, MP4): major brand, version, compatible brands
        size = int.from_bytes(head[:4], "big")
        brands = {head[8:12]} | {head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
        if brands & _AVIF_BRANDS:
            return "AVIF images are not supported; export it as JPEG or PNG"
        if brands & _HEIF_BRANDS:
            return ("HEIC photos (iPhone) are not supported; export as JPEG (on the iPhone: Settings → Camera → "
                    "Formats → Most Compatible, or share the photo as JPEG)")
        return "it is a video (MP4 family), not an image"
    text = head.lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "SVG drawings are not supported (they describe shapes, not pixels); export it as PNG"
    if head.startswith(b"%PDF"):
        return "PDF documents are not supported; export the page as PNG or JPEG"
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive, not an image"
    return None


def _looks_like_text(raw: bytes) -> bool:
    try:
        raw[:1024].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _signature(raw: bytes) -> str | None:
    """The image format a file's first bytes announce, if any."""
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "WEBP"
    if raw[:2] == b"BM" and raw[6:10] == bytes(4):  # "BM", file size, four reserved zero bytes
        return "BMP"
    return next((kind for magic, kind in _SIGNATURES.items() if raw.startswith(magic)), None)


def _not_decodable(name: str, raw: bytes) -> UserInputError:
    kind = _signature(raw)
    if kind:  # it starts like an image but Pillow could not read its header
        return UserInputError(f"{name} could not be decoded as an image: the {kind} is cut off (truncated) or "
                              "damaged — download or copy it again")
    known = _what_else(raw)
    if known:
        return UserInputError(f"{name}: {known}")
    formats = ", ".join(IMAGE_FORMATS)
    if _looks_like_text(raw):
        return UserInputError(f"{name} could not be decoded as an image: it is text, not one of {formats} "
                              "(renaming a file does not change what is inside)")
    return UserInputError(f"{name} could not be decoded as an image: it is not one of {formats}")


def _damaged(name: str, kind: str, error: Exception) -> UserInputError:
    if _TRUNCATED.search(str(error)):
        return UserInputError(f"{name} could not be decoded as an image: the {kind} is cut off (truncated); "
                              "only part of the file arrived — download or copy it again")
    return UserInputError(f"{name} could not be decoded as an image: the {kind} data is damaged")


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


def _rgb_array(img: Image.Image) -> tuple[np.ndarray, bool]:
    """(H, W, 3) float32 in [0, 1], and whether some pixel was transparent (composited over white)."""
    has_alpha = img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)
    if not has_alpha:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0, False
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1.0 - alpha), bool(alpha.min() < 1.0)


def _open(raw: bytes, name: str) -> Image.Image:
    """Open lazily (the header only) and check the declared size before any pixel is decoded."""
    try:
        with warnings.catch_warnings():  # our pixel limit is lower than Pillow's warning threshold
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS)
    except Image.UnidentifiedImageError as exc:
        raise _not_decodable(name, raw) from exc
    except Image.DecompressionBombError as exc:  # over twice Pillow's own limit: refused from the header
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(declared.group(1)):,} pixels" if declared else "a gigantic image"
        raise UserInputError(
            f"{name} declares {count} in a file of only {_mb(len(raw))}: a \"decompression bomb\" that would "
            f"fill the memory; an image may have at most {limits.MAX_IMAGE_PIXELS:,} pixels"
        ) from exc
    except Exception as exc:  # Pillow's plugins raise many types on malformed headers
        raise _damaged(name, _signature(raw) or "image", exc) from exc
    width, height = img.size
    if width * height > limits.MAX_IMAGE_PIXELS:
        raise UserInputError(
            f"{name} is {width}×{height} = {width * height:,} pixels; an image may have at most "
            f"{limits.MAX_IMAGE_PIXELS:,} pixels — make it smaller first"
        )
    if width < 1 or height < 1:
        raise UserInputError(f"{name} has an empty size {width}×{height}")
    return img


def read_image(data: bytes | str | Path, *, name: str = "image") -> Decoded:
    """Decode an untrusted image file into a float32 ``(C, H, W)`` tensor in [0, 1], with notes.

    ``C`` is 1 for grayscale modes (1, L, I, I;16, F; 16-bit scaled by 65535) and 3 otherwise
    (RGBA/LA/P with transparency composited over white; CMYK, YCbCr, … converted). The pixel
    count is checked from the header before decoding; EXIF orientation is applied (a phone's
    photo comes out upright); an animation or a multi-page file gives its first frame. The notes
    say which of these changed the picture.

    Args:
        name: how messages refer to the file (e.g. its upload name).
    """
    raw = _read_source(data, name=name)
    img = _open(raw, name)
    kind, notes = img.format or "image", []
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        notes.append(f"{name} has {frames} frames (an animation or pages); the first frame is used")
    try:
        img.load()
    except Exception as exc:  # truncated data, bad checksums, unsupported codecs, …
        raise _damaged(name, kind, exc) from exc
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block should not cost the user the picture
        pass
    try:
        if img.mode in _GRAY_MODES or img.mode.startswith("I;16"):
            arr = _gray_array(img)[None]  # (H, W) -> (1, H, W)
        else:
            rgb, transparent = _rgb_array(img)
            arr = rgb.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
            if transparent:
                notes.append(f"{name} has transparent pixels: transparency was composited on white")
    except ValueError as exc:  # a colour mode Pillow cannot convert
        raise UserInputError(f"{name}: its colour mode {img.mode} is not supported; save it as RGB") from exc
    image = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).clamp_(0.0, 1.0)
    return Decoded(image, kind, tuple(notes))


def decode_image(data: bytes | str | Path, *, name: str = "image") -> Tensor:
    """:func:`read_image`'s image alone: ``(C, H, W)`` float32 in [0, 1]."""
    return read_image(data, name=name).image


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


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author saw it: zips without the UTF-8 flag (macOS Finder, old Windows
    tools) often hold UTF-8 names anyway, which Python reads as cp437 ("cafÃ©" for "café")."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return info.filename


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's relative path, refusing absolute paths, '..', and symbolic links."""
    name = _member_name(info).replace("\\", "/")  # archives made on Windows sometimes use '\'
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or path.is_absolute():
        raise UserInputError(f"zip member {name!r} has an absolute path; paths must be relative")
    if ".." in path.parts:
        raise UserInputError(f"zip member {name!r} contains '..'; members must stay inside the archive")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UserInputError(f"zip member {name!r} is a symbolic link; links are not allowed")
    return path


def _ignored(path: PurePosixPath) -> bool:
    """macOS resource forks, hidden files (.DS_Store, ._x.png, .git/…) and Windows' thumbnails are not data."""
    return any(part == "__MACOSX" or part.startswith(".") or part in ("Thumbs.db", "desktop.ini")
               for part in path.parts)


def _open_zip(raw: bytes, name: str) -> zipfile.ZipFile:
    """The archive, or why it is none: not a zip, cut off, damaged, or locked with a password."""
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        if raw.startswith(b"PK\x03\x04"):
            raise UserInputError(f"{name} is not a complete zip archive: it is cut off (its table of contents, "
                                 "at the end of the file, is missing) — download or copy it again")
        raise UserInputError(f"{name} is not a zip archive (no zip central directory found)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserInputError(f"{name} is not a readable zip archive: it is damaged; create it again") from exc
    if any(info.flag_bits & 0x1 for info in infos):
        archive.close()
        raise UserInputError(f"{name} is password-protected (encrypted); zip the folder again without a password")
    return archive


def _extract_error(name: str, error: Exception) -> UserInputError:
    if isinstance(error, NotImplementedError):
        return UserInputError(f"zip member {name!r} uses a compression method this app cannot read; "
                              "zip the folder again with the usual (deflate) method")
    return UserInputError(f"zip member {name!r} is damaged (its data or checksum is wrong): the zip is "
                          "corrupt — create it again")


def safe_extract_zip(zip_source: bytes | str | Path, dest: Path, *, name: str = "the file") -> list[str]:
    """Extract a zip archive into ``dest`` and return the extracted relative paths (sorted).

    Member count and declared total size are checked from the central directory before
    anything is written (a "zip bomb" is refused unopened); absolute paths, '..' components,
    symbolic links and encrypted members are refused; the bytes actually written are counted
    too, in case sizes were misdeclared.
    """
    raw = _read_source(zip_source, name=name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with _open_zip(raw, name) as archive:
        infos = archive.infolist()
        if len(infos) > limits.MAX_ZIP_FILES:
            raise UserInputError(
                f"{name} has {len(infos):,} members; at most {limits.MAX_ZIP_FILES:,} are allowed"
            )
        declared = sum(info.file_size for info in infos)
        if declared > limits.MAX_ZIP_UNCOMPRESSED_BYTES:
            raise UserInputError(
                f"{name} unpacks to {_mb(declared)}; at most "
                f"{_mb(limits.MAX_ZIP_UNCOMPRESSED_BYTES)} uncompressed is allowed"
            )
        members = [(info, _member_path(info)) for info in infos]  # validate all before writing
        written, extracted = 0, []
        for info, path in members:
            if info.is_dir() or _ignored(path) or not path.parts:
                continue
            target = root.joinpath(*path.parts)
            if not target.resolve().is_relative_to(root):
                raise UserInputError(f"zip member {path.as_posix()!r} would be written outside the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(_COPY_CHUNK):
                        written += len(chunk)
                        if written > limits.MAX_ZIP_UNCOMPRESSED_BYTES:
                            raise UserInputError(
                                f"{name} unpacks to more than "
                                f"{_mb(limits.MAX_ZIP_UNCOMPRESSED_BYTES)} uncompressed; that is the limit"
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError) as exc:
                raise _extract_error(path.as_posix(), exc) from exc
            extracted.append(path.as_posix())
    return sorted(set(extracted))
