"""`models`: the trainable models and their options."""

from __future__ import annotations

import argparse

from engine import models

HELP = "list the models and their options"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> None:
    for name in models.names():
        meta = models.info(name)
        options = ", ".join(f"{k}={v!r}" for k, v in meta.defaults().items()) or "no options"
        print(f"{name:14s} {meta.family:6s} {meta.title} — {options}")
