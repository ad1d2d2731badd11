"""Command line: `python -m engine train|datasets|models`.

    python -m engine train --data digits --model tinyvgg --epochs 10 --seed 0 --json
    python -m engine train --data path/to/my_images.zip --model resnet_small --option depth=14
    python -m engine train --data shapes --l1 1e-4 --l1-mode proximal --no-test --per-class 50 --json

Model, optimizer, lr, batch size, epochs and schedule default to the data set's recipe
(engine.training.presets). One line per epoch, then one JSON object with test_acc, seconds,
images_per_s and epochs. Bad arguments print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from engine import data, models
from engine.data import augment
from engine.data.subsample import subsample
from engine.training import losses
from engine.device import configure_threads
from engine.errors import UserInputError
from engine.training.optimizers import optimizer_names, schedule_names
from engine.training.penalties import L1_MODES
from engine.training.runs import save_run
from engine.training.targets import MIXINGS
from engine.training.trainer import Done, EpochEnd, TrainConfig, Trainer, Warned


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


def _number_option(flag: str, text: str) -> tuple[str, float]:
    """`prefix=number` for --lr-factor and --head."""
    key, value = _parse_option(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserInputError(f"{flag} must look like name=number; got {text!r}")
    return key, float(value)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("datasets", help="list the data sets")
    commands.add_parser("models", help="list the models and their options")
    train = commands.add_parser("train", help="train a model and report its test accuracy")
    defaults = TrainConfig()
    train.add_argument("--data", default=defaults.data, help="a data-set name, or a zip/folder of class folders")
    train.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    recipe = "default: the data set's recipe"
    train.add_argument("--model", help=recipe)
    train.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a model option")
    train.add_argument("--loss", default=defaults.loss, choices=losses.names())
    train.add_argument("--label-smoothing", type=float, default=0.0, help="cross_entropy only")
    train.add_argument("--optimizer", choices=optimizer_names(), help=recipe)
    train.add_argument("--lr", type=float, help=recipe)
    train.add_argument("--momentum", type=float, default=defaults.momentum)
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--batch-size", type=int, help=recipe)
    train.add_argument("--epochs", type=int, help=recipe)
    train.add_argument("--schedule", choices=schedule_names(), help=recipe)
    train.add_argument("--plateau-patience", type=int, default=defaults.plateau_patience,
                       help="reduce_on_plateau: stalled epochs before lr ÷ 10")
    train.add_argument("--patience", type=int, default=defaults.patience, help="early stopping; 0 = off")
    train.add_argument("--l2", type=float, default=defaults.l2, help="λ of λ/2 ‖w‖² in the loss")
    train.add_argument("--l1", type=float, default=defaults.l1, help="λ of λ ‖w‖₁")
    train.add_argument("--l1-mode", default=defaults.l1_mode, choices=L1_MODES)
    train.add_argument("--elastic", type=float, default=defaults.elastic, help="α of the elastic net")
    train.add_argument("--l1-ratio", type=float, default=defaults.l1_ratio, help="ρ of the elastic net")
    train.add_argument("--penalize-all", action="store_true", help="penalties on biases and norm parameters too")
    train.add_argument("--freeze", action="append", default=[], metavar="PREFIX", help="a module to freeze")
    train.add_argument("--lr-factor", action="append", default=[], metavar="PREFIX=FACTOR",
                       help="multiply the lr of a module, e.g. fc=10")
    train.add_argument("--head", action="append", default=[], metavar="NAME=WEIGHT",
                       help="an extra classifier head with loss weight λ")
    train.add_argument("--mixing", default=defaults.mixing, choices=MIXINGS)
    train.add_argument("--mixing-alpha", type=float, default=defaults.mixing_alpha)
    train.add_argument("--no-test", action="store_true", help="validation only: never read the test split")
    train.add_argument("--per-class", type=int, help="keep this many training images per class")
    train.add_argument("--imbalance-ratio", type=float, help="first class ÷ last class training images")
    train.add_argument("--report-every", type=int, default=defaults.report_every,
                       help="steps between loss reports; 0 = about 50 per epoch")
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


def _config(args: argparse.Namespace) -> TrainConfig:
    recipe = {name: getattr(args, name) for name in ("model", "optimizer", "lr", "batch_size", "epochs", "schedule")
              if getattr(args, name) is not None}
    return TrainConfig.for_data(
        args.data, image_size=args.image_size, model_options=dict(_parse_option(o) for o in args.option),
        init=args.init, loss=args.loss, momentum=args.momentum, weight_decay=args.weight_decay,
        loss_options={"label_smoothing": args.label_smoothing} if args.label_smoothing else {},
        plateau_patience=args.plateau_patience, patience=args.patience, augmentation=args.augmentation,
        seed=args.seed, l2=args.l2, l1=args.l1, l1_mode=args.l1_mode, elastic=args.elastic,
        l1_ratio=args.l1_ratio, penalize_all=args.penalize_all, freeze=list(args.freeze),
        lr_factors=dict(_number_option("--lr-factor", o) for o in args.lr_factor),
        heads={name: {"weight": weight} for name, weight in (_number_option("--head", o) for o in args.head)},
        mixing=args.mixing, mixing_alpha=args.mixing_alpha, evaluate_test=not args.no_test,
        report_every=args.report_every, **recipe)


def _train(args: argparse.Namespace) -> None:
    config = _config(args)
    dataset = _load_data(args.data, args.image_size, args.seed)
    if args.per_class is not None or args.imbalance_ratio is not None:
        dataset = subsample(dataset, per_class=args.per_class, imbalance_ratio=args.imbalance_ratio, seed=args.seed)
    trainer = Trainer(config, dataset)
    for skipped in dataset.skipped:
        print(f"skipped {skipped}", file=sys.stderr)
    done = None
    for event in trainer.run():
        if isinstance(event, EpochEnd):
            print(f"epoch {event.epoch:3d}/{event.epochs}  train loss {event.train_loss:.4f} "
                  f"acc {event.train_acc:.3f}  val loss {event.val_loss:.4f} acc {event.val_acc:.3f}  "
                  f"lr {event.lr:.2e}  {event.images_per_s:,.0f} img/s", flush=True)
        elif isinstance(event, Warned):
            print(f"warning: {event.message}", flush=True)
        elif event.kind in ("diverged", "stopped"):
            print(getattr(event, "message", None) or event.reason, flush=True)
        elif isinstance(event, Done):
            done = event
    if args.save:
        args.save.write_bytes(save_run(trainer.to_run()))
    history = trainer.history
    if args.json and done is not None:
        last = {name: values[-1] for name, values in history.terms.items()}
        print(json.dumps({"test_acc": done.test_acc, "test_loss": done.test_loss, "seconds": done.seconds,
                          "images_per_s": done.images_per_s, "epochs": done.epochs,
                          "best_epoch": done.best_epoch, "diverged_at": history.diverged_at,
                          "train_acc": history.train_acc[-1], "val_acc": history.val_acc[-1],
                          "terms": last, "weight_norm": history.weight_norm[-1],
                          "zero_fraction": history.zero_fraction[-1], "warnings": history.warnings,
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
