"""Trainer overhead: images/s of `Trainer.fit()` ÷ images/s of a bare PyTorch loop doing the same work.

Both sides train the same tinyvgg (same seed, same initial weights) on the same tensors in
channels_last, with Adam, the same batch size and epochs, and evaluate val after every epoch and
test at the end, as the Trainer does. Repeats alternate A/B/A/B so slow drifts of a shared machine
hit both sides; the figure is the median. Target: ratio ≥ 0.9. Also prints channels_last ÷
contiguous for tinyvgg on shapes (bare loop, same interleaving).

    python benchmarks/trainer_overhead.py [--repeats 3]

References:
    PyTorch tuning guide (channels_last), https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("VISIONEXPLORER_THREADS", "2")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine import data, models  # noqa: E402
from engine.device import configure_threads, pick_device  # noqa: E402
from engine.train import EVAL_CHUNK, TrainConfig, Trainer, model_config_for  # noqa: E402

TARGET_RATIO = 0.9
# (label, data-set name, load options, TrainConfig); the presets' batch sizes, epochs kept short.
CASES = [
    ("shapes 32×32", "shapes", {"image_size": 32},
     TrainConfig(data="shapes", image_size=32, model="tinyvgg", optimizer="adam", lr=3e-3, batch_size=128, epochs=1)),
    ("digits 8×8", "digits", {},
     TrainConfig(data="digits", model="tinyvgg", optimizer="adam", lr=3e-3, batch_size=64, epochs=10)),
]


def trainer_seconds(config: TrainConfig, dataset: data.Dataset, device: torch.device) -> float:
    trainer = Trainer(config, dataset, device=device)
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def _evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
    total, correct = 0.0, 0
    for start in range(0, len(y), EVAL_CHUNK):
        logits = model(x[start:start + EVAL_CHUNK])
        total += float(F.cross_entropy(logits, y[start:start + EVAL_CHUNK])) * len(logits)
        correct += int((logits.argmax(1) == y[start:start + EVAL_CHUNK]).sum())
    return total, correct


def bare_seconds(config: TrainConfig, dataset: data.Dataset, device: torch.device, *,
                 channels_last: bool = True) -> float:
    """The same training and evaluation as Trainer.fit(), written as the plainest PyTorch loop."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = models.build_from_config(model_config_for(config, dataset)).to(device).to(memory_format=fmt)
    splits = [(s.x.to(device).contiguous(memory_format=fmt), s.y.to(device))
              for s in (dataset.train, dataset.val, dataset.test)]
    (x, y), val, test = splits
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen).to(device)
        for i in range(0, len(order), config.batch_size):
            index = order[i:i + config.batch_size]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            _evaluate(model, *val)
    with torch.no_grad():
        _evaluate(model, *test)
    return time.perf_counter() - start


def interleaved(a, b, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of a() and b(), alternating A/B `repeats` times after one unmeasured warm-up of each."""
    a(), b()
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(a())
        times_b.append(b())
    return times_a, times_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    threads = configure_threads()
    device = pick_device()
    print(f"torch {torch.__version__}, device {device}, {threads} threads, "
          f"load average {os.getloadavg()[0]:.1f}, median of {args.repeats} interleaved repeats")
    shapes = None
    for label, name, options, config in CASES:
        dataset = data.load(name, seed=config.seed, **options)
        shapes = dataset if name == "shapes" else shapes
        images = len(dataset.train.y) * config.epochs
        t_trainer, t_bare = interleaved(lambda: trainer_seconds(config, dataset, device),
                                        lambda: bare_seconds(config, dataset, device), args.repeats)
        trainer_ips, bare_ips = images / statistics.median(t_trainer), images / statistics.median(t_bare)
        ratio = trainer_ips / bare_ips
        print(f"{label:13s} bs {config.batch_size:3d} × {config.epochs:2d} epochs: "
              f"Trainer {trainer_ips:7.0f} img/s, bare loop {bare_ips:7.0f} img/s, "
              f"ratio {ratio:.3f} ({'meets' if ratio >= TARGET_RATIO else 'MISSES'} ≥ {TARGET_RATIO})  "
              f"[Trainer s {', '.join(f'{t:.2f}' for t in t_trainer)}; bare s {', '.join(f'{t:.2f}' for t in t_bare)}]")

    config = CASES[0][3]
    t_last, t_contig = interleaved(lambda: bare_seconds(config, shapes, device, channels_last=True),
                                   lambda: bare_seconds(config, shapes, device, channels_last=False),
                                   args.repeats)
    speedup = statistics.median(t_contig) / statistics.median(t_last)
    print(f"channels_last vs contiguous, tinyvgg on shapes 32×32 bs {config.batch_size}: "
          f"{statistics.median(t_last):.2f} s vs {statistics.median(t_contig):.2f} s per epoch, "
          f"channels_last is {speedup:.2f}× the speed of contiguous")


if __name__ == "__main__":
    main()
