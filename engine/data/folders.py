"""A data set from the user's own images: a zip or a folder with one sub-folder per class."""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path

import torch

from engine import limits
from engine.data.images import decode_image, safe_extract_zip, to_model_input
from engine.data.sets import Dataset, Progress, _as_int, _check_memory, _finish, _no_progress, _Raw
from engine.errors import UserInputError


_WRAPPER_DEPTH = 3  # wrapper folders stepped into: a zip of "Downloads/my_data/cats/…" still works


def _hidden(name: str) -> bool:
    """macOS and Windows bookkeeping (.DS_Store, __MACOSX, Thumbs.db) and hidden files are not data."""
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def _unwrap(root: Path) -> Path:
    """Step into single top-level wrapper folders (my_data/cats, my_data/dogs → cats, dogs)."""
    for _ in range(_WRAPPER_DEPTH):
        entries = [e for e in root.iterdir() if not _hidden(e.name)]
        if not (len(entries) == 1 and entries[0].is_dir()
                and any(e.is_dir() and not _hidden(e.name) for e in entries[0].iterdir())):
            break
        root = entries[0]
    return root


def _class_name(folder: Path) -> str:
    """The folder's name in composed Unicode: macOS writes "café" as "cafe" + a combining accent."""
    return unicodedata.normalize("NFC", folder.name)


def _folder_from_tree(root: Path, *, image_size: int, seed: int, name: str, report: Progress) -> Dataset:
    root = _unwrap(root)
    classes: dict[str, list[Path]] = {}
    skipped: list[str] = []
    for entry in sorted(root.iterdir()):
        if _hidden(entry.name):
            continue
        if entry.is_dir():
            classes[_class_name(entry)] = sorted(
                p for p in entry.rglob("*")
                if p.is_file() and not any(_hidden(part) for part in p.relative_to(root).parts))
        else:
            skipped.append(f"{entry.name}: not inside a class folder")
    found = ", ".join(f"{c} ({len(f)} files)" for c, f in classes.items()) or "no class folders"
    if skipped and not classes:
        found += f", only {len(skipped)} loose files: put each class's images in a folder named after the class"
    if len(classes) < 2 or any(not files for files in classes.values()):
        raise UserInputError(
            f"an image folder needs at least 2 class folders, each with at least 1 image; found {found}")
    items = [(label, path) for label, files in enumerate(classes.values()) for path in files]
    if len(items) > limits.MAX_ZIP_FILES:
        raise UserInputError(f"the folder has {len(items):,} files; at most {limits.MAX_ZIP_FILES:,} are allowed")
    _check_memory(len(items), 3, image_size, f"{len(items):,} images")
    images, labels = [], []
    step = max(1, len(items) // 50)
    for i, (label, path) in enumerate(items):
        if i % step == 0:
            report(0.05 + 0.75 * i / len(items), f"Decoding image {i + 1:,} of {len(items):,}")
        try:
            image = decode_image(path, name=path.relative_to(root).as_posix())
        except UserInputError as exc:
            skipped.append(str(exc))
            continue
        images.append(to_model_input(image, channels=image.shape[0], image_size=image_size))
        labels.append(label)
    if not images:
        first = skipped[len(skipped) - len(items)]  # the first decoding failure
        raise UserInputError(f"none of the {len(items)} files could be decoded as an image; {first}")
    y = torch.tensor(labels, dtype=torch.long)
    empty = [c for i, c in enumerate(classes) if not (y == i).any()]
    if empty:
        raise UserInputError(f"every class needs at least 1 decodable image; none in: {', '.join(empty)}")
    channels = 3 if any(im.shape[1] == 3 for im in images) else 1
    x = torch.cat([im.expand(-1, channels, -1, -1) for im in images])  # gray repeated into colour
    report(0.8, "Splitting into train/val/test")
    dataset = _finish(_Raw(x, y, list(classes)), name=f"upload:{name}", title=name,
                      image_size=image_size, seed=seed, report=report, skipped=skipped)
    report(1.0, "Done")
    return dataset


def load_folder(source: bytes | str | Path, *, image_size: int = 32, seed: int = 0,
                name: str = "my_data", progress: Progress | None = None) -> Dataset:
    """A data set from an ImageFolder layout (one folder per class): zip bytes, a zip file or a folder.

    Wrapper folders at the top (up to three) are stepped into. Files that do not decode are listed in
    ``skipped``; images become 3 channels if any is colour (else 1) and ``image_size`` squares.
    """
    size = _as_int("image_size", image_size, limits.MIN_IMAGE_SIZE, limits.MAX_IMAGE_SIZE)
    seed = _as_int("seed", seed, 0, 2**63 - 1)
    report = progress or _no_progress
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    if in_memory or Path(source).is_file():
        with tempfile.TemporaryDirectory(prefix="visionexplorer-") as tmp:
            report(0.0, "Unpacking the zip")
            safe_extract_zip(source, Path(tmp), name="the file" if in_memory else Path(source).name)
            return _folder_from_tree(Path(tmp), image_size=size, seed=seed, name=name, report=report)
    if not Path(source).is_dir():
        raise UserInputError(f"source must be zip bytes, a zip file or a folder; got {str(source)!r}")
    return _folder_from_tree(Path(source), image_size=size, seed=seed, name=name, report=report)
