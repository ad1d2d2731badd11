"""`datasets`: the bundled and downloadable data sets."""

from __future__ import annotations

import argparse

from engine import data

HELP = "list the data sets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> None:
    for name in data.names():
        meta = data.info(name)
        print(f"{name:14s} {meta.num_images:>6,} images  {meta.channels}×{meta.native_size}×"
              f"{meta.native_size}  {meta.num_classes:>2} classes  {meta.source:10s} {meta.title}")
