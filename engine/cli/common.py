"""What several commands parse alike: `key=value` options and a data set given by name or path."""

from __future__ import annotations

import ast
from pathlib import Path

from engine import data
from engine.errors import UserInputError


def parse_option(text: str) -> tuple[str, object]:
    """`key=value`, the value read as a Python literal when it is one (depth=14, hidden=(256,64))."""
    if "=" not in text:
        raise UserInputError(f"--option must look like key=value; got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def number_option(flag: str, text: str) -> tuple[str, float]:
    """`prefix=number` for --lr-factor and --head."""
    key, value = parse_option(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserInputError(f"{flag} must look like name=number; got {text!r}")
    return key, float(value)


def load_data(spec: str, image_size: int | None, seed: int) -> data.Dataset:
    """A bundled data set by name, or a zip/folder of class folders by path."""
    path = Path(spec)
    if spec not in data.names() and (path.exists() or spec.endswith(".zip")):
        if not path.exists():
            raise UserInputError(f"--data: no such file {spec}")
        return data.load_folder(path, image_size=image_size or 32, seed=seed, name=path.stem)
    return data.load(spec, image_size=image_size, seed=seed)
