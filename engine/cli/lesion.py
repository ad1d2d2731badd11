"""`lesion`: delete the blocks of a trained network one at a time, then k at random, and test it each time.

    python -m engine train --data digits --model resnet_small --option depth=20 --save res20.pt
    python -m engine lesion res20.pt --seed 0 --json
    python -m engine lesion my_run.pt --data path/to/my_images.zip --json

The run's test split is rebuilt from its data set and seed (`--data` names the zip or folder of a
run trained on one). One line per deleted block, then with --json one JSON object: baseline_acc,
removed [{block, acc}], not_removable [{block, reason}], random_k [{k, acc_mean, acc_std}].
A model with no removable block exits with code 2 (Veit, Wilber & Belongie 2016).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from engine.cli.common import load_data
from engine.errors import UserInputError
from engine.training.residual import LESION_DRAWS, run_lesion
from engine.training.runs import load_run

HELP = "delete blocks of a trained network and report its test accuracy each time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a Run file written by `train --save`")
    parser.add_argument("--data", help="the zip or folder the run was trained on (default: the run's data set)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random block subsets")
    parser.add_argument("--draws", type=int, default=LESION_DRAWS, help="random subsets per k; 0 = single blocks only")
    parser.add_argument("--json", action="store_true", help="print a JSON object last")


def run(args: argparse.Namespace) -> None:
    if not args.run.is_file():
        raise UserInputError(f"no such run file: {args.run}")
    trained = load_run(args.run.read_bytes())
    spec, config = args.data or trained.config["data"], trained.config
    dataset = load_data(spec, config.get("image_size") or trained.model_config.image_size, config.get("seed", 0))
    mc = trained.model_config
    if (dataset.channels, dataset.image_size, dataset.num_classes) != (mc.in_channels, mc.image_size, mc.num_classes):
        raise UserInputError(f"--data {spec} has {dataset.channels}×{dataset.image_size}×{dataset.image_size} images "
                             f"in {dataset.num_classes} classes; the run was trained on {mc.in_channels}×"
                             f"{mc.image_size}×{mc.image_size} in {mc.num_classes}")
    started = time.perf_counter()
    lesion = run_lesion(trained, dataset.test, seed=args.seed, draws=args.draws)
    print(f"baseline test accuracy {lesion.baseline_acc:.3f} (chance {lesion.chance:.3f})")
    for removal in lesion.removed:
        print(f"without {removal.block:12s} {removal.acc:.3f}")
    for refused in lesion.not_removable:
        print(f"cannot remove {refused.block}: {refused.reason}")
    for point in lesion.random_k:
        print(f"{point.k:2d} random blocks removed: {point.acc_mean:.3f} ± {point.acc_std:.3f}")
    if args.json:
        print(json.dumps({**lesion.to_dict(), "model": mc.name, "options": mc.options, "data": spec,
                          "test_images": len(dataset.test), "seconds": time.perf_counter() - started}))
