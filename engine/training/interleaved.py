"""Train several configurations as one job, one epoch of each in turn, so their curves grow together.

This is the function the pages hand to the job runner (engine/jobs.py): it runs in a worker, takes
the runner's `should_stop`, and after every epoch yields a snapshot of the Run as it stands.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

from engine.data.sets import Dataset
from engine.training.config import TrainConfig
from engine.training.events import BatchEnd, Done, EpochEnd, Event
from engine.training.runs import Run
from engine.training.trainer import Trainer


def snapshot(trainer: Trainer, name: str) -> Run:
    """The Run as it stands, with a model of its own: whoever receives it may use it while training goes on."""
    run = trainer.to_run(name)
    run.model = copy.deepcopy(run.model)
    return run


def train_interleaved(should_stop: Callable[[], bool], *,
                      runs: list[tuple[str, TrainConfig, Dataset]]) -> Iterator[tuple[str, Event, Run | None]]:
    """(run name, event, Run snapshot) for every event of every run; the snapshot is None on BatchEnd."""
    trainers = {name: Trainer(config, dataset) for name, config, dataset in runs}
    streams = {name: trainer.run(should_stop) for name, trainer in trainers.items()}
    while streams:
        for name in list(streams):
            for event in streams[name]:
                if isinstance(event, BatchEnd):
                    yield name, event, None
                    continue
                yield name, event, snapshot(trainers[name], name)
                if isinstance(event, EpochEnd):
                    break
                if isinstance(event, Done):
                    del streams[name]
                    break
            else:
                streams.pop(name, None)  # the generator ended early (diverged, cancelled)
