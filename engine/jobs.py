"""The job runner: long work (training, landscapes, searches) queued fairly and run in a few slots.

A job is a function that takes a `should_stop()` callable and yields events (the engine's event
dataclasses). `JobRunner.submit` returns a `Job` handle at once; a worker thread runs it when a slot
is free. The page polls `job.drain()` from a fragment, so it stays usable while the job waits or
runs, and `job.cancel()` stops it between two events (a queued job never starts).

Fairness: when a slot frees, the next job comes from the session with the fewest running jobs,
then from the session served longest ago (round robin) — one session's ten queued runs do not
starve another's first. Threads, not processes: a job's models and tensors stay in this process for the page that
asked for them, and torch's kernels release the GIL, so a thread per slot keeps the cores busy.

References:
    Python `concurrent.futures` (the handle shape), Ray's `ray.cancel` (cancel before start).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.errors import UserInputError

SLOTS_ENV = "VISIONEXPLORER_SLOTS"  # concurrent jobs per server process
QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
FINISHED = (DONE, CANCELLED, FAILED)
CANCEL_GRACE_S = 0.5  # a cancelled job that keeps yielding is closed after this long

JobFunction = Callable[[Callable[[], bool]], Iterator[Any]]


def default_slots() -> int:
    """`$VISIONEXPLORER_SLOTS`, else half the cores (the server and the browsers need the rest)."""
    wanted = os.environ.get(SLOTS_ENV)
    return max(1, int(wanted) if wanted else (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class RunnerStatus:
    slots: int
    running: int
    queued: int

    def __str__(self) -> str:
        return f"{self.running} of {self.slots} slot{'s' if self.slots != 1 else ''} busy, {self.queued} waiting"


@dataclass(eq=False)
class Job:
    """A handle on one submitted job; every method is safe to call from any thread."""

    id: int
    session: str
    label: str
    function: JobFunction = field(repr=False)
    estimate_s: float  # the submitter's estimate of the run time, for queue waiting times
    runner: JobRunner = field(repr=False)
    state: str = QUEUED
    error: BaseException | None = None  # what a failed job raised (a UserInputError is the user's)
    error_trace: str = ""
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    _events: deque = field(default_factory=deque, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _cancel_time: float = 0.0

    def drain(self) -> list[Any]:
        """The events produced since the last call, in order."""
        out = []
        while self._events:
            out.append(self._events.popleft())
        return out

    def cancel(self) -> None:
        """Ask the job to stop (it sees `should_stop()` turn True); a queued job never starts."""
        if not self._cancel.is_set():
            self._cancel_time = time.monotonic()
        self._cancel.set()
        self.runner._cancel_queued(self)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished_state(self) -> bool:
        return self.state in FINISHED

    def position(self) -> int:
        """1 for the next job to start, 0 once it started."""
        return self.runner._position(self)

    def estimated_start_s(self) -> float:
        """Seconds until a slot should be free for this job (0 once it started)."""
        return self.runner._estimated_start(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is finished (for scripts and tests); True if it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.runner._changed:
            while not self.finished_state:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self.runner._changed.wait(left)
        return True


class JobRunner:
    """A bounded number of worker slots and a queue that is fair across sessions."""

    def __init__(self, slots: int | None = None):
        self.slots = default_slots() if slots is None else int(slots)
        if self.slots < 1:
            raise UserInputError(f"the job runner needs at least 1 slot; got {self.slots}")
        self._queue: list[Job] = []
        self._running: list[Job] = []
        self._last_start: dict[str, float] = {}  # session -> when its last job started
        self._changed = threading.Condition()
        self._ids = itertools.count(1)

    # ---- submitting and looking -----------------------------------------------------------------
    def submit(self, function: JobFunction, *, session: str, label: str = "job", estimate_s: float = 1.0) -> Job:
        job = Job(next(self._ids), session, label, function, max(0.0, float(estimate_s)), self)
        with self._changed:
            self._queue.append(job)
            self._start_ready()
        return job

    def status(self) -> RunnerStatus:
        with self._changed:
            return RunnerStatus(self.slots, len(self._running), len(self._queue))

    # ---- scheduling (called with the lock held) ------------------------------------------------------
    def _pick(self, queue: list[Job], running: list[Job], last_start: dict[str, float]) -> Job:
        """Round robin over sessions: fewest running jobs first, then the session served longest ago."""
        busy: dict[str, int] = {}
        for job in running:
            busy[job.session] = busy.get(job.session, 0) + 1
        first_of_session: dict[str, Job] = {}
        for job in queue:  # the queue is in submission order
            first_of_session.setdefault(job.session, job)
        return min(first_of_session.values(),
                   key=lambda j: (busy.get(j.session, 0), last_start.get(j.session, -1.0), j.submitted, j.id))

    def _start_ready(self) -> None:
        while self._queue and len(self._running) < self.slots:
            job = self._pick(self._queue, self._running, self._last_start)
            self._queue.remove(job)
            job.state, job.started = RUNNING, time.monotonic()
            self._last_start[job.session] = job.started
            self._running.append(job)
            threading.Thread(target=self._work, args=(job,), name=f"job-{job.id}", daemon=True).start()

    def _order(self) -> list[Job]:
        """The queue in the order its jobs would start if nothing else arrived."""
        queue, running, last_start, order = list(self._queue), list(self._running), dict(self._last_start), []
        while queue:
            job = self._pick(queue, running, last_start)
            queue.remove(job)
            running.append(job)
            last_start[job.session] = time.monotonic() + len(order)  # later than any real start
            order.append(job)
        return order

    def _position(self, job: Job) -> int:
        with self._changed:
            if job.state != QUEUED:
                return 0
            return self._order().index(job) + 1

    def _estimated_start(self, job: Job) -> float:
        """Simulate the slots: running jobs free theirs at their estimates, queued ones in order."""
        with self._changed:
            if job.state != QUEUED:
                return 0.0
            now = time.monotonic()
            free_at = sorted(max(0.0, j.estimate_s - (now - (j.started or now))) for j in self._running)
            free_at += [0.0] * (self.slots - len(free_at))
            for queued in self._order():
                free_at.sort()
                start = free_at[0]
                if queued is job:
                    return start
                free_at[0] = start + queued.estimate_s
        return 0.0

    def _cancel_queued(self, job: Job) -> None:
        with self._changed:
            if job in self._queue:
                self._queue.remove(job)
                job.state, job.finished = CANCELLED, time.monotonic()
                self._changed.notify_all()

    # ---- the worker ----------------------------------------------------------------------------------
    def _work(self, job: Job) -> None:
        """Run the job; after Cancel it gets CANCEL_GRACE_S to finish on its own (and say so in an
        event, keeping its finished epochs) before the generator is closed."""
        state, events = DONE, job.function(job._cancel.is_set)
        try:
            for event in events:
                job._events.append(event)
                if job._cancel.is_set() and time.monotonic() - job._cancel_time > CANCEL_GRACE_S:
                    break
            state = CANCELLED if job._cancel.is_set() else DONE
        except Exception as error:  # reported on the handle; the page shows it
            job.error, job.error_trace, state = error, traceback.format_exc(), FAILED
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            with self._changed:
                job.state, job.finished = state, time.monotonic()
                self._running.remove(job)
                self._start_ready()
                self._changed.notify_all()


_runner: JobRunner | None = None
_runner_lock = threading.Lock()


def runner() -> JobRunner:
    """The server process's one runner, made on first use."""
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = JobRunner()
        return _runner
