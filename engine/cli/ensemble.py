"""`ensemble`: train k members on one data split and compare them with their soft and hard votes.

    python -m engine ensemble --data digits --model tinyvgg --members 5 --epochs 10 --seed 0 --json
    python -m engine ensemble --data shapes --image-size 16 --model tinyvgg --model mlp --members 4 --json

Members get seeds S+1…S+k and cycle through the --model names; the data split is the one of seed
S. One line per finished member, then one JSON object: members (test accuracies), soft_vote,
hard_vote, vs_k (the first k members' votes), seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from engine.cli.common import load_data
from engine.data.subsample import subsample
from engine.job_messages import Progress
from engine.training.config import TrainConfig
from engine.training.ensembles import MemberResult, run_ensemble

HELP = "train an ensemble and compare its members with soft and hard voting"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="digits", help="a data-set name, or a zip/folder of class folders")
    parser.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    parser.add_argument("--model", action="append", default=[], metavar="NAME",
                        help="a member architecture; repeat for several (members cycle through them)")
    parser.add_argument("--members", type=int, default=5, help="k, the number of members")
    parser.add_argument("--epochs", type=int, help="default: the data set's recipe")
    parser.add_argument("--per-class", type=int, help="keep this many training images per class")
    parser.add_argument("--seed", type=int, default=0, help="S: the data split; members get S+1…S+k")
    parser.add_argument("--json", action="store_true", help="print a JSON object last")


def _print_event(event) -> None:
    if isinstance(event, MemberResult):
        print(f"member {event.index + 1}: {event.name}  test acc {event.test_acc:.3f}  {event.seconds:.1f} s",
              flush=True)
    elif isinstance(event, Progress) and "Left out" in event.message:
        print(event.message, flush=True)


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    recipe = {"epochs": args.epochs} if args.epochs is not None else {}
    names = args.model or [TrainConfig.for_data(args.data).model]
    config = TrainConfig.for_data(args.data, image_size=args.image_size, model=names[0], seed=args.seed, **recipe)
    dataset = load_data(args.data, args.image_size, args.seed)
    if args.per_class is not None:
        dataset = subsample(dataset, per_class=args.per_class, seed=args.seed)
    if config.batch_size > len(dataset.train):  # --per-class 2 leaves fewer images than a batch
        config = dataclasses.replace(config, batch_size=len(dataset.train))
    results, summary = run_ensemble(config, dataset, model_names=names, members=args.members,
                                    on_event=_print_event)
    print(f"soft vote {summary.soft_vote:.3f}  hard vote {summary.hard_vote:.3f}  "
          f"best member {max(summary.member_acc):.3f}", flush=True)
    if args.json:
        print(json.dumps({
            "members": [{"name": r.name, "model": r.model, "seed": r.seed, "test_acc": r.test_acc} for r in results],
            "soft_vote": summary.soft_vote, "hard_vote": summary.hard_vote, "vs_k": summary.vs_k,
            "disagreements": len(summary.disagreements), "seconds": time.perf_counter() - started}))
