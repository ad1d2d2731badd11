"""The Trainer: trains a model on a data set and yields events as batches and epochs end.

Scripts print the events; the Streamlit training panel draws them. Everything a run needs (data,
model, optimizer) stays on one device as tensors, batches are sliced from them, and each run owns
its randomness, so the same seed gives the same curves. Losses and correct counts add up on the
device: the host waits for the device only every `report_every` steps (to report the loss and
check for divergence) and once per epoch, so a GPU never idles for the curve's sake.

What is minimized is engine.training.objective's (data loss + extra heads + penalties); parameter
groups, frozen modules and stages are engine.training.groups'; MixUp/CutMix engine.training.targets'.

References:
    Prechelt 1998, "Early Stopping — But When?", in Neural Networks: Tricks of the Trade.
    PyTorch tuning guide (channels_last), https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import torch
from torch import Tensor, nn

from engine import models
from engine.data import augment
from engine.data.sets import Dataset, Split
from engine.device import RunRandomness, configure_threads, generator, pick_device, seeded
from engine.errors import UserInputError
from engine.models import pretrained
from engine.models.heads import add_heads
from engine.training import losses
from engine.training.config import REPORTS_PER_EPOCH, TrainConfig, mixing_of, validate
from engine.training.events import BatchEnd, Diverged, Done, EpochEnd, Event, Stopped, Warned
from engine.training.gradient_flow import dead_fractions
from engine.training.groups import ParameterGroups, stages_of
from engine.training.objective import Objective, head_sizes, label_heads
from engine.training.optimizers import PLATEAU, Plateau, build_optimizer, schedule_factor
from engine.training.penalties import Penalties, proximal_l1_step, weight_statistics
from engine.training.runs import History, Run
from engine.training.targets import Mixer, hard_labels, is_soft

DIVERGENCE_FACTOR = 20.0  # a batch loss this many times the first one counts as diverged (cross-entropy: 20·ln 10 ≈ 46)
EVAL_CHUNK = 256  # images per forward pass when evaluating: also how often a Cancel is seen (≈ 0.3 s of resnet_small on a CPU)
CHANCE_MARGIN = 1.5  # train accuracy below 1.5 × chance counts as "at chance" for the dead-unit check
STUCK_EPOCHS = 2  # epochs at chance before the dead-unit check runs
PROBE_IMAGES = 256  # training images the dead-unit check looks at


def model_config_for(config: TrainConfig, dataset: Dataset) -> models.ModelConfig:
    return models.ModelConfig(
        name=config.model, in_channels=dataset.channels, num_classes=len(dataset.class_names),
        image_size=dataset.image_size, mean=tuple(dataset.mean), std=tuple(dataset.std),
        options=dict(config.model_options), init=config.init, init_sigma=config.init_sigma, seed=config.seed)


def evaluate(model: nn.Module, split: Split, loss_fn: Callable[[Tensor, Tensor], Tensor],
             *, chunk: int = EVAL_CHUNK, should_stop: Callable[[], bool] | None = None) -> tuple[float, float] | None:
    """Mean loss and accuracy of `model` on `split`, in eval mode, without gradients.

    None when `should_stop()` turns true first (checked per chunk: 10,000 test images take seconds on a CPU).
    """
    should_stop = should_stop or (lambda: False)
    total_loss, correct = 0.0, 0
    with models.evaluating(model), torch.no_grad():
        for start in range(0, len(split.y), chunk):
            if should_stop():
                return None
            x, y = split.x[start:start + chunk], split.y[start:start + chunk]
            logits = model(x)
            total_loss += float(loss_fn(logits, y)) * len(y)
            correct += int((logits.argmax(1) == hard_labels(y)).sum())
    if should_stop():  # also an empty split ends a cancelled run
        return None
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
    return Split(x, split.y.to(device), {name: y.to(device) for name, y in split.labels.items()})


class Trainer:
    """Train `config.model` on `dataset`; iterate `run()` for events, then read `.model`/`.history`."""

    def __init__(self, config: TrainConfig, dataset: Dataset, *, device: torch.device | None = None,
                 model: nn.Module | None = None):
        validate(config, len(dataset.train.y))
        if any(spec.get("labels") for spec in config.heads.values()):  # saved with its classes: rebuilds alone
            config = replace(config, heads=label_heads(config.heads, dataset))
        self.config, self.dataset = config, dataset
        self.device = device or pick_device()
        if config.mixed_precision and self.device.type != "cuda":
            raise UserInputError(f"mixed precision (bf16 autocast) runs on a CUDA GPU only; this run is on "
                                 f"{self.device.type}: turn it off")
        self.model_config = model_config_for(config, dataset)
        if model is None:
            model = models.build_from_config(self.model_config)
            if config.heads:
                model = add_heads(model, head_sizes(config.heads, dataset.num_classes), seed=config.seed)
        self.model = model.to(self.device)
        # channels_last speeds small CNNs on CPU by ~25–38% (measured here); harmless elsewhere.
        # A pretrained network being fine-tuned (engine.training.transfer) is the pretrained registry's.
        family = (models.info(config.model) if config.model in models.names() else pretrained.info(config.model)).family
        self.channels_last = family == "cnn"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_split = _to_device(dataset.train, self.device, self.channels_last)
        self.val_split = _to_device(dataset.val, self.device, self.channels_last)
        # a trial without a test split never touches it, not even to copy it to the device
        self.test_split = (_to_device(dataset.test, self.device, self.channels_last)
                           if config.evaluate_test else None)
        if is_soft(self.train_split.y) and config.loss != "cross_entropy":
            raise UserInputError(f"probability targets need the cross_entropy loss; got {config.loss!r}")
        self.loss_fn = losses.build(config.loss, **config.loss_options)
        self.penalties = Penalties(config.l2, config.l1, config.l1_mode, config.elastic, config.l1_ratio,
                                   config.penalize_all)
        self.objective = self._objective(self.model)
        self.groups = ParameterGroups(self.model, stages_of(epochs=config.epochs, freeze=config.freeze,
                                                            lr_factors=config.lr_factors, stages=config.stages))
        self.optimizer = build_optimizer(config.optimizer, self.groups.param_groups(), lr=config.lr,
                                         momentum=config.momentum, weight_decay=config.weight_decay)
        self.steps_per_epoch = math.ceil(len(self.train_split.y) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.report_every = config.report_every or max(1, self.steps_per_epoch // REPORTS_PER_EPOCH)
        self.plateau = Plateau(patience=config.plateau_patience) if config.schedule == PLATEAU else None
        self._lr_factors = self.groups.lr_factors(self.groups.stages[0])
        self._frozen: list[nn.Module] = []
        self._set_lr(0)
        self.augment = augment.build(config.augmentation)
        mixing, alpha = mixing_of(config)
        self.mixer = (Mixer(mixing, alpha=alpha, num_classes=dataset.num_classes,
                            seed=config.seed) if mixing != "none" else None)
        self.generator = generator(config.seed)  # shuffling and augmentation draws
        self.randomness = RunRandomness(config.seed, self.device)  # dropout draws
        self.history = History()
        self._first_loss: float | None = None  # the divergence test compares against it
        if config.snapshots:
            self.history.snapshots.append(self._weights())

    def _objective(self, model: nn.Module) -> Objective:
        return Objective(self.loss_fn, model, heads=self.config.heads, num_classes=self.dataset.num_classes,
                         main_weight=self.config.main_weight,
                         penalties=self.penalties, device=self.device)

    def _autocast(self):
        """bf16 autocast where the run asked for it (CUDA only): the weights and their updates stay
        float32, and bf16 has float32's exponent range, so no loss scaling is needed."""
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.config.mixed_precision)

    def _weights(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def _set_lr(self, step: int) -> None:
        """Each group's lr for the next step: base × the stage's group factor × schedule × plateau."""
        scale = schedule_factor(self.config.schedule, step, self.total_steps)
        if self.plateau is not None:
            scale *= self.plateau.scale
        for group, factor in zip(self.optimizer.param_groups, self._lr_factors):
            group["lr"] = self.config.lr * factor * scale

    def _start_stage(self, epoch: int, step: int) -> None:
        stage = self.groups.stage_at(epoch)
        self._frozen = self.groups.freeze(stage)
        self._lr_factors = self.groups.lr_factors(stage)
        self._set_lr(step)

    def _dead_unit_message(self) -> str | None:
        """'every ReLU in block1 is dead…' for the first activation layer with no live unit (named by
        its block when the whole block is dead), else None: one dead layer makes the output constant."""
        blocks: dict[str, list[tuple[str, float]]] = {}
        for name, fraction in dead_fractions(self.model, self.train_split.x[:PROBE_IMAGES]):
            blocks.setdefault(name.split(".")[0], []).append((name, fraction))
        for block, layers in blocks.items():
            dead = [name for name, fraction in layers if fraction == 1.0]
            if dead:
                where = block if len(dead) == len(layers) else dead[0]
                kind = type(self.model.get_submodule(dead[0])).__name__
                return (f"training accuracy has stayed at chance for {STUCK_EPOCHS} epochs and every {kind} "
                        f"in {where} is dead: try a lower learning rate or a warm-up (schedule one_cycle)")
        return None

    def _train_epoch(self, epoch: int, should_stop: Callable[[], bool]) -> Iterator[BatchEnd | Diverged]:
        cfg, split = self.config, self.train_split
        order = torch.randperm(len(split.y), generator=self.generator).to(self.device)
        self.model.train()
        for module in self._frozen:
            module.eval()  # frozen BatchNorm keeps its running statistics, frozen dropout is off
        sums: dict[str, Tensor] = {}  # Σ term × batch size, on the device
        correct, window, seen = torch.zeros((), dtype=torch.long, device=self.device), [], 0
        self._compute_seconds = 0.0  # time spent here, not in whoever consumes the events
        resumed = time.perf_counter()
        last = self.steps_per_epoch - 1
        for i, start in enumerate(range(0, len(order), cfg.batch_size)):
            if should_stop():
                return
            index = order[start:start + cfg.batch_size]
            x, y = split.x[index], split.y[index]
            labels = {name: split.labels[name][index] for name in self.objective.label_sets.values()}
            if self.augment is not None:
                x = self.augment(x, self.generator)
            if self.mixer is not None:
                x, y = self.mixer(x, y, self.generator)
            with self.randomness.active(), self._autocast():
                logits, terms = self.objective(self.model(x), y, labels)
                loss = self.objective.total(terms)
            step = (epoch - 1) * self.steps_per_epoch + i + 1
            window.append(loss.detach())
            report = None
            if step == 1 or len(window) == self.report_every or i == last:
                values = torch.stack(window).tolist()  # the one host synchronisation per report
                first, window = step - len(values) + 1, []
                if self._first_loss is None:
                    self._first_loss = values[0]
                limit = DIVERGENCE_FACTOR * max(self._first_loss, 1e-3)
                for offset, value in enumerate(values):
                    if not math.isfinite(value) or value > limit:
                        bad = first + offset
                        yield Diverged(epoch, bad, value, f"training diverged at step {bad} (epoch {epoch}): "
                                       f"the loss became {value:.3g}. Try a smaller learning rate.")
                        return
                report = BatchEnd(epoch, step, self.total_steps, values[-1])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.penalties.proximal:
                proximal_l1_step(self.optimizer, self.objective.penalized, self.penalties.l1)
            self._set_lr(step)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0) + value.detach() * len(y)
            correct += (logits.detach().argmax(1) == hard_labels(y)).sum()
            seen += len(y)
            if report is not None:
                self._compute_seconds += time.perf_counter() - resumed
                yield report
                resumed = time.perf_counter()
        totals = torch.stack([*sums.values(), correct.to(loss.dtype)]).tolist()  # the epoch's one sync
        self._terms = {name: total / seen for name, total in zip(sums, totals)}
        self._train_acc, self._seen = totals[-1] / seen, seen
        self._compute_seconds += time.perf_counter() - resumed

    def run(self, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Train for `config.epochs`, yielding events; stops early on divergence, patience or `should_stop`."""
        configure_threads()  # results depend on the thread count: the same in whichever thread iterates this
        try:
            yield from self._run(should_stop or (lambda: False))
        finally:
            self.groups.restore()  # the caller's requires_grad flags, and one mode for every module
            self.model.train()

    def _run(self, should_stop: Callable[[], bool]) -> Iterator[Event]:
        cfg, history = self.config, self.history
        started = time.perf_counter()
        best_loss, best_state, stale, at_chance = math.inf, None, 0, 0
        chance = CHANCE_MARGIN / self.dataset.num_classes
        last_good = self._weights()
        for epoch in range(1, cfg.epochs + 1):
            if epoch == 1 or self.groups.stage_at(epoch) is not self.groups.stage_at(epoch - 1):
                self._start_stage(epoch, (epoch - 1) * self.steps_per_epoch)
            for event in self._train_epoch(epoch, should_stop):
                if isinstance(event, Diverged):
                    # the last weights that were finite, back before anyone sees the event: a page
                    # stores the Run it receives with it (engine.training.interleaved's snapshot)
                    self.model.load_state_dict(last_good)
                    history.diverged_at = event.step
                    yield event
                    return
                yield event
            seconds = self._compute_seconds
            measured = evaluate(self.model, self.val_split, self.loss_fn, should_stop=should_stop)
            if measured is None:  # cancelled during the epoch or its validation: that epoch is not kept
                history.stopped_reason = "cancelled"
                yield Stopped(epoch, "cancelled")
                break
            val_loss, val_acc = measured
            if not math.isfinite(val_loss):
                self.model.load_state_dict(last_good)
                history.diverged_at = epoch * self.steps_per_epoch
                yield Diverged(epoch, history.diverged_at, val_loss,
                               f"validation loss became {val_loss} after epoch {epoch}; "
                               "the weights of the epoch before were kept. Try a smaller learning rate.")
                return
            last_good = self._weights()
            norm, zeros = weight_statistics(self.objective.penalized)
            event = EpochEnd(epoch, cfg.epochs, self._terms["data"], self._train_acc, val_loss, val_acc,
                             self.optimizer.param_groups[0]["lr"], seconds, self._seen / max(seconds, 1e-9),
                             dict(self._terms), norm, zeros)
            history.append(event)
            if cfg.snapshots:
                history.snapshots.append(last_good)
            yield event
            if self.plateau is not None and self.plateau.step(val_loss):
                self._set_lr(epoch * self.steps_per_epoch)  # the next epoch's first step already at lr ÷ 10
            at_chance = at_chance + 1 if self._train_acc < chance else 0
            if at_chance == STUCK_EPOCHS and (message := self._dead_unit_message()):
                history.warnings.append(message)
                yield Warned(epoch, message)
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
        if self.test_split is not None:  # a cancelled run ends at once, without a test accuracy
            measured = evaluate(self.model, self.test_split, self.loss_fn, should_stop=should_stop)
            if measured is not None:
                history.test_loss, history.test_acc = measured
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
        objective = self._objective(probe)
        optimizer = build_optimizer(self.config.optimizer, probe.parameters(), lr=self.config.lr)
        x = self.train_split.x[:self.config.batch_size]
        y = self.train_split.y[:self.config.batch_size]
        timings, draws = [], generator(self.config.seed)  # augmentation draws of its own: the run's stay untouched
        for _ in range(probe_steps + 1):  # the first step warms up kernels and is not counted
            start = time.perf_counter()
            batch = x if self.augment is None else self.augment(x, draws)
            optimizer.zero_grad(set_to_none=True)
            with seeded(self.config.seed, self.device):  # the probe's dropout must not draw from a run's state
                labels = {name: self.train_split.labels[name][:len(y)] for name in objective.label_sets.values()}
                _, terms = objective(probe(batch), y, labels)
                loss = objective.total(terms)
            loss.backward()
            optimizer.step()
            timings.append(time.perf_counter() - start)
        per_step = min(timings[1:])  # the fastest step: other load on the machine only ever adds time
        eval_images = len(self.val_split.y) * self.config.epochs + (
            len(self.test_split.y) if self.test_split is not None else 0)
        eval_seconds = per_step / 3 * eval_images / self.config.batch_size  # forward ≈ ⅓ of a step
        return per_step * self.steps_per_epoch * self.config.epochs + eval_seconds
