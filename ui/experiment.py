"""An experiment of several trainings as one job: its estimate, a start button, progress, Cancel.

For the pages whose job yields results as it goes (an ensemble's members, the multi-task nets'
epochs): each event is handed to the page's `keep(plan_key, event)` as it arrives, with the key of
the set-up the job was started for (the controls may have changed since), so what finished stays
after a Cancel; the engine's Progress events move the bar.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from engine.errors import UserInputError
from engine.jobs import JobFunction
from ui import jobs


def _progress_ui(key: str, keep: Callable[[str, object], None]):
    return jobs.progress_live(key, lambda event: keep(st.session_state[f"{key}.for"], event))


def _estimate(key: str, plan_key: str, estimate: Callable[[], float]) -> float:
    """Seconds the experiment should take, measured once per set-up (`plan_key`) for the session."""
    cache = st.session_state.setdefault(f"{key}.estimates", {})
    if plan_key not in cache:
        cache[plan_key] = estimate()
    return cache[plan_key]


def experiment_ui(key: str, function: JobFunction, *, label: str, button: str, plan_key: str,
                  estimate: Callable[[], float], keep: Callable[[str, object], None], needed: bool = True,
                  **kwargs) -> bool:
    """The job under `key` while it waits or runs (True), else its estimate and start button (False).

    `estimate()` gives the seconds it should take (measured once per `plan_key`); over the training
    limit the button is disabled. Without `needed` (everything is done) no button is drawn, but a
    job still running is followed. `kwargs` go to `function` in the worker.
    """
    if jobs.follow(key, _progress_ui(key, keep)):
        return True
    jobs.outcome_ui(key)
    if not needed:
        return False
    try:
        seconds = _estimate(key, plan_key, estimate)
    except UserInputError as error:
        st.error(str(error))
        return False
    too_long = jobs.too_long_ui(seconds, "fewer networks, fewer epochs or fewer images per class")
    if jobs.start_button_ui(button, type="primary", disabled=too_long, key=f"{key}.start"):
        st.session_state.pop(f"{key}.progress", None)
        st.session_state[f"{key}.for"] = plan_key
        jobs.start(key, function, label=label, estimate_s=seconds, **kwargs)
        jobs.follow(key, _progress_ui(key, keep))
        return True
    return False
