"""The lesion study (Veit, Wilber & Belongie 2016, fig. 3): test accuracy of a trained resnet_small of depth 20
with one block deleted at a time, against the plain net of the same depth.

Both nets train with the data set's recipe (engine.training.presets: on shapes Adam, η = 5e-3,
one-cycle, batch 64, 8 epochs), the same seed and the same initial branch weights. A residual
block loses its branch F (its shortcut stays, projections included); a plain block is replaced by
the identity where its output has its input's shape (stage2.0 and stage3.0 cannot go).
Veit et al. saw the residual net lose little and the plain net fall to chance.

    python benchmarks/lesion.py                         # shapes 32×32, depth 20 (≈ 10–20 min on 2 quiet CPUs)
    python benchmarks/lesion.py --draws 10              # also k random blocks, 10 draws per k
    python benchmarks/lesion.py --preact                # pre-activation blocks: a pure identity path
    python benchmarks/lesion.py --quick                 # shapes 16×16, 2,000 images, 2 epochs
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import Contention, setup

THREADS = setup()

from engine import data  # noqa: E402
from engine.training.config import TrainConfig
from engine.training.residual import run_lesion  # noqa: E402
from engine.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--num-images", type=int, default=None, help="shapes only: images generated")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=None, help="default: the data set's recipe")
    parser.add_argument("--draws", type=int, default=0, help="random subsets per k; 0 = single blocks only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preact", action="store_true", help="pre-activation blocks (He et al. 2016b)")
    parser.add_argument("--quick", action="store_true", help="16×16, 2,000 images, 2 epochs")
    args = parser.parse_args()
    if args.quick:
        args.image_size, args.num_images, args.epochs = 16, 2000, 2
    options = {"num_images": args.num_images} if args.num_images else {}
    dataset = data.load(args.data, image_size=args.image_size, seed=args.seed, **options)
    print(f"{THREADS} threads; {dataset.title} at {dataset.image_size}×{dataset.image_size}: "
          f"{len(dataset.train)} train, {len(dataset.test)} test images; chance {1 / dataset.num_classes:.1%}")
    lesions = {}
    for kind, skip in (("residual", True), ("plain", False)):
        overrides = {"epochs": args.epochs} if args.epochs else {}
        config = TrainConfig.for_data(args.data, image_size=args.image_size, model="resnet_small", seed=args.seed,
                                      model_options={"depth": args.depth, "skip": skip, "preact": args.preact}, **overrides)
        with Contention() as busy:
            started = time.perf_counter()
            run = Trainer(config, dataset).fit()
            trained = time.perf_counter() - started
            lesion = run_lesion(run, dataset.test, seed=args.seed, draws=args.draws)
            lesioned = time.perf_counter() - started - trained
        lesions[kind] = lesion
        print(f"\n{kind}-{args.depth}: {config.optimizer} η={config.lr:g} {config.schedule}, {config.epochs} epochs; "
              f"final training loss {run.history.train_loss[-1]:.4f}; trained {trained:.0f} s, lesions "
              f"{lesioned:.0f} s; {busy.describe()}")
        print(f"  intact: {lesion.baseline_acc:.1%}")
        for removal in lesion.removed:
            print(f"  without {removal.block:9s} {removal.acc:6.1%}  ({removal.acc - lesion.baseline_acc:+.1%})")
        for refused in lesion.not_removable:
            print(f"  cannot remove {refused.block}: {refused.reason}")
        for point in lesion.random_k:
            print(f"  {point.k} random blocks removed: {point.acc_mean:.1%} ± {point.acc_std:.1%}")
    print()
    for kind, lesion in lesions.items():
        accs = [r.acc for r in lesion.removed]
        print(f"{kind:8s}: intact {lesion.baseline_acc:.1%}, one block deleted: median {statistics.median(accs):.1%}, "
              f"worst {min(accs):.1%}, best {max(accs):.1%} over {len(accs)} blocks")


if __name__ == "__main__":
    main()
