"""`transfer`: reuse a trained network for another data set; test accuracy of five ways to learn it.

    python -m engine train --data shapes --save shapes.pt
    python -m engine transfer --source shapes.pt --target faces --per-class 5 --epochs 5 --seed 0 --json
    python -m engine transfer --source resnet18 --image-size 64 --target my_images.zip --per-class all

The source is a saved Run (.pt) or a pretrained ImageNet network whose weights are in the torch
hub cache. One line per step, then one JSON object: test accuracies `pixels_linear`,
`features_linear` (at the layer best on validation, named in `layer`), `head_only`, `fine_tuned`
and `scratch`, with `per_class`, `seconds` and `notes` (what was converted or cut).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli.common import load_data
from engine.errors import UserInputError
from engine.models import pretrained
from engine.training import sources
from engine.training.probe import classifier_names
from engine.training.runs import load_run
from engine.job_messages import Progress
from engine.training.transfer import ALL, METHODS, Note, TransferReport, compare

HELP = "reuse a trained network for another data set: linear probes, fine-tuning, from scratch"
TRAIN_HINT = ("Or train a source here: python -m engine train --data shapes --save shapes.pt, "
              "then --source shapes.pt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help=f"a saved run (.pt) or one of {', '.join(pretrained.names())}")
    parser.add_argument("--image-size", type=int, default=64, help="input side for a pretrained source (≤ 224)")
    parser.add_argument("--target", default="faces", help="a data-set name, or a zip/folder of class folders")
    parser.add_argument("--per-class", default="10", help="training images per class of the target, or 'all'")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of each training (scratch gets twice as many)")
    parser.add_argument("--classifier", default="logistic", choices=classifier_names(), help="the linear probe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print a JSON object last")


def load_source(spec: str, image_size: int) -> sources.Source:
    """A saved run by path, or a pretrained network by name (its offline message, and the way out, if missing)."""
    path = Path(spec)
    if path.is_file():
        return sources.from_run(load_run(path.read_bytes()))
    if spec in pretrained.names():
        try:
            return sources.from_pretrained(spec, image_size=image_size)
        except UserInputError as error:
            raise UserInputError(f"{error} {TRAIN_HINT}") from error
    raise UserInputError(f"--source must be a saved run file (no file {spec} here) or one of "
                         f"{', '.join(pretrained.names())}; got {spec!r}")


def per_class_of(text: str) -> int:
    if text.strip().lower() == "all":
        return ALL
    try:
        value = int(text)
    except ValueError:
        raise UserInputError(f"--per-class must be a whole number ≥ 1 or 'all'; got {text!r}") from None
    if value < 1:
        raise UserInputError(f"--per-class must be ≥ 1 or 'all'; got {value}")
    return value


def run(args: argparse.Namespace) -> None:
    per_class = per_class_of(args.per_class)
    source = load_source(args.source, args.image_size)
    target = load_data(args.target, None, args.seed)
    report = None
    for event in compare(source=source, target=target, per_class=per_class, epochs=args.epochs, seed=args.seed,
                         classifier=args.classifier):
        if isinstance(event, Progress):
            print(f"[{event.fraction:4.0%}] {event.message}", flush=True)
        elif isinstance(event, Note):
            print(f"note: {event.message}", flush=True)
        elif isinstance(event, TransferReport):
            report = event
    for name in METHODS:
        print(f"{name:16s} {report.accuracies[name]:.3f}" + (f"  ({report.layer})" if name == "features_linear" else ""))
    if args.json:
        print(json.dumps({**report.accuracies, "layer": report.layer, "per_class": report.per_class,
                          "seconds": report.seconds, "notes": report.notes, "source": source.title,
                          "target": target.title,
                          "probes": [{"layer": p.feature.label, "width": p.feature.width, "val_acc": p.val_acc,
                                      "test_acc": p.test_acc} for p in report.probes]}))
