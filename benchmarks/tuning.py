"""Hyperparameter search on digits: a 20-trial TPE search's time and best validation accuracy, beside
random and grid search with the same budget, and the time estimate the search planned with.

Each method runs the page's default space (lr 1e-4…1e-1 on a log scale, dropout 0…0.5, batch size
32/64/128) with the median pruner, one trial after another, then retrains the best and tests it.
Prints per method and seed: seconds, the estimate (an upper bound: pruning not counted), trials
complete/pruned, best validation accuracy and the retrained best's test accuracy.

    python benchmarks/tuning.py [--model mlp] [--epochs 4] [--trials 20] [--seeds 0 1 2] [--quick]

References:
    Bergstra & Bengio 2012, "Random Search for Hyper-Parameter Optimization", JMLR 13.
    Bergstra et al. 2011, "Algorithms for Hyper-Parameter Optimization" (TPE), NeurIPS.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import Contention, setup

THREADS = setup()

from engine import data  # noqa: E402
from engine.training import search_space, tuning  # noqa: E402
from engine.training.config import TrainConfig


def run(dataset, model: str, method: str, *, trials: int, epochs: int, seed: int) -> dict:
    base = TrainConfig.for_data("digits", model=model, epochs=epochs, seed=seed)
    started = time.perf_counter()
    plan = tuning.plan_search(dataset, base, search_space.default_space(model), method=method, trials=trials,
                              seed=seed)
    planned = time.perf_counter() - started
    events = list(tuning.search(lambda: False, plan=plan, dataset=dataset))
    done = events[-1]
    states = [e.state for e in events if isinstance(e, tuning.TrialResult)]
    return {"method": method, "seed": seed, "trials": plan.trials, "seconds": done.seconds, "plan_s": planned,
            "estimate_s": plan.estimate_s, "complete": states.count("complete"), "pruned": states.count("pruned"),
            "best_val": done.best.val_acc, "test": done.test_acc, "importances": done.importances}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="one seed, TPE only: checks the script works")
    args = parser.parse_args()
    seeds, methods = ([0], ["tpe"]) if args.quick else (args.seeds, ["tpe", "random", "grid"])
    dataset = data.load("digits", seed=0)
    print(f"digits, {args.model}, {args.epochs} epochs a trial, {args.trials} trials, median pruner, "
          f"{THREADS} torch threads")
    print(f"{'method':7s} {'seed':>4s} {'trials':>6s} {'done/pruned':>11s} {'seconds':>8s} {'estimate':>8s} "
          f"{'best val':>8s} {'test':>6s}  top importance")
    rows = []
    with Contention() as contention:
        for seed in seeds:
            for method in methods:
                row = run(dataset, args.model, method, trials=args.trials, epochs=args.epochs, seed=seed)
                rows.append(row)
                top = max(row["importances"], key=row["importances"].get) if row["importances"] else "-"
                print(f"{method:7s} {seed:4d} {row['trials']:6d} {row['complete']:5d}/{row['pruned']:<5d} "
                      f"{row['seconds']:8.1f} {row['estimate_s']:8.1f} {row['best_val']:8.3f} {row['test']:6.3f}"
                      f"  {top}", flush=True)
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        seconds, best, test = (statistics.median(r[k] for r in mine) for k in ("seconds", "best_val", "test"))
        print(f"{method}: median {seconds:.1f} s, best validation accuracy {best:.3f}, test {test:.3f}")
    print(contention.describe())


if __name__ == "__main__":
    main()
