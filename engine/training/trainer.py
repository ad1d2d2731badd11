"""The Trainer: trains a model on a data set and yields an event after every batch and epoch.

Scripts print the events; the Streamlit training panel draws them. Everything a run needs (data,
model, optimizer) stays on one device as tensors, batches are sliced from them, and each run owns
its randomness, so the same seed gives the same curves.

References:
    Prechelt 1998, "Early Stopping — But When?", in Neural Networks: Tricks of the Trade.
    PyTorch tuning guide (channels_last), https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from engine import models
from engine.data import augment
from engine.training import losses
from engine.data.sets import Dataset, Split
from engine.device import RunRandomness, generator, pick_device
from engine.errors import UserInputError
from engine.training.optimizers import build_optimizer, build_scheduler, optimizer_names, schedule_names
from engine.training.runs import History, Run

DIVERGENCE_FACTOR = 20.0  # a batch loss this many times the first one counts as diverged (cross-entropy: 20·ln 10 ≈ 46)
EVAL_CHUNK = 1024  # images per forward pass when evaluating


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
    augmentation: str = "none"
    seed: int = 0
    snapshots: bool = False  # keep the weights after every epoch (for trajectory planes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# Events: small dataclasses; `kind` lets scripts print them without isinstance chains.
@dataclass
class BatchEnd:
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
class Done:
    test_loss: float
    test_acc: float
    seconds: float
    epochs: int
    best_epoch: int
    images_per_s: float
    kind: str = "done"


Event = BatchEnd | EpochEnd | Diverged | Stopped | Done


def validate(config: TrainConfig, num_train: int) -> None:
    """Check the numbers a user types before anything is built; raise UserInputError naming the rule."""
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise UserInputError(f"learning rate must be a positive number; got {config.lr}")
    if not 1 <= config.epochs <= 1000:
        raise UserInputError(f"epochs must be between 1 and 1000; got {config.epochs}")
    if not 1 <= config.batch_size <= num_train:
        raise UserInputError(f"batch size must be between 1 and the {num_train} training images; "
                             f"got {config.batch_size}")
    if config.patience < 0:
        raise UserInputError(f"early-stopping patience must be ≥ 0; got {config.patience}")
    if config.optimizer not in optimizer_names():
        raise UserInputError(f"optimizer must be one of {', '.join(optimizer_names())}; got {config.optimizer!r}")
    if config.schedule not in schedule_names():
        raise UserInputError(f"schedule must be one of {', '.join(schedule_names())}; got {config.schedule!r}")


def model_config_for(config: TrainConfig, dataset: Dataset) -> models.ModelConfig:
    return models.ModelConfig(
        name=config.model, in_channels=dataset.channels, num_classes=len(dataset.class_names),
        image_size=dataset.image_size, mean=tuple(dataset.mean), std=tuple(dataset.std),
        options=dict(config.model_options), init=config.init, init_sigma=config.init_sigma, seed=config.seed)


def evaluate(model: nn.Module, split: Split, loss_fn: Callable[[Tensor, Tensor], Tensor],
             *, chunk: int = EVAL_CHUNK) -> tuple[float, float]:
    """Mean loss and accuracy of `model` on `split`, in eval mode, without gradients."""
    total_loss, correct = 0.0, 0
    with models.evaluating(model), torch.no_grad():
        for start in range(0, len(split.y), chunk):
            x, y = split.x[start:start + chunk], split.y[start:start + chunk]
            logits = model(x)
            total_loss += float(loss_fn(logits, y)) * len(y)
            correct += int((logits.argmax(1) == y).sum())
    n = max(1, len(split.y))
    return total_loss / n, correct / n


def predict(model: nn.Module, x: Tensor, *, chunk: int = EVAL_CHUNK) -> Tensor:
    """Class probabilities (N, K) for images (N, C, H, W) in [0, 1]."""
    device = next(model.parameters()).device
    with models.evaluating(model), torch.no_grad():
        return torch.cat([model(x[i:i + chunk].to(device)).softmax(1).cpu()
                          for i in range(0, len(x), chunk)])


def _to_device(split: Split, device: torch.device, channels_last: bool) -> Split:
    x = split.x.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return Split(x, split.y.to(device))


class Trainer:
    """Train `config.model` on `dataset`; iterate `run()` for events, then read `.model`/`.history`."""

    def __init__(self, config: TrainConfig, dataset: Dataset, *, device: torch.device | None = None,
                 model: nn.Module | None = None):
        validate(config, len(dataset.train.y))
        self.config, self.dataset = config, dataset
        self.device = device or pick_device()
        self.model_config = model_config_for(config, dataset)
        self.model = (model or models.build_from_config(self.model_config)).to(self.device)
        # channels_last speeds small CNNs on CPU by ~25–38% (measured here); harmless elsewhere.
        self.channels_last = models.info(config.model).family == "cnn"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_split = _to_device(dataset.train, self.device, self.channels_last)
        self.val_split = _to_device(dataset.val, self.device, self.channels_last)
        self.test_split = _to_device(dataset.test, self.device, self.channels_last)
        self.loss_fn = losses.build(config.loss, **config.loss_options)
        self.optimizer = build_optimizer(config.optimizer, self.model.parameters(), lr=config.lr,
                                         momentum=config.momentum, weight_decay=config.weight_decay)
        self.steps_per_epoch = math.ceil(len(self.train_split.y) / config.batch_size)
        self.scheduler = build_scheduler(config.schedule, self.optimizer, self.steps_per_epoch * config.epochs)
        self.augment = augment.build(config.augmentation)
        self.generator = generator(config.seed)  # shuffling and augmentation draws
        self.randomness = RunRandomness(config.seed, self.device)  # dropout draws
        self.history = History()
        self._first_loss: float | None = None  # the divergence test compares against it
        if config.snapshots:
            self.history.snapshots.append(self._weights())

    def _weights(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def _train_epoch(self, epoch: int, should_stop: Callable[[], bool]) -> Iterator[BatchEnd | Diverged]:
        cfg, split = self.config, self.train_split
        order = torch.randperm(len(split.y), generator=self.generator).to(self.device)
        self._loss_sum, self._correct, self._seen = 0.0, 0, 0
        self.model.train()
        self._compute_seconds = 0.0  # time spent here, not in whoever consumes the events
        resumed = time.perf_counter()
        for i, start in enumerate(range(0, len(order), cfg.batch_size)):
            if should_stop():
                return
            index = order[start:start + cfg.batch_size]
            x, y = split.x[index], split.y[index]
            if self.augment is not None:
                x = self.augment(x, self.generator)
            with self.randomness.active():
                logits = self.model(x)
                loss = self.loss_fn(logits, y)
            value = float(loss.detach())
            step = (epoch - 1) * self.steps_per_epoch + i + 1
            if self._first_loss is None:
                self._first_loss = value
            if not math.isfinite(value) or value > DIVERGENCE_FACTOR * max(self._first_loss, 1e-3):
                yield Diverged(epoch, step, value, f"training diverged at step {step} (epoch {epoch}): "
                               f"the loss became {value:.3g}. Try a smaller learning rate.")
                return
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self._loss_sum += value * len(y)
            self._correct += int((logits.argmax(1) == y).sum())
            self._seen += len(y)
            self._compute_seconds += time.perf_counter() - resumed
            yield BatchEnd(epoch, step, self.steps_per_epoch * cfg.epochs, value)
            resumed = time.perf_counter()

    def run(self, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Train for `config.epochs`, yielding events; stops early on divergence, patience or `should_stop`."""
        should_stop = should_stop or (lambda: False)
        cfg, history = self.config, self.history
        started = time.perf_counter()
        best_loss, best_state, stale = math.inf, None, 0
        last_good = self._weights()
        for epoch in range(1, cfg.epochs + 1):
            for event in self._train_epoch(epoch, should_stop):
                yield event
                if isinstance(event, Diverged):
                    self.model.load_state_dict(last_good)  # keep the last weights that were finite
                    history.diverged_at = event.step
                    return
            if should_stop():
                history.stopped_reason = "cancelled"
                yield Stopped(epoch, "cancelled")
                break
            seconds = self._compute_seconds
            val_loss, val_acc = evaluate(self.model, self.val_split, self.loss_fn)
            if not math.isfinite(val_loss):
                self.model.load_state_dict(last_good)
                history.diverged_at = epoch * self.steps_per_epoch
                yield Diverged(epoch, history.diverged_at, val_loss,
                               f"validation loss became {val_loss} after epoch {epoch}; "
                               "the weights of the epoch before were kept. Try a smaller learning rate.")
                return
            last_good = self._weights()
            event = EpochEnd(epoch, cfg.epochs, self._loss_sum / self._seen, self._correct / self._seen,
                             val_loss, val_acc, self.optimizer.param_groups[0]["lr"], seconds,
                             self._seen / max(seconds, 1e-9))
            history.append(event)
            if cfg.snapshots:
                history.snapshots.append(last_good)
            yield event
            if val_loss < best_loss:
                best_loss, best_state, stale = val_loss, last_good, 0
                history.best_epoch = epoch
            else:
                stale += 1
            if cfg.patience and stale >= cfg.patience:
                history.stopped_reason = f"early stopping: no better validation loss for {stale} epochs"
                yield Stopped(epoch, history.stopped_reason)
                break
        if cfg.patience and cfg.restore_best and best_state is not None:
            self.model.load_state_dict(best_state)
        history.test_loss, history.test_acc = evaluate(self.model, self.test_split, self.loss_fn)
        history.total_seconds = time.perf_counter() - started
        yield Done(history.test_loss, history.test_acc, history.total_seconds, len(history.epoch),
                   history.best_epoch, history.mean_images_per_s())

    def fit(self, should_stop: Callable[[], bool] | None = None) -> Run:
        """Run to the end without looking at events; return the Run."""
        for _ in self.run(should_stop):
            pass
        return self.to_run()

    def to_run(self, name: str | None = None) -> Run:
        return Run(name=name or f"{self.config.model} on {self.dataset.name}", config=self.config.to_dict(),
                   model_config=self.model_config, class_names=list(self.dataset.class_names),
                   dataset_title=self.dataset.title, model=self.model, history=self.history)

    def estimate_seconds(self, *, probe_steps: int = 3) -> float:
        """Seconds the whole run should take, from timing a few training steps on a copy of the model."""
        probe = copy.deepcopy(self.model).train()
        optimizer = build_optimizer(self.config.optimizer, probe.parameters(), lr=self.config.lr)
        x = self.train_split.x[:self.config.batch_size]
        y = self.train_split.y[:self.config.batch_size]
        timings = []
        for _ in range(probe_steps + 1):  # the first step warms up kernels and is not counted
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            self.loss_fn(probe(x), y).backward()
            optimizer.step()
            timings.append(time.perf_counter() - start)
        per_step = min(timings[1:])  # the fastest step: other load on the machine only ever adds time
        eval_images = len(self.val_split.y) * self.config.epochs + len(self.test_split.y)
        eval_seconds = per_step / 3 * eval_images / self.config.batch_size  # forward ≈ ⅓ of a step
        return per_step * self.steps_per_epoch * self.config.epochs + eval_seconds
