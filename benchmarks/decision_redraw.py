"""Time one live update of the decision-boundaries page: 10 full-batch steps, then the 100×100 decision grid.

    python benchmarks/decision_redraw.py [--points 400] [--repeats 50]

The model is the page's 2×8 tanh MLP with Adam on the spiral, torch on 2 threads (VISIONEXPLORER_THREADS).
Target: ≤ 50 ms per update, so Play redraws smoothly. Prints the median and the fastest update (the
fastest is the figure for a quiet machine), and the share of the CPUs other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import statistics

from _timing import Contention, setup, timed

THREADS = setup()

import torch  # noqa: E402

from engine.training import toy2d  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    x, y = toy2d.make("spiral", n_points=args.points, noise=0.1, seed=0)
    model = toy2d.build_model(toy2d.ToyNet(hidden=(8, 8), activation="tanh"), seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    bounds = toy2d.bounds_of(x)

    def update() -> None:
        toy2d.train_steps(model, optimizer, x, y, steps=10)
        toy2d.decision_grid(model, bounds, 100)

    update()  # warm-up: first calls allocate
    with Contention() as contention:
        times = [timed(update) for _ in range(args.repeats)]
    print(f"one update (10 steps on {args.points} points + 100×100 grid, 2×8 tanh MLP, {THREADS} threads): "
          f"median {statistics.median(times) * 1e3:.1f} ms, fastest {min(times) * 1e3:.1f} ms (target ≤ 50 ms)")
    print(contention.describe())


if __name__ == "__main__":
    main()
