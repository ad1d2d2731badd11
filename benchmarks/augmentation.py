"""Augmentation cost: training images/s with an augmentation pipeline ÷ without, for two implementations.

The same Trainer run (tinyvgg, shapes 32×32, batch 128, Adam) trains one epoch with no augmentation,
with engine.data.augment's "standard" pipeline (flip + random resized crop + colour jitter + random
erasing, vectorized over the batch, one resampling) and with the same four steps from kornia 0.9's
`kornia.augmentation`, whose per-image parameters are drawn under engine.device's lock from a seed the
run's generator gives (kornia's samplers take no generator). Runs alternate none/engine/kornia, so a
busy machine's slow spells hit all three; images/s is the Trainer's own (training steps only, not
evaluation). Before timing, both implementations are checked: the same seed repeats the same batch,
and identical images in one batch come out different (per-image parameters). Target: ratio ≥ 0.7.

    python benchmarks/augmentation.py [--repeats 5] [--quick]

References:
    kornia.augmentation, https://kornia.readthedocs.io/en/latest/augmentation.module.html
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import Contention, setup

THREADS = setup()

import torch  # noqa: E402

from engine import data  # noqa: E402
from engine.data import augment  # noqa: E402
from engine.device import seeded  # noqa: E402
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer

TARGET_RATIO = 0.7
PIPELINE = "standard"  # flip + crop + jitter + erasing, at the defaults of engine.data.augment


class KorniaPipeline:
    """The same four steps as kornia modules; parameters drawn under the global-generator lock."""

    def __init__(self, image_size: int):
        import kornia.augmentation as K

        steps = {s["name"]: s for s in augment.resolve(PIPELINE)}
        crop, jitter, erase = steps["crop"], steps["jitter"], steps["erase"]
        self.sequence = K.AugmentationSequential(
            K.RandomHorizontalFlip(p=steps["flip"]["p"]),
            K.RandomResizedCrop((image_size, image_size), scale=(crop["scale"], 1.0),
                                ratio=(1 / crop["ratio"], crop["ratio"])),
            K.ColorJitter(jitter["brightness"], jitter["contrast"], jitter["saturation"], jitter["hue"], p=1.0),
            K.RandomErasing(scale=(0.02, erase["scale"]), ratio=(1 / 3.3, 3.3), value=erase["value"], p=erase["p"]))

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        with seeded(seed, x.device):
            params = self.sequence.forward_parameters(x.shape)
        return self.sequence(x, params=params)


def check(name: str, pipeline, x: torch.Tensor) -> None:
    """Print whether a seed repeats the batch and whether copies of one image get different parameters."""
    same = torch.equal(pipeline(x, torch.Generator().manual_seed(1)), pipeline(x, torch.Generator().manual_seed(1)))
    copies = pipeline(x[:1].repeat(16, 1, 1, 1), torch.Generator().manual_seed(2))
    distinct = len({tuple(image.flatten().round(decimals=4).tolist()) for image in copies})
    print(f"{name:>7}: same seed → same batch: {same}; 16 copies of one image → {distinct} different results")


def images_per_second(dataset: data.Dataset, pipeline) -> float:
    config = TrainConfig(data="shapes", image_size=32, model="tinyvgg", optimizer="adam", lr=3e-3,
                         batch_size=128, epochs=1, seed=0)
    trainer = Trainer(config, dataset)
    trainer.augment = pipeline  # the Trainer's one augmentation call site: (x, generator) -> x
    trainer.fit()
    return trainer.history.images_per_s[-1]


def milliseconds_per_batch(pipeline, x: torch.Tensor, calls: int = 20) -> float:
    """The pipeline alone on one batch: the fastest of `calls` calls (load on the machine only adds time)."""
    generator, times = torch.Generator().manual_seed(0), []
    for _ in range(calls):
        start = time.perf_counter()
        pipeline(x, generator)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat on fewer images: checks the script runs")
    args = parser.parse_args()
    repeats, images = (1, 1200) if args.quick else (args.repeats, 6000)
    dataset = data.load("shapes", image_size=32, num_images=images, seed=0)
    pipelines = {"none": None, "engine": augment.build(PIPELINE), "kornia": KorniaPipeline(32)}
    print(f"torch {torch.__version__}, {THREADS} threads; pipeline {augment.to_text(augment.resolve(PIPELINE))}; "
          f"{len(dataset.train)} training images, batch 128")
    for name in ("engine", "kornia"):
        check(name, pipelines[name], dataset.train.x[:64])
    batch = dataset.train.x[:128].contiguous(memory_format=torch.channels_last)  # as the Trainer slices it
    for name in ("engine", "kornia"):
        print(f"{name:>7}: {milliseconds_per_batch(pipelines[name], batch):.1f} ms per batch of 128 (alone)")
    for pipeline in pipelines.values():  # warm-up: first calls build kernels and caches
        images_per_second(dataset, pipeline)
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    with Contention() as busy:
        for _ in range(repeats):
            for name, pipeline in pipelines.items():
                rates[name].append(images_per_second(dataset, pipeline))
    for name in pipelines:
        print(f"{name:>7}: {statistics.median(rates[name]):8,.0f} img/s  ({' '.join(f'{r:,.0f}' for r in rates[name])})")
    for name in ("engine", "kornia"):
        paired = statistics.median(a / b for a, b in zip(rates[name], rates["none"]))
        verdict = "meets" if paired >= TARGET_RATIO else "misses"
        print(f"{name:>7} ÷ none: {paired:.3f} (median of paired ratios) — {verdict} the target {TARGET_RATIO}")
    print(busy.describe())


if __name__ == "__main__":
    main()
