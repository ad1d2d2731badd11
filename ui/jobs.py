"""Long work from a page: submit it to the engine's job runner, follow it from a fragment, Cancel.

The convention (docs/architecture.md): a page never loops over long work inside one script run.
A button calls `start`, which submits a job and returns at once. `follow` draws the job from a
fragment that reruns every POLL_S seconds (QUEUED_POLL_S for a job that had to wait for a slot),
so the rest of the page stays usable; each poll hands the new events to the page's
`live(job, events)`, which keeps results in session state (a Run after every epoch) and draws
progress. Cancel stops the job within a second and keeps what it finished. When the job ends, one
full rerun draws the results.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from typing import Any

import streamlit as st

from engine import limits
from engine.errors import UserInputError
from engine.jobs import CANCELLED, FAILED, QUEUED, Job, JobFunction, Progress, Result, runner, with_progress

# How often a followed job's fragment reruns; each poll is a script run, times every session. A job
# that starts at once shows its result at most POLL_S after it ends (a digits run takes ~2 s); one
# that waits for a slot polls half as often, also once it runs: its fragment's timer is set when the
# page draws it, and redrawing the page when the job starts would show the run's first epochs as results.
POLL_S = 0.5
QUEUED_POLL_S = 1.0
SESSION_KEY = "jobs.session"


def session_id() -> str:
    """This browser session's id, for the runner's fairness across sessions."""
    if SESSION_KEY not in st.session_state:
        st.session_state[SESSION_KEY] = uuid.uuid4().hex
    return st.session_state[SESSION_KEY]


def start(key: str, function: JobFunction, *, label: str, estimate_s: float, **kwargs) -> Job:
    """Submit `function(should_stop, **kwargs)` under `key` (a module-level function: it runs in a
    worker process). One job per key; a new one replaces a finished one."""
    job = runner().submit(function, session=session_id(), label=label, estimate_s=estimate_s, **kwargs)
    st.session_state[f"{key}.job"] = job
    st.session_state.pop(f"{key}.outcome", None)
    return job


def start_button_ui(label: str, *, key: str, **options) -> bool:
    """A button that starts a job (`options` as st.button's). Once pressed it leaves the page in the
    same run: the job's progress and Cancel take its place, where it stayed, pressable for nothing,
    until the job ended."""
    slot = st.empty()
    pressed = slot.button(label, key=key, **options)
    if pressed:
        slot.empty()
    return pressed


def current(key: str) -> Job | None:
    """The job started under `key` that has not been followed to its end yet."""
    return st.session_state.get(f"{key}.job")


def _format_wait(seconds: float) -> str:
    return "any moment now" if seconds < 1 else f"in {format_seconds(seconds)}"


def _queued_ui(job: Job) -> None:
    st.info(f"Waiting for a free slot: **{job.position()}.** in line, starts {_format_wait(job.estimated_start_s())} "
            f"({runner().status()}).", icon=":material/hourglass_top:")


def _end(key: str, job: Job) -> None:
    """Record how the job ended, for `outcome` on the full rerun that follows."""
    del st.session_state[f"{key}.job"]
    if job.state == FAILED:
        message = str(job.error) if isinstance(job.error, UserInputError) else (
            f"{job.label} failed: {type(job.error).__name__}: {job.error}. Your earlier results are kept.")
        st.session_state[f"{key}.outcome"] = ("error", message)
    elif job.state == CANCELLED:
        st.session_state[f"{key}.outcome"] = ("cancelled", f"{job.label}: cancelled. What finished is kept.")
    else:
        st.session_state[f"{key}.outcome"] = ("done", "")


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.1f} min"


def too_long_ui(estimate_s: float, advice: str) -> bool:
    """Say how long the work should take; over the training limit, warn with `advice` (what to shrink)
    and return True: the caller then disables its start button."""
    st.caption(f"Estimated time on this machine: **{format_seconds(estimate_s)}**.")
    too_long = estimate_s > limits.MAX_TRAIN_SECONDS
    if too_long:
        st.warning(f"That is over the {limits.MAX_TRAIN_SECONDS} s limit: {advice}.")
    return too_long


def outcome_ui(key: str) -> None:
    """Say how the job last followed to its end under `key` ended, unless it simply finished."""
    ended = st.session_state.get(f"{key}.outcome")  # ("done" | "cancelled" | "error", message)
    if ended is not None and ended[0] != "done":
        (st.error if ended[0] == "error" else st.info)(ended[1])


def follow(key: str, live: Callable[[Job, list], None]) -> bool:
    """Draw the job under `key` while it waits or runs; True while there is one.

    `live(job, events)` gets the events that arrived since the last poll (an empty list too, so it
    can redraw) and draws the live view; it runs inside the fragment.
    """
    job = current(key)
    if job is None:
        return False

    @st.fragment(run_every=QUEUED_POLL_S if job.state == QUEUED else POLL_S)
    def _poll() -> None:
        finished = job.finished_state  # read first: a finished job's events are all in
        if job.state == QUEUED:
            _queued_ui(job)
        live(job, job.drain())
        if finished:
            _end(key, job)
            st.rerun()  # the whole page: results below the panel, the panel's button back
        elif st.button("Cancel", key=f"{key}.cancel", icon=":material/stop:",
                       help="Stop now; what finished (every finished epoch) is kept."):
            job.cancel()

    _poll()
    return True


def computed(slot: str, key: Hashable, work: Callable[..., Any], *, label: str, estimate_s: float = 5.0,
             start_button: str | None = None, start_help: str | None = None, **kwargs) -> Any | None:
    """The result of `work(**kwargs, progress=…)` for `key`, computed as a job; None until it is there.

    Starts the job when `key` has no result yet — at once, or when the user presses `start_button`
    (key `{slot}.start`) — and cancels a job for an older key (its inputs changed). Draws progress
    and Cancel meanwhile and keeps one result per `slot` in the session. After a Cancel or a
    failure it says so and waits for "Compute again" instead of starting over.
    """
    stored = st.session_state.get(f"{slot}.result")
    if stored is not None and stored[0] == key:
        return stored[1]
    job = current(slot)
    if job is not None and st.session_state.get(f"{slot}.for") != key:
        job.cancel()
        del st.session_state[f"{slot}.job"]
        job = None
    if job is None and start_button is not None and st.session_state.get(f"{slot}.asked") != key:
        if not start_button_ui(start_button, type="primary", key=f"{slot}.start", help=start_help):
            return None
        st.session_state[f"{slot}.asked"] = key
    if job is None:
        ended = st.session_state.get(f"{slot}.ended")  # (key, "cancelled" | "failed") of the last job
        if ended is not None and ended[0] == key:
            outcome_ui(slot)
            if not start_button_ui(f"Compute again: {label}", key=f"{slot}.again", icon=":material/refresh:"):
                return None
        start(slot, with_progress, label=label, estimate_s=estimate_s, work=work, **kwargs)
        st.session_state[f"{slot}.for"] = key
        st.session_state.pop(f"{slot}.ended", None)
        st.session_state.pop(f"{slot}.progress", None)

    def keep(event) -> None:
        if isinstance(event, Result):
            st.session_state[f"{slot}.result"] = (key, event.value)

    def ended(job: Job) -> None:
        if job.state in (CANCELLED, FAILED):
            st.session_state[f"{slot}.ended"] = (key, job.state)

    follow(slot, progress_live(slot, keep, starting=f"{label}…", after=ended))
    return None


def progress_live(key: str, handle: Callable[[Any], None], *, starting: str = "Starting…",
                  after: Callable[[Job], None] | None = None) -> Callable[[Job, list], None]:
    """A live view for `follow`: every event goes to `handle`, except the engine's Progress events,
    whose last is kept (under `{key}.progress`) and drawn as a bar while the job runs; then `after(job)`."""
    def live(job: Job, events: list) -> None:
        for event in events:
            if isinstance(event, Progress):
                st.session_state[f"{key}.progress"] = event
            else:
                handle(event)
        if after is not None:
            after(job)
        last = st.session_state.get(f"{key}.progress")
        if not job.finished_state and job.state != QUEUED:
            st.progress(min(1.0, last.fraction) if last else 0.0, text=last.message if last else starting)
    return live
