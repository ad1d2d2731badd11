"""The degradation experiment (He et al. 2016, fig. 1 and 6): final *training* loss of plain and residual
resnet_small nets of growing depth, all trained with one recipe on one bundled data set.

Reproduced means: the deepest plain net ends with a higher training loss than every shallower plain
net, while the deepest residual net ends no higher than the shallowest. The recipe is
engine.training.residual.DegradationRecipe (the Residual learning page's default); every net of
one seed starts from the same branch weights, plain or residual.

    python benchmarks/degradation.py                      # digits, depths 8 20 32 44, seed 0 (≈ 1 min quiet)
    python benchmarks/degradation.py --seeds 0 1 2        # is it robust to the seed?
    python benchmarks/degradation.py --quick              # depths 8 and 32, 3 epochs: does the script work
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from _timing import Contention, setup

THREADS = setup()

from engine import data  # noqa: E402
from engine.training.events import EpochEnd
from engine.training.residual import DegradationRecipe, degradation, degradation_experiment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    recipe = DegradationRecipe()
    parser.add_argument("--data", default="digits")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--depths", type=int, nargs="+", default=list(recipe.depths))
    parser.add_argument("--epochs", type=int, default=recipe.epochs)
    parser.add_argument("--lr", type=float, default=recipe.lr)
    parser.add_argument("--optimizer", default=recipe.optimizer)
    parser.add_argument("--schedule", default=recipe.schedule)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true", help="depths 8 and 32, 3 epochs")
    args = parser.parse_args()
    if args.quick:
        args.depths, args.epochs = [8, 32], 3
    print(f"{THREADS} threads; data {args.data}")
    for seed in args.seeds:
        dataset = data.load(args.data, image_size=args.image_size, seed=seed)
        chosen = dataclasses.replace(recipe, depths=tuple(args.depths), epochs=args.epochs, lr=args.lr,
                                     optimizer=args.optimizer, schedule=args.schedule, seed=seed)
        print(f"\nrecipe: {chosen.describe()}; {len(dataset.train)} training images")
        seconds: dict[str, float] = {}
        last = {}
        with Contention() as busy:
            started = time.perf_counter()
            for name, event, run in degradation_experiment(lambda: False, recipe=chosen, dataset=dataset):
                if isinstance(event, EpochEnd):
                    seconds[name] = seconds.get(name, 0.0) + event.seconds
                if run is not None:
                    last[name] = run
            total = time.perf_counter() - started
        result = degradation(last.values())
        print(f"{'depth':>5}  {'plain loss':>10} {'acc':>6} {'s':>5}   {'residual loss':>13} {'acc':>6} {'s':>5}")
        for depth in sorted(result.plain):
            p, r = last[f"plain-{depth}"].history, last[f"residual-{depth}"].history
            print(f"{depth:>5}  {p.train_loss[-1]:>10.4f} {p.train_acc[-1]:>6.3f} {seconds[f'plain-{depth}']:>5.1f}"
                  f"   {r.train_loss[-1]:>13.4f} {r.train_acc[-1]:>6.3f} {seconds[f'residual-{depth}']:>5.1f}")
        print(f"plain nets degrade with depth: {result.plain_degrades}; residual nets hold: {result.residual_holds}; "
              f"reproduced: {result.reproduced}")
        print(f"all {len(last)} nets: {total:.0f} s wall ({sum(seconds.values()):.0f} s training); {busy.describe()}")


if __name__ == "__main__":
    main()
