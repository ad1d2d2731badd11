"""Time a 21×21 loss-landscape grid on tinyvgg with 512 images of 3×32×32: engine vs the naive loop.

    python benchmarks/landscape_grid.py [--resolution 21] [--images 512] [--threads 2]

The naive loop loads a state_dict per point and runs one forward of all images (no channels_last);
the engine writes the flat parameter vector in place and evaluates chunks of 128 channels_last images.
The two are timed row by row, alternating, so a machine shared with other work slows both alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine import models  # noqa: E402
from engine.training import landscape, losses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resolution", type=int, default=21)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = models.build("tinyvgg", in_channels=3, num_classes=10, image_size=32, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.images, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (args.images,), generator=gen)
    loss_fn = losses.build("cross_entropy")
    plane = landscape.random_plane(model, seed=0)
    axis = landscape.axis(1.0, args.resolution)
    coarse = axis[::2]
    print(f"{args.resolution}×{args.resolution} grid, tinyvgg, {args.images} images 3×32×32, {args.threads} threads",
          flush=True)

    start = time.perf_counter()
    landscape.evaluate(model, plane, x, y, loss_fn, xs=coarse, ys=coarse)
    print(f"engine, first coarse {len(coarse)}×{len(coarse)} grid: {time.perf_counter() - start:.1f} s", flush=True)

    engine_s = naive_s = 0.0
    fast, slow = np.zeros((len(axis), len(axis))), np.zeros((len(axis), len(axis)))
    for i, b in enumerate(axis):
        for order in ((0, 1) if i % 2 else (1, 0)):
            start = time.perf_counter()
            if order == 0:
                fast[i] = landscape.evaluate(model, plane, x, y, loss_fn, xs=axis, ys=np.array([b])).loss[0]
                engine_s += time.perf_counter() - start
            else:
                slow[i] = landscape.naive_evaluate(model, plane, x, y, loss_fn, xs=axis, ys=np.array([b]))[0]
                naive_s += time.perf_counter() - start
        print(f"  row {i + 1}/{len(axis)}: engine {engine_s:.1f} s, naive {naive_s:.1f} s so far", flush=True)
    print(f"full grid: engine {engine_s:.1f} s, naive loop {naive_s:.1f} s  →  engine {naive_s / engine_s:.1f}× "
          f"faster (max |Δloss| {float(abs(fast - slow).max()):.2g})")


if __name__ == "__main__":
    main()
