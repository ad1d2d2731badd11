"""Multi-task learning: one shared base, a head per task, trained on the weighted sum λ₁L₁ + λ₂L₂.

The experiment trains three networks of the same architecture, seed and budget: the multi-task
net (the data set's classes on its main head, one of its extra label sets — shapes' colour or
size — on a second head fed by the same features), and two single-task nets, one per task. Each
task is scored on the validation split after every epoch, so the page can draw both heads'
curves against the single-task nets'. The tasks share the features the base learns; whether
that helps, hurts or changes nothing depends on the tasks and the weights.

References:
    Caruana 1997, "Multitask Learning", Machine Learning 28 (a shared representation, several outputs).
    Ruder 2017, "An Overview of Multi-Task Learning in Deep Neural Networks", arXiv 1706.05098 (hard
        parameter sharing, the weighted sum of task losses).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from engine import models
from engine.data.sets import Dataset, Split, relabel
from engine.errors import UserInputError
from engine.job_messages import Progress
from engine.limits import MAX_TRAIN_SECONDS
from engine.models.heads import MAIN, MultiHead
from engine.training import losses
from engine.training.config import TrainConfig
from engine.training.events import Diverged, Done, EpochEnd
from engine.training.trainer import EVAL_CHUNK, Trainer

MULTI = "multi-task"


def single_name(task: str) -> str:
    return f"{task} only"


# ----------------------------------------------------------------------------- the three networks
@dataclass(frozen=True)
class Net:
    name: str  # MULTI or "<task> only"
    config: TrainConfig
    dataset: Dataset
    tasks: dict[str, str]  # task -> the output that scores it (MAIN or a head's name)


def plan(config: TrainConfig, dataset: Dataset, *, labels: str, main_weight: float = 1.0,
         head_weight: float = 1.0, main_task: str = "class") -> list[Net]:
    """The multi-task net (λ₁ = `main_weight` on the data set's classes, called `main_task`; λ₂ =
    `head_weight` on its label set `labels`) and the two single-task nets, all from `config`."""
    if main_task == labels:
        raise UserInputError(f"the two tasks need different names; both are {labels!r}")
    single = relabel(dataset, labels)  # refuses a label set the data set does not have
    multi = dataclasses.replace(config, main_weight=main_weight,
                                heads={labels: {"weight": head_weight, "labels": labels}})
    return [Net(MULTI, multi, dataset, {main_task: MAIN, labels: labels}),
            Net(single_name(main_task), config, dataset, {main_task: MAIN}),
            Net(single_name(labels), config, single, {labels: MAIN})]


def estimate_seconds(nets: list[Net]) -> float:
    """Seconds the three should take: the multi-task net timed, the single-task nets as long (the same base)."""
    return len(nets) * Trainer(nets[0].config, nets[0].dataset).estimate_seconds()


def check_time(seconds: float) -> None:
    if seconds > MAX_TRAIN_SECONDS:
        raise UserInputError(f"the three networks would take about {seconds:.0f} s, over the {MAX_TRAIN_SECONDS} s "
                             "limit: use fewer epochs or fewer training images")


# ----------------------------------------------------------------------------- scoring each task
@contextmanager
def _features_of(model: nn.Module) -> Iterator[dict[str, Tensor]]:
    """Catches what the main classifier's last layer is fed, which every extra head is fed too."""
    seen: dict[str, Tensor] = {}
    last = next(module for name, module in reversed(list(model.named_children())) if name not in model.heads)
    handle = last.register_forward_hook(lambda module, inputs, output: seen.__setitem__("features", inputs[0]))
    try:
        yield seen
    finally:
        handle.remove()


def task_scores(model: nn.Module, x: Tensor, outputs: list[str], *, chunk: int = EVAL_CHUNK) -> dict[str, Tensor]:
    """Scores (N, K) of each output (MAIN or a head's name) for images `x`, in eval mode.

    A MultiHead returns only its main scores in eval mode; its heads are applied to the features
    its classifier was fed.
    """
    device = next(model.parameters()).device
    found: dict[str, list[Tensor]] = {name: [] for name in outputs}
    with models.evaluating(model), torch.no_grad():
        for start in range(0, len(x), chunk):
            batch = x[start:start + chunk].to(device)
            if not isinstance(model, MultiHead):
                found[MAIN].append(model(batch).cpu())  # a single-task net: its main scores are all it has
                continue
            with _features_of(model) as seen:
                main = model(batch)
            for name in outputs:
                scores = main if name == MAIN else model.get_submodule(name)(seen["features"])
                found[name].append(scores.cpu())
    return {name: torch.cat(parts) for name, parts in found.items()}


def _task_labels(net: Net, split: Split, task: str) -> Tensor:
    return split.labels[task] if net.tasks[task] != MAIN else split.y


def score_tasks(net: Net, model: nn.Module, split: Split) -> tuple[dict[str, float], dict[str, float]]:
    """(loss, accuracy) of each of the net's tasks on `split`, with the net's own loss function."""
    loss_fn = losses.build(net.config.loss, **net.config.loss_options)
    scores = task_scores(model, split.x, list(net.tasks.values()))
    task_loss, task_acc = {}, {}
    for task, output in net.tasks.items():
        labels = _task_labels(net, split, task)
        task_loss[task] = float(loss_fn(scores[output], labels))
        task_acc[task] = float((scores[output].argmax(1) == labels).float().mean())
    return task_loss, task_acc


# ----------------------------------------------------------------------------- the job
@dataclass
class TaskEpoch:
    """One epoch of one net: each task's validation loss and accuracy, and its weighted training loss."""

    net: str
    epoch: int
    val_loss: dict[str, float]
    val_acc: dict[str, float]
    weighted: dict[str, float]  # task -> λ × its mean training loss this epoch (λ₁L₁, λ₂L₂)
    kind: str = "epoch"


@dataclass
class TaskResult:
    net: str
    test_acc: dict[str, float]  # task -> accuracy on the test split
    seconds: float  # the net's own training compute; its wall time would include the others' turns
    params: int  # the multi-task net has one base for two tasks; the single-task nets one each
    kind: str = "result"


MultitaskEvent = Progress | TaskEpoch | TaskResult


@dataclass
class Record:
    """What the job reported so far, net -> task -> values; a cancelled job's record keeps its epochs."""

    val_acc: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    val_loss: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    weighted: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    test_acc: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)

    def add(self, event: MultitaskEvent) -> None:
        if isinstance(event, TaskEpoch):
            for table, values in ((self.val_acc, event.val_acc), (self.val_loss, event.val_loss),
                                  (self.weighted, event.weighted)):
                if event.epoch == 1:
                    table.pop(event.net, None)  # a net trained again starts a fresh curve
                for task, value in values.items():
                    table.setdefault(event.net, {}).setdefault(task, []).append(value)
        elif isinstance(event, TaskResult):
            self.test_acc[event.net], self.seconds[event.net] = dict(event.test_acc), event.seconds
            self.params[event.net] = event.params

    def curves(self, task: str, metric: str = "accuracy") -> dict[str, list[float]]:
        """net -> the task's validation curve, for the nets that have that task."""
        table = self.val_acc if metric == "accuracy" else self.val_loss
        return {net: tasks[task] for net, tasks in table.items() if task in tasks}


def _weighted(net: Net, terms: dict[str, float]) -> dict[str, float]:
    """λ × each task's training loss, from the Trainer's terms ("data" = L₁ unweighted, heads already × λ)."""
    return {task: net.config.main_weight * terms["data"] if output == MAIN else terms[f"head_{output}"]
            for task, output in net.tasks.items()}


def train_multitask(should_stop: Callable[[], bool] | None = None, *, nets: list[Net]) -> Iterator[MultitaskEvent]:
    """Train the nets one epoch each in turn, so their curves grow together; score every task each epoch.

    A net that diverges stops there (its curves end) and the others go on.
    """
    should_stop = should_stop or (lambda: False)
    trainers = {net.name: Trainer(net.config, net.dataset) for net in nets}
    streams = {net.name: trainers[net.name].run(should_stop) for net in nets}
    total, done = sum(net.config.epochs for net in nets), 0
    compute = dict.fromkeys(streams, 0.0)  # seconds each net spent training its epochs
    while streams:
        for net in nets:
            if net.name not in streams:
                continue
            for event in streams[net.name]:
                if should_stop():
                    return
                if isinstance(event, EpochEnd):
                    done, compute[net.name] = done + 1, compute[net.name] + event.seconds
                    loss, acc = score_tasks(net, trainers[net.name].model, net.dataset.val)
                    yield TaskEpoch(net.name, event.epoch, loss, acc, _weighted(net, event.terms))
                    yield Progress(done / total, f"{net.name}: epoch {event.epoch} of {event.epochs}")
                    break
                if isinstance(event, Diverged):
                    yield Progress(done / total, f"{net.name}: {event.message}")
                elif isinstance(event, Done):
                    _, acc = score_tasks(net, trainers[net.name].model, net.dataset.test)
                    yield TaskResult(net.name, acc, compute[net.name], models.count_params(trainers[net.name].model))
            else:
                del streams[net.name]  # the run ended: done, diverged or cancelled
