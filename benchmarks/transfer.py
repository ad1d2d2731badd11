"""Transfer learning: the speed of a linear probe, and the few-shot curves of a shapes-trained Tiny VGG.

1. Linear probe: features of 1,000 images from a trained small CNN (every layer and pooling the
   source offers), then the logistic-regression probe on the best of them; target ≤ 5 s together.
2. Few-shot curves: Tiny VGG trained on shapes, transferred to faces and to digits; test accuracy
   of pixels+linear, features+linear, fine-tuned and from scratch at 1, 2, 5, 10, 20, 50 and all
   training images per class; target ≤ 2 min per curve (the source's training not counted).

    python benchmarks/transfer.py [--quick] [--targets faces,digits] [--epochs 5]

--quick trains the source on 2,000 shapes and draws the curves at 1, 5 and 20 per class.
"""

from __future__ import annotations

import argparse
import time

from _timing import Contention, setup

THREADS = setup()

from engine import data  # noqa: E402
from engine.training import probe, sources, transfer  # noqa: E402
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer

PROBE_IMAGES = 1000
PROBE_TARGET_S = 5.0
CURVE_TARGET_S = 120.0


def train_source(num_images: int) -> sources.Source:
    start = time.perf_counter()
    shapes = data.load("shapes", num_images=num_images, seed=0)
    run = Trainer(TrainConfig.for_data("shapes", seed=0), shapes).fit()
    run.name = "tinyvgg on shapes"
    print(f"source: tinyvgg on {len(shapes.train):,} shapes, test accuracy {run.history.test_acc:.1%}, "
          f"{time.perf_counter() - start:.0f} s")
    return sources.from_run(run)


def probe_speed(source: sources.Source) -> None:
    digits = data.load("digits", seed=0)
    fitted, _ = sources.fit_to_source(digits, source)
    x, y = fitted.train.x[:PROBE_IMAGES], fitted.train.y[:PROBE_IMAGES]
    options = probe.feature_options(source)
    probe._CACHE.clear()  # time the forward passes, not the cache
    with Contention() as busy:
        start = time.perf_counter()
        feats = probe.features(source, x, options)
        extracted = time.perf_counter() - start
        widest = max(options, key=lambda f: f.width)
        start = time.perf_counter()
        probe.fit_probe(feats[widest], y)
        fitted_s = time.perf_counter() - start
    total = extracted + fitted_s
    print(f"\nlinear probe on {len(x):,} digits ({THREADS} threads; {busy.describe()}):")
    print(f"  features for {len(options)} layer/pooling choices: {extracted:.2f} s")
    print(f"  logistic regression on the widest ({widest.label}, {widest.width:,} numbers): {fitted_s:.2f} s")
    print(f"  together {total:.2f} s (target ≤ {PROBE_TARGET_S:.0f} s): {'ok' if total <= PROBE_TARGET_S else 'SLOW'}")


def curve(source: sources.Source, target: str, shots: tuple[int, ...], epochs: int) -> None:
    dataset = data.load(target, seed=0)
    points: dict[str, dict[int, float]] = {}
    with Contention() as busy:
        start = time.perf_counter()
        for event in transfer.few_shot_curve(source=source, target=dataset, shots=shots, epochs=epochs, seed=0):
            if isinstance(event, transfer.CurvePoint):
                points.setdefault(event.method, {})[event.per_class] = event.test_acc
            elif isinstance(event, transfer.Note):
                print(f"  note: {event.message}")
        seconds = time.perf_counter() - start
    sizes = sorted({k for p in points.values() for k in p})
    print(f"\nshapes → {target}, {epochs} epochs per training ({busy.describe()}):")
    print("  images per class " + "".join(f"{k:>7d}" for k in sizes))
    for method, accs in points.items():
        print(f"  {method:17s}" + "".join(f"{accs[k]:7.1%}" for k in sizes))
    print(f"  {seconds:.0f} s (target ≤ {CURVE_TARGET_S:.0f} s): {'ok' if seconds <= CURVE_TARGET_S else 'SLOW'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller source and three curve points")
    parser.add_argument("--targets", default="faces,digits")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    source = train_source(2000 if args.quick else 12000)
    probe_speed(source)
    shots = (1, 5, 20) if args.quick else transfer.SHOTS
    for target in args.targets.split(","):
        curve(source, target, shots, args.epochs)


if __name__ == "__main__":
    main()
