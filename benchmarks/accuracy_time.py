"""Accuracy in time: test accuracy and `Trainer.fit()` wall seconds of the Train Lab's CNN presets.

tinyvgg on digits at its native 8×8 (target ≥ 97 % test accuracy within 5 s) and on shapes at
32×32 (target ≥ 95 % within 60 s), on two CPU threads, for seeds 0, 1 and 2 (the seed fixes the
data split, the initial weights and the batch order, as the sidebar's seed does in the app).
Data loading is timed and printed apart; the first fit of the process includes oneDNN's warm-up,
as the first run in a fresh server does.

    python benchmarks/accuracy_time.py [--seeds 0 1 2] [--current]

`--current` also runs the presets these replaced, for comparison.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from _timing import QUIET_SHARE, Contention, setup

THREADS = setup()

from engine import data  # noqa: E402
from engine.device import pick_device  # noqa: E402
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer


@dataclass(frozen=True)
class Target:
    accuracy: float
    seconds: float


TARGETS = {"digits": Target(0.97, 5.0), "shapes": Target(0.95, 60.0)}
# The Train Lab presets cnn_digits and cnn_shapes (ui/train_config.py), as TrainConfigs.
PRESETS = {
    "cnn_digits": TrainConfig(data="digits", model="tinyvgg", optimizer="adam", lr=5e-3, batch_size=32,
                              epochs=20, schedule="constant"),
    "cnn_shapes": TrainConfig(data="shapes", image_size=32, model="tinyvgg", optimizer="adam", lr=5e-3,
                              batch_size=64, epochs=8, schedule="one_cycle"),
}
PREVIOUS = {
    "cnn_digits (before)": TrainConfig(data="digits", model="tinyvgg", optimizer="adam", lr=3e-3, batch_size=64,
                                       epochs=10),
    "cnn_shapes (before)": TrainConfig(data="shapes", image_size=32, model="tinyvgg", optimizer="adam", lr=3e-3,
                                       batch_size=128, epochs=6),
}


def describe(config: TrainConfig) -> str:
    return (f"{config.optimizer} lr {config.lr:g}, {config.schedule}, bs {config.batch_size}, "
            f"{config.epochs} epochs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--current", action="store_true", help="also run the presets these replaced")
    args = parser.parse_args()
    device = pick_device()
    presets = {**PRESETS, **(PREVIOUS if args.current else {})}
    print(f"{device}, {THREADS} threads")
    for label, config in presets.items():
        target = TARGETS[config.data]
        print(f"{label}: tinyvgg on {config.data} — {describe(config)}; target ≥ {target.accuracy:.0%} "
              f"in ≤ {target.seconds:.0f} s")
        for seed in args.seeds:
            start = time.perf_counter()
            dataset = data.load(config.data, image_size=config.image_size, seed=seed)
            load_s = time.perf_counter() - start
            trainer = Trainer(TrainConfig.from_dict({**config.to_dict(), "seed": seed}), dataset, device=device)
            with Contention() as busy:
                start = time.perf_counter()
                run = trainer.fit()
                fit_s = time.perf_counter() - start
            acc = run.history.test_acc
            if fit_s <= target.seconds:
                timing = "in time"
            elif busy.available and busy.others >= QUIET_SHARE:
                timing = "too slow, on a busy machine: rerun when it is quiet"
            else:
                timing = "TOO SLOW"
            print(f"  seed {seed}: test accuracy {acc:.2%} ({'met' if acc >= target.accuracy else 'MISSED'}), "
                  f"fit {fit_s:.1f} s ({timing}); data loading {load_s:.2f} s; {busy.describe()}")


if __name__ == "__main__":
    main()
