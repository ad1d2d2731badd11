"""`tune`: search hyperparameters on the validation split, then retrain the best and test it once.

    python -m engine tune --data digits --model mlp --method tpe --trials 20 --epochs 5 --seed 0 --json
    python -m engine tune --data digits --model linear --method grid --trials 9 \
        --space lr=1e-4:1e-1:log --space batch_size=32,64,128
    python -m engine tune --data digits --model mlp --method random --folds 5   # + 5-fold CV of the best

A range is `name=low:high` (`:log` for a log scale), a list `name=a,b,c`. Without --space: lr on a
log scale, batch size, and dropout (or weight decay for a model without dropout). For grid, --trials
caps the grid. One line per trial, then one JSON object with trials, best, test_acc and seconds.
"""

from __future__ import annotations

import argparse
import ast
import json

from engine.cli.common import load_data, parse_option
from engine.errors import UserInputError
from engine.training import crossval, search_space, tuning
from engine.training.config import TrainConfig
from engine.training.optimizers import optimizer_names, schedule_names

HELP = "search hyperparameters (grid, random, TPE) on the validation split; test the best once"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    recipe = "default: the data set's recipe"
    parser.add_argument("--data", default="digits", help="a data-set name, or a zip/folder of class folders")
    parser.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    parser.add_argument("--model", help=recipe)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a fixed model option")
    parser.add_argument("--optimizer", choices=optimizer_names(), help=recipe)
    parser.add_argument("--lr", type=float, help=f"when lr is not searched; {recipe}")
    parser.add_argument("--batch-size", type=int, help=f"when batch_size is not searched; {recipe}")
    parser.add_argument("--schedule", choices=schedule_names(), help=recipe)
    parser.add_argument("--method", default="tpe", choices=tuning.method_names())
    parser.add_argument("--trials", type=int, default=20, help="trials to run (for grid: at most this many)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial")
    parser.add_argument("--space", action="append", default=[], metavar="NAME=LOW:HIGH[:log] | NAME=A,B,C",
                        help=f"a searched hyperparameter: {', '.join(search_space.hyperparameter_names())}")
    parser.add_argument("--no-prune", action="store_true", help="run every trial to its last epoch")
    parser.add_argument("--folds", type=int, default=0, help="then k-fold cross-validate the best; 0 = off")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's and every trial's seed")
    parser.add_argument("--json", action="store_true", help="print a JSON object last")


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a name, e.g. an augmentation preset


def space_entry(text: str) -> tuple[str, dict]:
    """`lr=1e-4:1e-1:log` → ("lr", {"low": 1e-4, "high": 1e-1, "log": True}); `bs=32,64` → choices."""
    name, equals, spec = text.partition("=")
    if not equals or not spec:
        raise UserInputError(f"--space must look like name=low:high[:log] or name=a,b,c; got {text!r}")
    parts = spec.split(":")
    if len(parts) == 1:
        return name.strip(), {"choices": [_value(v.strip()) for v in spec.split(",") if v.strip()]}
    if len(parts) > 3 or (len(parts) == 3 and parts[2].strip() != "log"):
        raise UserInputError(f"--space {name}: a range is low:high or low:high:log; got {spec!r}")
    return name.strip(), {"low": _value(parts[0].strip()), "high": _value(parts[1].strip()), "log": len(parts) == 3}


def base_config(args: argparse.Namespace) -> TrainConfig:
    recipe = {name: getattr(args, name) for name in ("model", "optimizer", "lr", "batch_size", "schedule")
              if getattr(args, name) is not None}
    return TrainConfig.for_data(args.data, image_size=args.image_size, epochs=args.epochs, seed=args.seed,
                                model_options=dict(parse_option(o) for o in args.option), **recipe)


def _print_trial(result: tuning.TrialResult) -> None:
    params = "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.params.items())
    score = f"{result.val_acc:.3f}" if result.val_acc is not None else "  -  "
    print(f"trial {result.number:3d}  {result.state:8s} val acc {score}  {params}"
          + (f"  ({result.message})" if result.message else ""), flush=True)


def run(args: argparse.Namespace) -> None:
    base = base_config(args)
    space = dict(space_entry(s) for s in args.space) or search_space.default_space(base.model)
    dataset = load_data(args.data, args.image_size, args.seed)
    if args.folds:
        crossval.check_folds(dataset, args.folds)  # refuse a bad k before searching
    plan = tuning.plan_search(dataset, base, space, method=args.method, trials=args.trials, seed=args.seed,
                              prune=not args.no_prune)
    print(f"{tuning.method_info(plan.method).title}: {plan.trials} trials of {base.model} × {base.epochs} epochs, "
          f"about {plan.estimate_s:.0f} s at most" + (f" ({plan.note})" if plan.note else ""), flush=True)
    trials, done = [], None
    for event in tuning.search(lambda: False, plan=plan, dataset=dataset):
        if isinstance(event, tuning.TrialResult):
            trials.append(event)
            _print_trial(event)
        elif isinstance(event, tuning.SearchDone):
            done = event
    cv = None
    if args.folds and done.best is not None:
        config = search_space.configure(base, done.best.params)
        cv = next(e for e in crossval.cross_validate(lambda: False, dataset=dataset, config=config, folds=args.folds)
                  if isinstance(e, crossval.CrossValidated))
        print(f"{args.folds}-fold cross-validation of the best: {cv.mean:.3f} ± {cv.std or 0:.3f}", flush=True)
    if done.best is None:
        print("no trial completed: every one failed (see above)", flush=True)
    else:
        print(f"best: trial {done.best.number}, val acc {done.best.val_acc:.3f}; retrained, test acc "
              f"{done.test_acc:.3f}", flush=True)
    if args.json:
        print(json.dumps({
            "trials": [t.to_dict() for t in trials],
            "best": {"params": done.best.params, "val_acc": done.best.val_acc} if done.best else None,
            "test_acc": done.test_acc, "retrained_val_acc": done.retrained_val_acc, "seconds": done.seconds,
            "importances": done.importances, "method": plan.method, "planned_trials": plan.trials,
            "estimate_s": plan.estimate_s, "note": plan.note,
            "cv": {"accuracies": cv.accuracies, "mean": cv.mean, "std": cv.std} if cv else None,
            "config": base.to_dict()}))
