"""What a worker and the server say about one job: its states, its events, and the messages that carry them.

The local worker processes (engine.jobs) and the Ray tasks (engine.jobs_ray) speak the same protocol:
a worker runs `job_messages` on a pickled `(function, kwargs)` and the server applies each message to
the job's handle with `delivered`.
"""

from __future__ import annotations

import pickle
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
FINISHED = (DONE, CANCELLED, FAILED)
CANCEL_GRACE_S = 0.5  # a cancelled job that keeps yielding is closed after this long

JobFunction = Callable[..., Iterator[Any]]


@dataclass(frozen=True)
class Progress:
    """The event of every long job that reports how far it got: `fraction` of its work, 0…1."""

    fraction: float
    message: str
    kind: str = "progress"


def job_events(function: JobFunction, kwargs: dict, should_stop: Callable[[], bool]) -> Iterator[Any]:
    """One job's events; after a cancel it has CANCEL_GRACE_S to end on its own."""
    events = function(should_stop=should_stop, **kwargs)
    cancelled_at = None
    try:
        for event in events:
            yield event
            if should_stop():
                cancelled_at = cancelled_at or time.monotonic()
                if time.monotonic() - cancelled_at > CANCEL_GRACE_S:
                    break
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def run_events(function: JobFunction, kwargs: dict, should_stop: Callable[[], bool],
               emit: Callable[[Any], None]) -> None:
    """Drive one job in this thread: `emit` each of its events."""
    for event in job_events(function, kwargs, should_stop):
        emit(event)


def job_messages(job: bytes, should_stop: Callable[[], bool],
                 dumps: Callable[[tuple[str, Any]], bytes]) -> Iterator[bytes]:
    """What a worker sends about one pickled `(function, kwargs)`, each message pickled by `dumps`:
    ("event", event) for each event, then ("end", None) or ("error", (error, traceback text)).
    An event that does not pickle fails the job like an exception would."""
    try:
        function, kwargs = pickle.loads(job)
        for event in job_events(function, kwargs, should_stop):
            yield dumps(("event", event))
        yield dumps(("end", None))
    except Exception as error:
        yield dumps(("error", (_picklable(error), traceback.format_exc())))


def _picklable(error: Exception) -> Exception:
    """`error` itself if it pickles, else its text."""
    try:
        pickle.dumps(error)
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def delivered(job, kind: str, payload: Any) -> str | None:
    """Apply one message of `job_messages` to `job` (an engine.jobs.Job) on the server's side: the job's
    final state once it ended, else None."""
    if kind == "event":
        job._events.append(payload)
        return None
    if kind == "error":
        job.error, job.error_trace = payload
        return FAILED
    return CANCELLED if job._cancel.is_set() else DONE
