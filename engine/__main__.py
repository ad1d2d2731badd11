"""Command line: `python -m engine train|datasets|models`.

    python -m engine train --data digits --model tinyvgg --epochs 10 --seed 0 --json
    python -m engine train --data path/to/my_images.zip --model resnet_small --option depth=14

One line per epoch, then one JSON object with test_acc, seconds, images_per_s and epochs.
Bad arguments print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from engine import data, models
from engine.data import augment
from engine.training import losses
from engine.device import configure_threads
from engine.errors import UserInputError
from engine.training.optimizers import optimizer_names, schedule_names
from engine.training.runs import save_run
from engine.training.trainer import Done, EpochEnd, TrainConfig, Trainer


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit code 2, like every other bad input
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _parse_option(text: str) -> tuple[str, object]:
    """`key=value`, the value read as a Python literal when it is one (depth=14, hidden=(256,64))."""
    if "=" not in text:
        raise UserInputError(f"--option must look like key=value; got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("datasets", help="list the data sets")
    commands.add_parser("models", help="list the models and their options")
    train = commands.add_parser("train", help="train a model and report its test accuracy")
    defaults = TrainConfig()
    train.add_argument("--data", default=defaults.data, help="a data-set name, or a zip/folder of class folders")
    train.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    train.add_argument("--model", default=defaults.model)
    train.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a model option")
    train.add_argument("--loss", default=defaults.loss, choices=losses.names())
    train.add_argument("--optimizer", default=defaults.optimizer, choices=optimizer_names())
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--momentum", type=float, default=defaults.momentum)
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--schedule", default=defaults.schedule, choices=schedule_names())
    train.add_argument("--patience", type=int, default=defaults.patience, help="early stopping; 0 = off")
    train.add_argument("--augmentation", default=defaults.augmentation, choices=augment.names())
    train.add_argument("--init", default=defaults.init, choices=models.init_names())
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--save", type=Path, help="write the trained Run to this file")
    train.add_argument("--json", action="store_true", help="print a JSON object last")
    return parser


def _load_data(spec: str, image_size: int | None, seed: int) -> data.Dataset:
    path = Path(spec)
    if spec not in data.names() and (path.exists() or spec.endswith(".zip")):
        if not path.exists():
            raise UserInputError(f"--data: no such file {spec}")
        return data.load_folder(path, image_size=image_size or 32, seed=seed, name=path.stem)
    return data.load(spec, image_size=image_size, seed=seed)


def _train(args: argparse.Namespace) -> None:
    dataset = _load_data(args.data, args.image_size, args.seed)
    config = TrainConfig(
        data=args.data, image_size=args.image_size, model=args.model,
        model_options=dict(_parse_option(o) for o in args.option), init=args.init, loss=args.loss,
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        batch_size=args.batch_size, epochs=args.epochs, schedule=args.schedule, patience=args.patience,
        augmentation=args.augmentation, seed=args.seed)
    trainer = Trainer(config, dataset)
    for skipped in dataset.skipped:
        print(f"skipped {skipped}", file=sys.stderr)
    done = None
    for event in trainer.run():
        if isinstance(event, EpochEnd):
            print(f"epoch {event.epoch:3d}/{event.epochs}  train loss {event.train_loss:.4f} "
                  f"acc {event.train_acc:.3f}  val loss {event.val_loss:.4f} acc {event.val_acc:.3f}  "
                  f"lr {event.lr:.2e}  {event.images_per_s:,.0f} img/s", flush=True)
        elif event.kind in ("diverged", "stopped"):
            print(getattr(event, "message", None) or event.reason, flush=True)
        elif isinstance(event, Done):
            done = event
    if args.save:
        args.save.write_bytes(save_run(trainer.to_run()))
    if args.json and done is not None:
        print(json.dumps({"test_acc": done.test_acc, "test_loss": done.test_loss, "seconds": done.seconds,
                          "images_per_s": done.images_per_s, "epochs": done.epochs,
                          "best_epoch": done.best_epoch, "diverged_at": trainer.history.diverged_at,
                          "device": str(trainer.device), "config": config.to_dict()}))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_threads()
    try:
        if args.command == "datasets":
            for name in data.names():
                meta = data.info(name)
                print(f"{name:14s} {meta.num_images:>6,} images  {meta.channels}×{meta.native_size}×"
                      f"{meta.native_size}  {meta.num_classes:>2} classes  {meta.source:10s} {meta.title}")
        elif args.command == "models":
            for name in models.names():
                meta = models.info(name)
                options = ", ".join(f"{k}={v!r}" for k, v in meta.defaults().items()) or "no options"
                print(f"{name:14s} {meta.family:6s} {meta.title} — {options}")
        else:
            _train(args)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
