"""One training run's settings (`TrainConfig`) and the checks made before anything is built.

The Train Lab's widgets, the CLI's flags and a saved Run all describe a run with a TrainConfig;
`validate` refuses the numbers a user can type that no run could take, naming the rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from engine import limits
from engine.data import augment
from engine.errors import UserInputError
from engine.training.optimizers import optimizer_info, schedule_info
from engine.training.presets import preset
from engine.training.targets import MIXINGS

REPORTS_PER_EPOCH = 50  # BatchEnd events per epoch when report_every is 0: a live curve, one host sync per report


@dataclass
class TrainConfig:
    """One training run, as the Train Lab's widgets, the CLI's flags and a saved Run describe it."""

    data: str = "digits"
    image_size: int | None = None  # None = the data set's native size
    model: str = "tinyvgg"
    model_options: dict = field(default_factory=dict)
    init: str = "default"
    init_sigma: float = 0.01
    loss: str = "cross_entropy"
    loss_options: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 5e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 20  # these defaults are the cnn_digits preset: ≥ 98 % on digits in seconds
    schedule: str = "constant"
    patience: int = 0  # early stopping after this many epochs without a better val loss; 0 = off
    restore_best: bool = True
    augmentation: str | list = "none"  # a preset name or a list of steps (engine.data.augment)
    seed: int = 0
    snapshots: bool = False  # keep the weights after every epoch (for trajectory planes)
    # extra loss terms (engine.training.objective): head name -> {"weight": λ, "targets": class mapping
    # or "labels": one of the data set's extra label sets}
    heads: dict = field(default_factory=dict)
    main_weight: float = 1.0  # λ₀ of the main head's loss (multi-task learning: λ₀ L₀ + Σ λᵢ Lᵢ)
    l2: float = 0.0  # λ/2 ‖w‖² in the loss
    l1: float = 0.0  # λ ‖w‖₁
    l1_mode: str = "proximal"  # soft-thresholding after each step, or "subgradient" in the loss
    elastic: float = 0.0  # α(ρ‖w‖₁ + (1−ρ)/2 ‖w‖²) in the loss
    l1_ratio: float = 0.5  # ρ
    penalize_all: bool = False  # penalties also on biases and normalization parameters
    # parameter groups (engine.training.groups), by module-name prefix
    freeze: list = field(default_factory=list)
    lr_factors: dict = field(default_factory=dict)  # prefix -> multiplier of lr
    stages: list = field(default_factory=list)  # [{"epochs": n, "freeze": [...], "lr_factors": {...}}, ...]
    mixing: str = "none"  # "mixup" | "cutmix": probability targets (engine.training.targets)
    mixing_alpha: float = 1.0  # λ ~ Beta(α, α)
    plateau_patience: int = 2  # reduce_on_plateau: epochs without a better val loss before lr ÷ 10
    evaluate_test: bool = True  # False: a hyper-parameter trial; the test split is never read
    report_every: int = 0  # a BatchEnd every this many steps; 0 = about 50 per epoch
    mixed_precision: bool = False  # bf16 autocast of the training steps; CUDA only

    @classmethod
    def for_data(cls, data: str, **overrides) -> TrainConfig:
        """The data set's recipe (engine.training.presets) with `overrides` on top."""
        return cls(data=data, **{**preset(data).to_dict(), **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def validate(config: TrainConfig, num_train: int) -> None:
    """Check the numbers a user types before anything is built; raise UserInputError naming the rule."""
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise UserInputError(f"learning rate must be a positive number; got {config.lr}")
    if not 1 <= config.epochs <= limits.MAX_EPOCHS:
        raise UserInputError(f"epochs must be between 1 and {limits.MAX_EPOCHS}; got {config.epochs}")
    if not 1 <= config.batch_size <= num_train:
        raise UserInputError(f"batch size must be between 1 and the {num_train} training images; "
                             f"got {config.batch_size}")
    if config.patience < 0:
        raise UserInputError(f"early-stopping patience must be ≥ 0; got {config.patience}")
    optimizer_info(config.optimizer)  # an unknown name raises the registry's UserInputError
    schedule_info(config.schedule)
    if config.mixing not in MIXINGS:
        raise UserInputError(f"mixing must be one of {', '.join(MIXINGS)}; got {config.mixing!r}")
    mixing, _ = mixing_of(config)
    if mixing != "none" and any(spec.get("labels") for spec in config.heads.values()):
        raise UserInputError(f"{mixing} mixes images but not the extra label sets a head scores; "
                             "train multi-task heads without mixing")
    if mixing != "none" and config.loss != "cross_entropy":
        raise UserInputError(f"{mixing} makes probability targets, which only cross_entropy takes; "
                             f"got loss {config.loss!r}")
    if config.report_every < 0:
        raise UserInputError(f"report_every must be ≥ 0 steps (0 = about {REPORTS_PER_EPOCH} per epoch); "
                             f"got {config.report_every}")


def mixing_of(config: TrainConfig) -> tuple[str, float]:
    """(kind, α) of the run's label mixing: the augmentation pipeline's last step, or `config.mixing`."""
    in_pipeline = augment.label_mixing(config.augmentation)  # also checks every step of the pipeline
    if in_pipeline and config.mixing != "none":
        raise UserInputError(f"the augmentation already ends with {in_pipeline[0]}: set mixing to none, "
                             f"or remove {in_pipeline[0]} from the augmentation")
    return in_pipeline or (config.mixing, config.mixing_alpha)
