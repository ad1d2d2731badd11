"""Transfer learning: a network trained on one data set reused for another, and when that pays.

Four ways to learn a target, compared on its test split: a linear classifier on raw pixels (the
baseline), a linear probe on a source's features (engine.training.probe), fine-tuning (a new head
trained with the source frozen, then the top blocks unfrozen at a smaller learning rate), and the
source's architecture trained from random weights. Frozen layers keep `requires_grad` off and
stay in eval mode, so their BatchNorm statistics stay the source's; `frozen_bn="train"` leaves
them in train mode to show what that costs. The few-shot curve repeats the comparison for 1, 2,
5, … training images per class: transfer pays most where the target has few. The strategy table
(similar or different data × little or a lot of it) picks a recipe.

References:
    Yosinski et al. 2014, "How transferable are features in deep neural networks?", arXiv 1411.1792.
    Howard & Ruder 2018, "Universal Language Model Fine-tuning" (gradual unfreezing), arXiv 1801.06146.
    Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features" (probe, then fine-tune), arXiv 2202.10054.
    CS231n notes, "Transfer Learning", https://cs231n.github.io/transfer-learning/ (the strategy table).
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from engine.data.sets import Dataset
from engine.data.subsample import class_counts
from engine.errors import UserInputError
from engine.job_messages import Progress
from engine.jobs import unless_stopped
from engine.training import probe as probes
from engine.training.config import TrainConfig
from engine.training.events import EpochEnd, Event
from engine.training.probe import feature_probes, pixel_probe
from engine.training.runs import History, Run
from engine.training.sources import ALL, Source, fit_to_source, from_scratch, shots_for, subset, with_new_head
from engine.training.sources import forward_seconds
from engine.training.trainer import Trainer, evaluate

SHOTS = (1, 2, 5, 10, 20, 50, ALL)  # the few-shot curve's default points
METHODS = ("pixels_linear", "features_linear", "head_only", "fine_tuned", "scratch")
FROZEN_BN = ("eval", "train")


@dataclass(frozen=True)
class FineTune:
    """Stage 1 trains the new head alone (the source frozen); stage 2 also the top `unfreeze` blocks,
    at lr × `base_lr_factor` (the head keeps lr)."""

    head_epochs: int = 5
    epochs: int = 5  # of stage 2; 0 = the head only
    unfreeze: int = 1  # blocks below the head trained in stage 2, counted from the top
    lr: float = 3e-3  # Adam
    base_lr_factor: float = 0.1
    batch_size: int = 32
    train_head: bool = True
    frozen_bn: str = "eval"  # frozen layers' mode: "eval" keeps their BatchNorm statistics, "train" lets them drift
    seed: int = 0


def check(spec: FineTune, source: Source) -> None:
    """Refuse a fine-tuning in which nothing would learn, or that asks for blocks the source lacks."""
    blocks = len(source.blocks)
    if spec.frozen_bn not in FROZEN_BN:
        raise UserInputError(f"frozen_bn must be one of {', '.join(FROZEN_BN)}; got {spec.frozen_bn!r}")
    if not 0 <= spec.unfreeze <= blocks:
        raise UserInputError(f"unfreeze must be between 0 and the {blocks} blocks of {source.title}; got {spec.unfreeze}")
    if spec.head_epochs < 0 or spec.epochs < 0 or spec.head_epochs + spec.epochs < 1:
        raise UserInputError(f"fine-tuning needs at least one epoch; got {spec.head_epochs} with the base frozen "
                             f"and {spec.epochs} after unfreezing")
    trains_base = spec.epochs > 0 and spec.unfreeze > 0
    if not spec.train_head and not trains_base:
        raise UserInputError("nothing would learn: every layer of the source is frozen and no head is trained. "
                             "Train the new head, or unfreeze at least one block for some epochs")
    if not 0 < spec.base_lr_factor <= 10:
        raise UserInputError(f"the base's learning-rate factor must be in (0, 10]; got {spec.base_lr_factor}")


def _frozen(source: Source, units: Sequence[str], frozen_bn: str) -> list[str]:
    """Freeze prefixes: the units themselves (their modules then stay in eval mode), or for "train"
    their parameters by name, which freezes the weights but leaves every module in train mode."""
    if frozen_bn == "eval":
        return list(units)
    names = [n for n, _ in source.model.named_parameters()]
    return [n for n in names if any(n == u or n.startswith(u + ".") for u in units)]


def fine_tune_config(source: Source, target: Dataset, spec: FineTune) -> TrainConfig:
    """The TrainConfig (stages, frozen prefixes, lr factors) of `spec` for a target fitted to the source."""
    check(spec, source)
    blocks, head = list(source.blocks), [] if spec.train_head else [source.head]
    top = blocks[len(blocks) - spec.unfreeze:] if spec.unfreeze else []
    stages = []
    if spec.head_epochs and spec.train_head:
        stages.append({"epochs": spec.head_epochs, "freeze": _frozen(source, blocks, spec.frozen_bn)})
    if spec.epochs:
        frozen = [b for b in blocks if b not in top] + head
        stages.append({"epochs": spec.epochs, "freeze": _frozen(source, frozen, spec.frozen_bn),
                       "lr_factors": {b: spec.base_lr_factor for b in top}})
    arch = source.architecture
    return TrainConfig(
        data=target.name, image_size=target.image_size, model=arch.get("model") or arch["pretrained"],
        model_options=dict(arch.get("options", {})), optimizer="adam", lr=spec.lr,
        batch_size=min(spec.batch_size, len(target.train)), epochs=sum(s["epochs"] for s in stages),
        stages=stages if len(stages) > 1 else [], freeze=stages[0]["freeze"],
        lr_factors=stages[0].get("lr_factors", {}), seed=spec.seed)


def fine_tuner(source: Source, target: Dataset, spec: FineTune) -> Trainer:
    """A Trainer for `spec`: the source's network with a new head, on the target fitted to the source."""
    config = fine_tune_config(source, target, spec)
    return Trainer(config, target, model=with_new_head(source, target.num_classes, seed=spec.seed))


def scratch_trainer(source: Source, target: Dataset, *, epochs: int, seed: int = 0, lr: float = 3e-3,
                    batch_size: int = 32) -> Trainer:
    """The source's architecture from random weights, every layer trained (the no-transfer control)."""
    arch = source.architecture
    config = TrainConfig(data=target.name, image_size=target.image_size, model=arch.get("model") or arch["pretrained"],
                         model_options=dict(arch.get("options", {})), optimizer="adam", lr=lr,
                         batch_size=min(batch_size, len(target.train)), epochs=epochs, schedule="one_cycle",
                         seed=seed)
    return Trainer(config, target, model=from_scratch(source, target, seed=seed))


# ---------------------------------------------------------------------------- events
@dataclass
class Note:
    """Something done to the user's request that they should know (fewer images, converted channels)."""

    message: str
    kind: str = "note"


@dataclass
class CurvePoint:
    method: str  # one of METHODS
    per_class: int  # training images per class (for "all": the smallest class's count)
    images: int  # training images in all
    test_acc: float
    detail: str = ""  # e.g. the layer the probe chose
    kind: str = "point"


@dataclass
class TransferReport:
    """The CLI's answer: test accuracy of every method at one training-set size."""

    per_class: int | str
    layer: str
    accuracies: dict[str, float]
    seconds: float
    notes: list[str] = field(default_factory=list)
    probes: list[probes.ProbeResult] = field(default_factory=list)
    recipe: str = ""  # what a strategy did, in words
    kind: str = "report"


@dataclass
class FineTuned:
    """The end of a fine-tuning job."""

    test_acc: float | None  # None when the job was cancelled
    history: History
    bn_shift: float  # how far the frozen layers' BatchNorm means moved (bn_shift)
    run: Run | None  # a Run of the app when the source is one (other pages can pick it)
    kind: str = "fine_tuned"


# ---------------------------------------------------------------------------- the pieces
def train_events(trainer: Trainer, should_stop: Callable[[], bool], label: str,
           span: tuple[float, float]) -> Iterator[Progress | Event]:
    """Run `trainer`, reporting each epoch as progress within `span` of the whole job."""
    for event in trainer.run(should_stop):
        if isinstance(event, EpochEnd):
            share = span[0] + (span[1] - span[0]) * event.epoch / event.epochs
            yield Progress(share, f"{label}: epoch {event.epoch} of {event.epochs}, "
                                          f"val accuracy {event.val_acc:.0%}")
        elif event.kind in ("diverged", "warning"):
            yield Note(f"{label}: {event.message}")


def test_accuracy(trainer: Trainer) -> float:
    return trainer.history.test_acc if trainer.history.test_acc is not None else \
        evaluate(trainer.model, trainer.test_split, trainer.loss_fn)[1]


# ---------------------------------------------------------------------------- the comparison (the CLI's command)
def compare(should_stop: Callable[[], bool] | None = None, *, source: Source, target: Dataset,
            per_class: int = 10, epochs: int = 5, seed: int = 0, classifier: str = "logistic",
            methods: Sequence[str] = METHODS) -> Iterator[Progress | Note | TransferReport]:
    """Every method of `methods` on `per_class` training images per class (ALL: every one) of `target`."""
    should_stop = should_stop or (lambda: False)
    started = time.perf_counter()
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UserInputError(f"unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if epochs < 1:
        raise UserInputError(f"epochs must be ≥ 1; got {epochs}")
    (k,), notes = shots_for(target, [per_class])
    fitted, conversions = fit_to_source(target, source)
    notes += conversions
    for note in notes:
        yield Note(note)
    raw, fit = subset(target, k, seed), subset(fitted, k, seed)
    accuracies: dict[str, float] = {}
    results, layer = [], ""
    if "pixels_linear" in methods:  # scikit-learn fits: seconds on thousands of images, and no should_stop
        pixels = unless_stopped(should_stop, pixel_probe, raw, classifier=classifier, seed=seed)
        if pixels is None:
            return
        accuracies["pixels_linear"] = pixels.test_acc
    if "features_linear" in methods:
        yield Progress(0.05, "Linear probes on every layer")
        results = unless_stopped(should_stop, feature_probes, source, fit, classifier=classifier, seed=seed)
        if results is None:
            return
        chosen = probes.best(results)
        accuracies["features_linear"], layer = chosen.test_acc, chosen.feature.label
    spec = FineTune(head_epochs=epochs, epochs=epochs, unfreeze=1, seed=seed)
    if "head_only" in methods or "fine_tuned" in methods:
        head = fine_tuner(source, fit, dataclasses.replace(spec, epochs=0))
        yield from train_events(head, should_stop, "new head, source frozen", (0.1, 0.4))
        if should_stop():
            return
        accuracies["head_only"] = test_accuracy(head)
        if "fine_tuned" in methods and not should_stop():
            # stage 2 continues from the trained head: the top block unfrozen at a smaller lr
            top = dataclasses.replace(spec, head_epochs=0)
            tuned = Trainer(fine_tune_config(source, fit, top), fit, model=head.model)
            yield from train_events(tuned, should_stop, "top block unfrozen", (0.4, 0.7))
            if should_stop():
                return
            accuracies["fine_tuned"] = test_accuracy(tuned)
    if "scratch" in methods and not should_stop():
        scratch = scratch_trainer(source, fit, epochs=2 * epochs, seed=seed)  # as many epochs as fine_tuned had
        yield from train_events(scratch, should_stop, "from scratch", (0.7, 1.0))
        if should_stop():
            return
        accuracies["scratch"] = test_accuracy(scratch)
    if should_stop():
        return
    yield TransferReport("all" if k == ALL else k, layer, {m: accuracies[m] for m in METHODS if m in accuracies},
                         time.perf_counter() - started, notes, results)


# ---------------------------------------------------------------------------- the few-shot curve
def few_shot_curve(should_stop: Callable[[], bool] | None = None, *, source: Source, target: Dataset,
                   shots: Sequence[int] = SHOTS, epochs: int = 5, seed: int = 0,
                   methods: Sequence[str] = ("pixels_linear", "features_linear", "fine_tuned", "scratch"),
                   classifier: str = "logistic") -> Iterator[Progress | Note | CurvePoint]:
    """Test accuracy of each method against training images per class; one point at a time, smallest first."""
    should_stop = should_stop or (lambda: False)
    sizes, notes = shots_for(target, shots)
    for note in notes:
        yield Note(note)
    total = len(sizes)
    for i, k in enumerate(sizes):
        label = "all images" if k == ALL else f"{k} per class"
        for event in compare(should_stop, source=source, target=target, per_class=k, epochs=epochs, seed=seed,
                             classifier=classifier, methods=methods):
            if isinstance(event, Progress):
                yield Progress((i + event.fraction) / total, f"{label}: {event.message}")
            elif isinstance(event, TransferReport):
                images = len(subset(target, k, seed).train)
                shown = k if k != ALL else min(class_counts(target.train.y, target.num_classes))
                for method, acc in event.accuracies.items():
                    yield CurvePoint(method, shown, images, acc, event.layer if method == "features_linear" else "")
            elif i == 0:  # the conversions, once (the sizes were cut above)
                yield event
        if should_stop():
            return
        yield Progress((i + 1) / total, f"{label}: done")


# ---------------------------------------------------------------------------- the pages' jobs and estimates
def source_recipe(seed: int = 0) -> TrainConfig:
    """The source the app trains in one click: Tiny VGG with BatchNorm on the procedural shapes, their recipe."""
    return TrainConfig.for_data("shapes", model_options={"norm": "batch"}, seed=seed)


def bn_shift(source: Source, model: nn.Module, units: Sequence[str]) -> float:
    """Mean |Δ running mean| of the BatchNorm layers inside `units`, in the source's running standard deviations."""
    before = dict(source.model.named_buffers())
    shifts = []
    for name, value in model.named_buffers():
        if name.endswith("running_mean") and any(name.startswith(u + ".") for u in units):
            std = before[name.replace("running_mean", "running_var")].sqrt() + 1e-5
            shifts.append(((value.detach().cpu() - before[name]) / std).abs().mean())
    return float(torch.stack(shifts).mean()) if shifts else 0.0


def fine_tune_job(should_stop: Callable[[], bool] | None = None, *, source: Source, target: Dataset, spec: FineTune,
                  per_class: int = ALL, name: str = "") -> Iterator[Note | EpochEnd | FineTuned]:
    """Fine-tune `source` on `per_class` images of each class of `target`: its epochs as they end, then the result."""
    should_stop = should_stop or (lambda: False)
    (k,), notes = shots_for(target, [per_class])
    fitted, conversions = fit_to_source(target, source)
    for note in notes + conversions:
        yield Note(note)
    trainer = fine_tuner(source, subset(fitted, k, spec.seed), spec)
    for event in trainer.run(should_stop):
        if isinstance(event, EpochEnd):
            yield event
        elif event.kind in ("diverged", "warning"):
            yield Note(event.message)
    top = spec.unfreeze if spec.epochs else 0
    frozen = source.blocks[:len(source.blocks) - top]
    run = trainer.to_run(name or f"{source.title} → {target.title}") if source.kind == "run" else None
    cancelled = trainer.history.stopped_reason == "cancelled"  # kept as it stands, not tested: Cancel ends it now
    yield FineTuned(None if cancelled else test_accuracy(trainer), trainer.history,
                    bn_shift(source, trainer.model, frozen), run)


def seconds_per_image(source: Source, target: Dataset) -> float:
    """Training seconds per image and epoch of the source's network on `target` (fitted), from timed steps."""
    fitted, _ = fit_to_source(target, source)
    trainer = scratch_trainer(source, fitted, epochs=1)
    return trainer.estimate_seconds() / len(fitted.train)


def curve_seconds(source: Source, target: Dataset, *, shots: Sequence[int], epochs: int, seed: int = 0) -> float:
    """About how long few_shot_curve takes: every training (head ≈ ½ a step, fine-tuning, scratch twice as long)
    and the forward passes for the probes."""
    sizes, _ = shots_for(target, shots)
    images = [len(subset(target, k, seed).train) for k in sizes]
    per = seconds_per_image(source, target)
    evaluated = len(target.val) + len(target.test)
    return (sum(images) * epochs * 3.5 * per
            + forward_seconds(source, evaluated + sum(images)) + 0.3 * len(sizes) * len(source.layers) * 4)


def fine_tune_seconds(source: Source, target: Dataset, spec: FineTune, per_class: int = ALL) -> float:
    """About how long fine_tune_job takes."""
    images = len(subset(target, shots_for(target, [per_class])[0][0], spec.seed).train)
    return images * (spec.head_epochs * 0.5 + spec.epochs) * seconds_per_image(source, target)
