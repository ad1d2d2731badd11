"""`train`: train a model and report its test accuracy.

    python -m engine train --data digits --model tinyvgg --epochs 10 --seed 0 --json
    python -m engine train --data path/to/my_images.zip --model resnet_small --option depth=14
    python -m engine train --data shapes --l1 1e-4 --l1-mode proximal --no-test --per-class 50 --json
    python -m engine train --data digits --optimizer adamw --weight-decay 0.5 --per-class 20 --json
    python -m engine train --data digits --per-class 100 --imbalance-ratio 20 --class-weights balanced
    python -m engine train --data shapes --augment flip --augment crop:scale=0.6 --augment mixup:alpha=0.2

Model, optimizer, lr, batch size, epochs and schedule default to the data set's recipe
(engine.training.presets). One line per epoch, then one JSON object with test_acc, seconds,
images_per_s and epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from engine import models
from engine.cli.common import load_data, number_option, parse_option
from engine.data import augment
from engine.data.subsample import class_counts, subsample
from engine.errors import UserInputError
from engine.training import losses
from engine.training.config import TrainConfig
from engine.training.events import Done, EpochEnd, Warned
from engine.training.losses import balanced_class_weights
from engine.training.optimizers import optimizer_names, schedule_names
from engine.training.penalties import L1_MODES
from engine.training.runs import save_run
from engine.training.targets import MIXINGS
from engine.training.trainer import Trainer

HELP = "train a model and report its test accuracy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--data", default=defaults.data, help="a data-set name, or a zip/folder of class folders")
    parser.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    recipe = "default: the data set's recipe"
    parser.add_argument("--model", help=recipe)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a model option")
    parser.add_argument("--loss", default=defaults.loss, choices=losses.names())
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="cross_entropy only")
    parser.add_argument("--class-weights", metavar="balanced|W1,W2,…",
                        help="cross_entropy only: each class's loss weight; balanced = n / (K·n_c) of the "
                             "training images (after --per-class/--imbalance-ratio)")
    parser.add_argument("--optimizer", choices=optimizer_names(), help=recipe)
    parser.add_argument("--lr", type=float, help=recipe)
    parser.add_argument("--momentum", type=float, default=defaults.momentum)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--batch-size", type=int, help=recipe)
    parser.add_argument("--epochs", type=int, help=recipe)
    parser.add_argument("--schedule", choices=schedule_names(), help=recipe)
    parser.add_argument("--plateau-patience", type=int, default=defaults.plateau_patience,
                       help="reduce_on_plateau: stalled epochs before lr ÷ 10")
    parser.add_argument("--patience", type=int, default=defaults.patience, help="early stopping; 0 = off")
    parser.add_argument("--l2", type=float, default=defaults.l2, help="λ of λ/2 ‖w‖² in the loss")
    parser.add_argument("--l1", type=float, default=defaults.l1, help="λ of λ ‖w‖₁")
    parser.add_argument("--l1-mode", default=defaults.l1_mode, choices=L1_MODES)
    parser.add_argument("--elastic", type=float, default=defaults.elastic, help="α of the elastic net")
    parser.add_argument("--l1-ratio", type=float, default=defaults.l1_ratio, help="ρ of the elastic net")
    parser.add_argument("--penalize-all", action="store_true", help="penalties on biases and norm parameters too")
    parser.add_argument("--freeze", action="append", default=[], metavar="PREFIX", help="a module to freeze")
    parser.add_argument("--lr-factor", action="append", default=[], metavar="PREFIX=FACTOR",
                       help="multiply the lr of a module, e.g. fc=10")
    parser.add_argument("--head", action="append", default=[], metavar="NAME=WEIGHT",
                       help="an extra classifier head with loss weight λ")
    parser.add_argument("--mixing", default=defaults.mixing, choices=MIXINGS)
    parser.add_argument("--mixing-alpha", type=float, default=defaults.mixing_alpha)
    parser.add_argument("--no-test", action="store_true", help="validation only: never read the test split")
    parser.add_argument("--per-class", type=int, help="keep this many training images per class")
    parser.add_argument("--imbalance-ratio", type=float, help="first class ÷ last class training images")
    parser.add_argument("--mixed-precision", action="store_true", help="bf16 autocast (CUDA GPUs only)")
    parser.add_argument("--report-every", type=int, default=defaults.report_every,
                       help="steps between loss reports; 0 = about 50 per epoch")
    parser.add_argument("--augmentation", default=defaults.augmentation, choices=augment.names(),
                        help="a preset pipeline; or build one with --augment")
    parser.add_argument("--augment", action="append", default=[], metavar="STEP[:KEY=VALUE,…]",
                        help="one augmentation step, in order (repeat the flag): "
                             f"{', '.join(augment.step_names())}; e.g. crop:scale=0.6,ratio=1.5")
    parser.add_argument("--init", default=defaults.init, choices=models.init_names())
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--save", type=Path, help="write the trained Run to this file")
    parser.add_argument("--json", action="store_true", help="print a JSON object last")


def config_from(args: argparse.Namespace) -> TrainConfig:
    recipe = {name: getattr(args, name) for name in ("model", "optimizer", "lr", "batch_size", "epochs", "schedule")
              if getattr(args, name) is not None}
    return TrainConfig.for_data(
        args.data, image_size=args.image_size, model_options=dict(parse_option(o) for o in args.option),
        init=args.init, loss=args.loss, momentum=args.momentum, weight_decay=args.weight_decay,
        loss_options={"label_smoothing": args.label_smoothing} if args.label_smoothing else {},
        plateau_patience=args.plateau_patience, patience=args.patience, augmentation=_augmentation(args),
        seed=args.seed, l2=args.l2, l1=args.l1, l1_mode=args.l1_mode, elastic=args.elastic,
        l1_ratio=args.l1_ratio, penalize_all=args.penalize_all, freeze=list(args.freeze),
        lr_factors=dict(number_option("--lr-factor", o) for o in args.lr_factor),
        heads={name: {"weight": weight} for name, weight in (number_option("--head", o) for o in args.head)},
        mixing=args.mixing, mixing_alpha=args.mixing_alpha, evaluate_test=not args.no_test,
        report_every=args.report_every, mixed_precision=args.mixed_precision, **recipe)


def _augmentation(args: argparse.Namespace) -> str | list[dict]:
    """--augmentation's preset name, or the pipeline of the --augment steps (each checked)."""
    if not args.augment:
        return args.augmentation
    if args.augmentation != TrainConfig().augmentation:
        raise UserInputError("give either --augmentation PRESET or --augment steps, not both")
    return augment.resolve([augment.parse_step(step) for step in args.augment])


def _class_weights(text: str, dataset) -> list[float]:
    """--class-weights: "balanced" from the training split's class counts, or one number per class."""
    if text == "balanced":
        return balanced_class_weights(class_counts(dataset.train.y, dataset.num_classes))
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError as error:
        raise UserInputError("--class-weights must be 'balanced' or numbers separated by commas; "
                             f"got {text!r}") from error
    if len(weights) != dataset.num_classes:
        raise UserInputError(f"--class-weights gives {len(weights)} weights for the {dataset.num_classes} classes "
                             f"of {dataset.title}; give one per class")
    return weights


def run(args: argparse.Namespace) -> None:
    config = config_from(args)
    dataset = load_data(args.data, args.image_size, args.seed)
    if args.per_class is not None or args.imbalance_ratio is not None:
        dataset = subsample(dataset, per_class=args.per_class, imbalance_ratio=args.imbalance_ratio, seed=args.seed)
    if args.class_weights:
        config = dataclasses.replace(config, loss_options={
            **config.loss_options, "class_weights": _class_weights(args.class_weights, dataset)})
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
