"""Train one or several configurations with a time estimate, progress, live curves and Cancel.

Training is one job of the engine's job runner (ui/jobs.py, engine.training.interleaved), so the
page stays usable while it waits for a slot or runs. The job trains its configurations one epoch of
each in turn, so their curves grow together, and hands back a snapshot of each Run after every
epoch, which is stored at once: Cancel keeps every finished epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import plotly.graph_objects as go
import streamlit as st

from engine.data.sets import Dataset
from engine.errors import UserInputError
from engine.jobs import Job as RunnerJob
from engine.training.config import TrainConfig
from engine.training.events import BatchEnd, Diverged, Stopped, Warned
from engine.training.interleaved import train_interleaved
from engine.training.trainer import Trainer
from ui import jobs
from ui.figures.train import learning_curves, refill_learning_curves
from ui.sidebar import presenter_mode
from ui.state import runs, store_run, unique_run_name

FIGURES_KEY = "train_panel.figures"  # (metric, presenter, run names) -> the learning-curve figure drawn last
MAX_FIGURES = 16


@dataclass
class Job:
    """One configuration to train: the Run's name, the config and the data set."""

    name: str
    config: TrainConfig
    dataset: Dataset


@dataclass
class _Live:
    """What the panel knows about its training job between polls."""

    datasets: dict[str, Dataset]  # run name -> its data set
    done_steps: dict[str, int] = field(default_factory=dict)
    total_steps: dict[str, int] = field(default_factory=dict)
    text: str = "Waiting for a free slot…"
    messages: list[tuple[str, str]] = field(default_factory=list)  # ("error" | "info" | "warning", text)


def _estimate(job: Job) -> float:
    """Seconds the job should take; cached per configuration for the session."""
    cache = st.session_state.setdefault("train_panel.estimates", {})
    key = json.dumps([job.config.to_dict(), job.dataset.name, job.dataset.image_size], sort_keys=True, default=str)
    if key not in cache:
        cache[key] = Trainer(job.config, job.dataset).estimate_seconds()
    return cache[key]


def curves_figure(histories: dict, metric: str) -> go.Figure:
    """The learning curves of `histories`: the figure this session last drew for the same runs, with
    their new numbers put in, else a new one.

    Plotly validates every property it is given, so building a figure takes ~15 ms of the server's
    CPU: a live chart polls its job every second (two figures a poll, times every session training),
    and the same curves are drawn by the last poll, the results and the runs table.
    """
    store: dict = st.session_state.setdefault(FIGURES_KEY, {})
    key = (metric, presenter_mode(), tuple(histories))
    figure = store.pop(key, None)
    if figure is None or not refill_learning_curves(figure, histories, metric):
        figure = learning_curves(histories, metric, presenter=key[1])
    store[key] = figure  # the newest last; the oldest goes
    while len(store) > MAX_FIGURES:
        store.pop(next(iter(store)))
    return figure


def curves_ui(histories: dict, *, key: str) -> None:
    """Loss and accuracy curves side by side, one colour per run."""
    left, right = st.columns(2)
    for column, metric in ((left, "loss"), (right, "acc")):
        column.plotly_chart(curves_figure(histories, metric), width="stretch", key=f"{key}.{metric}")


def _live_ui(key: str, job: RunnerJob, events: list) -> None:
    """Store what arrived, then draw progress, the curves so far and any messages."""
    live: _Live = st.session_state[f"{key}.live"]
    for name, event, run in events:
        if isinstance(event, BatchEnd):
            live.done_steps[name], live.total_steps[name] = event.step, event.total_steps
            live.text = f"{name}: epoch {event.epoch}, loss {event.loss:.3f}"
            continue
        store_run(run, live.datasets[name])
        if isinstance(event, Diverged):
            live.messages.append(("error", f"**{name}**: {event.message} The run keeps its last good weights."))
        elif isinstance(event, Stopped) and event.reason != "cancelled":
            live.messages.append(("info", f"**{name}**: stopped — {event.reason}."))
        elif isinstance(event, Warned):
            live.messages.append(("warning", f"**{name}**: {event.message}."))
    if job.finished_state:
        st.session_state[f"{key}.ended"] = list(live.datasets)
        return
    expected = sum(live.total_steps.values()) * len(live.datasets) / max(1, len(live.total_steps))
    st.progress(min(1.0, sum(live.done_steps.values()) / max(1, expected)), text=live.text)
    histories = {n: runs()[n].history for n in live.datasets if n in runs()}
    if histories:
        curves_ui(histories, key=f"{key}.live")
    _messages_ui(live)


def _messages_ui(live: _Live) -> None:
    for kind, message in live.messages:
        getattr(st, kind)(message)


def _start(jobs_to_train: list[Job], key: str, estimate: float) -> None:
    named = [(unique_run_name(job.name), job.config, job.dataset) for job in jobs_to_train]
    st.session_state[f"{key}.live"] = _Live(datasets={name: dataset for name, _, dataset in named})
    label = named[0][0] if len(named) == 1 else f"{len(named)} runs"
    jobs.start(key, train_interleaved, label=f"Training {label}", estimate_s=estimate, runs=named)


def train_panel_ui(jobs_to_train: list[Job], *, key: str = "train", label: str = "Train") -> list[str]:
    """Draw the Train button, or the training job while it waits or runs.

    Returns the names of the Runs of a training job on the first run after it ended (finished or
    cancelled), else [].
    """
    if jobs.follow(key, lambda job, events: _live_ui(key, job, events)):
        return []
    ended = st.session_state.pop(f"{key}.ended", [])
    jobs.outcome_ui(key)
    if f"{key}.live" in st.session_state:
        _messages_ui(st.session_state[f"{key}.live"])
    try:
        estimate = sum(_estimate(job) for job in jobs_to_train)
    except UserInputError as error:
        st.error(str(error))
        return ended
    too_long = jobs.too_long_ui(estimate, "use fewer epochs, a smaller model or smaller images")
    if jobs.start_button_ui(label, type="primary", disabled=too_long, key=f"{key}.start"):
        _start(jobs_to_train, key, estimate)
        jobs.follow(key, lambda job, events: _live_ui(key, job, events))
    return ended
