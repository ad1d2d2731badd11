"""The training recipe each data set starts from: the one table the CLI, the Train Lab and the engine read.

A recipe that trains matters more than a uniform one: Adam at lr 5e-3 with a constant rate trains
tinyvgg to 98 % on digits but kills every ReLU on shapes in its first steps (it ends at chance,
12.5 %); the one-cycle warm-up (lr/25 rising over the first 30 % of steps) avoids it.

References:
    Smith & Topin 2017, "Super-Convergence" (one-cycle), arXiv 1708.07120.
    Goyal et al. 2017, "Accurate, Large Minibatch SGD" (warm-up), arXiv 1706.02677.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Preset:
    """The TrainConfig fields a data set's recipe sets."""

    model: str = "tinyvgg"
    optimizer: str = "adam"
    lr: float = 5e-3
    batch_size: int = 32
    epochs: int = 20
    schedule: str = "constant"

    def to_dict(self) -> dict:
        return asdict(self)


# Chosen in benchmarks/accuracy_time.py: ≥ 98 % test accuracy on seeds 0–2 (digits ~2 s, shapes ~11 s on 2 cores).
DIGITS = Preset()  # TrainConfig's own defaults (tests/test_trainer_extensions.py keeps the two equal)
SHAPES = Preset(batch_size=64, epochs=8, schedule="one_cycle")

PRESETS: dict[str, Preset] = {
    "digits": DIGITS,
    # Not measured yet: warm-up recipes, the choice that does not kill ReLUs on unseen data.
    "faces": Preset(epochs=20, schedule="one_cycle"),
    "shapes": SHAPES,
    "mnist": Preset(batch_size=128, epochs=5, schedule="one_cycle"),
    "fashion_mnist": Preset(batch_size=128, epochs=8, schedule="one_cycle"),
    "cifar10": Preset(batch_size=128, epochs=10, schedule="one_cycle"),
}


def preset(data: str) -> Preset:
    """The recipe for data set `data`; an uploaded set gets shapes' (colour images, and a warm-up)."""
    return PRESETS.get(data, SHAPES)
