"""Trainer overhead: images/s of `Trainer.fit()` ÷ images/s of a bare PyTorch loop doing the same work.

Both sides train the same tinyvgg (same seed, same initial weights) on the same tensors in
channels_last, with Adam at the same batch size and epochs, and evaluate val after every epoch and
test at the end, as `Trainer.fit()` does. Runs alternate Trainer/bare/Trainer/bare… so a shared
machine's slow spells hit both sides; figures are medians, over all pairs and over the quiet pairs
(other processes under 10 % of the CPUs). Target: ratio ≥ 0.9. Also prints channels_last ÷
contiguous for tinyvgg training on shapes (bare loop, interleaved the same way).

    python benchmarks/trainer_overhead.py [--repeats 7]

References:
    PyTorch tuning guide (channels_last), https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from _timing import interleaved, setup

THREADS = setup()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine import data, models  # noqa: E402
from engine.device import pick_device  # noqa: E402
from engine.training.config import TrainConfig
from engine.training.trainer import EVAL_CHUNK, Trainer, model_config_for

TARGET_RATIO = 0.9
LAYOUT_IMAGES = 3840  # 30 batches of 128, training only, for the memory-layout comparison
# (label, data set, load options, TrainConfig at the old presets' batch sizes)
CASES = [
    ("shapes 32×32", "shapes", {"image_size": 32},
     TrainConfig(data="shapes", image_size=32, model="tinyvgg", optimizer="adam", lr=3e-3, batch_size=128, epochs=2)),
    ("digits 8×8", "digits", {},
     TrainConfig(data="digits", model="tinyvgg", optimizer="adam", lr=3e-3, batch_size=64, epochs=10)),
]


def head(dataset: data.Dataset, train: int) -> data.Dataset:
    """The same set with only its first `train` training images."""
    return dataclasses.replace(dataset, train=data.Split(dataset.train.x[:train], dataset.train.y[:train]))


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
                 channels_last: bool = True, evaluate: bool = True) -> float:
    """The training (and evaluation) of Trainer.fit(), written as the plainest PyTorch loop."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = models.build_from_config(model_config_for(config, dataset)).to(device).to(memory_format=fmt)
    (x, y), val, test = [(s.x.to(device).contiguous(memory_format=fmt), s.y.to(device))
                         for s in (dataset.train, dataset.val, dataset.test)]
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
        if evaluate:
            model.eval()
            with torch.no_grad():
                _evaluate(model, *val)
    if evaluate:
        with torch.no_grad():
            _evaluate(model, *test)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device = pick_device()
    print(f"torch {torch.__version__}, {device}, {THREADS} threads; {args.repeats} interleaved pairs each")
    shapes = None
    for label, name, options, config in CASES:
        dataset = data.load(name, seed=config.seed, **options)
        shapes = dataset if name == "shapes" else shapes
        images = len(dataset.train.y) * config.epochs
        warm = head(dataset, 4 * config.batch_size)  # first calls build oneDNN kernels; not counted
        trainer_seconds(dataclasses.replace(config, epochs=1), warm, device)
        bare_seconds(dataclasses.replace(config, epochs=1), warm, device)
        pairs = interleaved(lambda: trainer_seconds(config, dataset, device),
                            lambda: bare_seconds(config, dataset, device), args.repeats)
        best = pairs.quiet() if pairs.quiet().a else pairs
        print(f"{label}, {len(dataset.train.y)} train images, bs {config.batch_size}, {config.epochs} epochs "
              f"(+ val every epoch, test at the end): Trainer {images / statistics.median(best.a):.0f} img/s, "
              f"bare loop {images / statistics.median(best.b):.0f} img/s "
              f"({'quiet pairs' if best is not pairs else 'all pairs'}); Trainer ÷ bare "
              f"(target ≥ {TARGET_RATIO}): {pairs.summary(('Trainer', 'bare'))}")

    config = CASES[0][3]
    part = head(shapes, LAYOUT_IMAGES)
    bare_seconds(config, head(shapes, 4 * config.batch_size), device, channels_last=False, evaluate=False)
    pairs = interleaved(lambda: bare_seconds(config, part, device, channels_last=True, evaluate=False),
                        lambda: bare_seconds(config, part, device, channels_last=False, evaluate=False),
                        args.repeats)
    best = pairs.quiet() if pairs.quiet().a else pairs
    images = LAYOUT_IMAGES * config.epochs
    print(f"tinyvgg training only on shapes 32×32, bs {config.batch_size}: channels_last "
          f"{images / statistics.median(best.a):.0f} img/s, contiguous {images / statistics.median(best.b):.0f} img/s; "
          f"channels_last ÷ contiguous: {pairs.summary(('channels_last', 'contiguous'))}")


if __name__ == "__main__":
    main()
