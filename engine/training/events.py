"""What a training run reports as it goes: small dataclasses the Trainer yields.

Scripts print them (`kind` names each without isinstance chains); the Streamlit training panel draws
them; the job runner pickles them from a worker to the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BatchEnd:
    """Every `report_every` steps and at each epoch's last step; `loss` is step `step`'s."""

    epoch: int
    step: int
    total_steps: int
    loss: float
    kind: str = "batch"


@dataclass
class EpochEnd:
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_s: float
    terms: dict[str, float] = field(default_factory=dict)  # mean of each loss term over the epoch
    weight_norm: float = 0.0  # ‖w‖₂ of the penalized weights
    zero_fraction: float = 0.0  # share of them with |w| < 1e-6
    kind: str = "epoch"


@dataclass
class Diverged:
    epoch: int
    step: int
    loss: float
    message: str
    kind: str = "diverged"


@dataclass
class Stopped:
    epoch: int
    reason: str
    kind: str = "stopped"


@dataclass
class Warned:
    """Something the user should change, e.g. every ReLU of a block is dead."""

    epoch: int
    message: str
    kind: str = "warning"


@dataclass
class Done:
    test_loss: float | None  # None when the run had no test split (evaluate_test=False)
    test_acc: float | None
    seconds: float
    epochs: int
    best_epoch: int
    images_per_s: float
    kind: str = "done"


Event = BatchEnd | EpochEnd | Diverged | Stopped | Warned | Done
