"""Pick one of this session's Runs: of one model family, or any that satisfies a test; newest by default."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from engine import models
from engine.training.runs import Run
from ui.state import runs


def session_runs(keep: Callable[[Run], bool]) -> dict[str, Run]:
    """The session's Runs for which `keep(run)` is true, oldest first."""
    return {name: run for name, run in runs().items() if keep(run)}


def family_runs(family: str) -> dict[str, Run]:
    """The session's Runs whose model is of `family` ("cnn", "vit", "mlp", …)."""
    return session_runs(lambda run: models.info(run.model_config.name).family == family)


def run_select_ui(available: dict[str, Run], *, key: str, label: str = "Run", help: str | None = None) -> Run:
    """A selectbox over `available` (not empty); the newest is chosen unless `key` already names one of them.

    A page that has just trained a run sets `st.session_state[key]` to its name before calling.
    """
    names = list(available)
    if st.session_state.get(key) not in names:
        st.session_state[key] = names[-1]
    return available[st.selectbox(label, names, key=key, help=help)]
