"""Train one or several configurations with a time estimate, progress, live curves and Cancel.

Several jobs are interleaved epoch by epoch so their curves grow together. Each Run is stored
after every epoch, so Cancel (which reruns the script and ends the loop) keeps all finished epochs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import streamlit as st

from engine.data.sets import Dataset
from engine.errors import UserInputError
from engine.limits import MAX_TRAIN_SECONDS
from engine.training.trainer import BatchEnd, Diverged, Done, EpochEnd, Stopped, TrainConfig, Trainer
from ui.figures.train import learning_curves
from ui.sidebar import presenter_mode
from ui.state import runs, store_run, unique_run_name

REDRAW_SECONDS = 0.25  # progress redraws at most this often: drawing costs more than a small batch


@dataclass
class Job:
    name: str
    config: TrainConfig
    dataset: Dataset


def _estimate(job: Job) -> float:
    """Seconds the job should take; cached per configuration for the session."""
    cache = st.session_state.setdefault("train_panel.estimates", {})
    key = json.dumps([job.config.to_dict(), job.dataset.name, job.dataset.image_size], sort_keys=True, default=str)
    if key not in cache:
        cache[key] = Trainer(job.config, job.dataset).estimate_seconds()
    return cache[key]


def _format_seconds(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.1f} min"


def _mark_cancelled(key: str) -> None:
    """A Cancel click reran the script mid-loop: say so on the runs that were cut short."""
    for name in st.session_state.pop(f"{key}.active", []):
        run = runs().get(name)
        if run is not None and run.history.test_acc is None:
            run.history.stopped_reason = "cancelled"
    st.info("Training cancelled. Every finished epoch is kept: the runs below stop where you cancelled.")


def curves_ui(histories: dict, *, key: str) -> None:
    """Loss and accuracy curves side by side, one colour per run."""
    left, right = st.columns(2)
    for column, metric in ((left, "loss"), (right, "acc")):
        figure = learning_curves(histories, metric, presenter=presenter_mode())
        column.plotly_chart(figure, width="stretch", key=f"{key}.{metric}")


def _draw_curves(slot, histories: dict) -> None:
    with slot.container():
        curves_ui(histories, key=f"live.{time.monotonic_ns()}")  # a fresh key per redraw of the slot


def train_panel_ui(jobs: list[Job], *, key: str = "train", label: str = "Train") -> list[str]:
    """Draw the Train button and, when clicked, train `jobs`; returns the names of the Runs trained now."""
    if st.session_state.get(f"{key}.cancel"):
        _mark_cancelled(key)
    try:
        estimate = sum(_estimate(job) for job in jobs)
    except UserInputError as error:
        st.error(str(error))
        return []
    too_long = estimate > MAX_TRAIN_SECONDS
    st.caption(f"Estimated time on this machine: **{_format_seconds(estimate)}**.")
    if too_long:
        st.warning(f"That is over the {MAX_TRAIN_SECONDS // 60} min limit: use fewer epochs, "
                   "a smaller model or smaller images.")
    if not st.button(label, type="primary", disabled=too_long, key=f"{key}.start"):
        return []
    return _train(jobs, key)


def _train(jobs: list[Job], key: str) -> list[str]:
    cancel = st.empty()
    cancel.button("Cancel", key=f"{key}.cancel", help="Stop now; finished epochs are kept.")
    progress = st.progress(0.0, text="Starting…")
    curves = st.empty()
    trainers = {}
    for job in jobs:
        name = unique_run_name(job.name)
        trainers[name] = Trainer(job.config, job.dataset)
    st.session_state[f"{key}.active"] = list(trainers)
    streams = {name: trainer.run() for name, trainer in trainers.items()}
    total_steps = sum(t.steps_per_epoch * t.config.epochs for t in trainers.values())
    done_steps: dict[str, int] = dict.fromkeys(trainers, 0)
    last_draw = 0.0
    while streams:
        for name in list(streams):  # one epoch of each job per round
            for event in streams[name]:
                if isinstance(event, BatchEnd):
                    done_steps[name] = event.step
                    if time.monotonic() - last_draw > REDRAW_SECONDS:
                        progress.progress(min(1.0, sum(done_steps.values()) / total_steps),
                                          text=f"{name}: epoch {event.epoch}, loss {event.loss:.3f}")
                        last_draw = time.monotonic()
                    continue
                store_run(trainers[name].to_run(name), trainers[name].dataset)
                if isinstance(event, EpochEnd):
                    _draw_curves(curves, {n: t.history for n, t in trainers.items()})
                    break
                if isinstance(event, Diverged):
                    st.error(f"**{name}**: {event.message} The run keeps its last good weights.")
                elif isinstance(event, Stopped) and event.reason != "cancelled":
                    st.info(f"**{name}**: stopped — {event.reason}.")
                elif isinstance(event, Done):
                    del streams[name]
                    break
            else:
                streams.pop(name, None)  # the generator ended (diverged)
    progress.progress(1.0, text="Done.")
    curves.empty()  # the results below show the finished curves
    cancel.empty()
    st.session_state.pop(f"{key}.active", None)
    return list(trainers)
