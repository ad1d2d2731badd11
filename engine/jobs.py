"""The job runner: long work (training, landscapes, searches) queued fairly and run in a few slots.

A job is a module-level function `function(should_stop=…, **kwargs)` that yields events (the engine's
event dataclasses). `JobRunner.submit` returns a `Job` handle at once; the job runs when a slot is
free. A page polls `job.drain()` from a fragment, so it stays usable while the job waits or runs,
and `job.cancel()` makes `should_stop()` true (a queued job never starts).

Fairness: when a slot frees, the next job comes from the session with the fewest running jobs,
then from the session served longest ago (round robin) — one session's ten queued runs do not
starve another's first.

Workers are processes by default, one per slot, each with a fixed number of torch threads.
Measured on 2 cores: a training thread inside the server process ran 30× slower than alone while
two browser sessions polled their progress, because each of its many small torch ops waits for
the GIL the server's Python holds (the "convoy" effect); a worker process has a GIL of its own.
A fixed thread count also makes a seed give the same result whether the server is busy or idle.
Where the machine has CPUs to spare, the workers keep to CPUs of their own (`worker_cpus`) and the
app server to the others (`JobRunner.keep_server_apart`), so a class's page runs do not slow its
training jobs.
`workers="thread"` runs jobs in threads of this process (tests of the queue; a debugger), and
`workers="ray"` (chosen when `$VISIONEXPLORER_RAY_ADDRESS` is set) runs them on a Ray cluster
(engine/jobs_ray.py); the queue stays here either way.

Messages to and from a worker are plain pickles (tensors by value). torch's own reductions pass
each tensor as a file descriptor through a side connection per tensor; with a Run snapshot in every
event, eight sessions at once deadlocked the worker and the server on those connections.

References:
    Python `concurrent.futures` (the handle shape); D. Beazley, "Understanding the Python GIL" (2010),
    the convoy effect.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import multiprocessing
import os
import pickle
import queue
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from engine import limits
from engine.device import RAY_ADDRESS_ENV
from engine.errors import UserInputError
from engine.job_messages import (CANCELLED, DONE, FAILED, FINISHED, QUEUED, RUNNING, JobFunction, Progress,
                                 delivered, job_messages, run_events)

SLOTS_ENV = "VISIONEXPLORER_SLOTS"  # concurrent jobs per server process
WORKERS_ENV = "VISIONEXPLORER_WORKERS"  # "process" (default), "thread" or "ray"
PIN_ENV = "VISIONEXPLORER_PIN_WORKERS"  # "1" (default): worker processes keep to CPUs of their own; "0": not
WORKER_KINDS = ("process", "thread", "ray")
WORKER_POLL_S = 0.5  # how often a worker's listener checks that its process is alive, and vice versa

def default_slots(offered: int | None = None) -> int:
    """`$VISIONEXPLORER_SLOTS`, else what a cluster `offered`, else half the cores (the server and the
    browsers need the rest)."""
    wanted = os.environ.get(SLOTS_ENV)
    return max(1, int(wanted) if wanted else offered or (os.cpu_count() or 2) // 2)


def threads_per_job(slots: int) -> int:
    """`$VISIONEXPLORER_THREADS`, else the half of the cores that jobs get, shared by the slots."""
    wanted = os.environ.get("VISIONEXPLORER_THREADS")
    return max(1, int(wanted) if wanted else (os.cpu_count() or 2) // 2 // slots)


def worker_cpus(slots: int, threads: int) -> frozenset[int] | None:
    """The CPUs that worker processes keep to: the last `slots × threads` of this process's CPUs, when
    that leaves at least one for the server (`JobRunner.keep_server_apart`); None (anywhere) when it
    does not, or `$VISIONEXPLORER_PIN_WORKERS` is 0, or the system cannot pin.

    Why: left free, the scheduler moves a training job between CPUs and lets it share one with the
    server's page runs whenever a class's sessions poll at once. Measured (benchmarks/README.md, 30
    sessions pressing Train at once on 2 CPUs): the storm took 67.7–70.7 s with nothing pinned,
    60.6–65.1 s with the workers pinned, 57.4–58.7 s with the server kept to the other CPU as well.
    Several servers with local workers on one machine would all pick the same CPUs: set it to 0 there.
    """
    if os.environ.get(PIN_ENV, "1") == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    wanted = slots * threads
    return frozenset(allowed[-wanted:]) if wanted < len(allowed) else None


def _hold_threads(cpus: frozenset[int]) -> None:
    """Hold every thread of this process to `cpus`; threads started later inherit it from the thread
    that starts them. Until no thread is left out: one may be started meanwhile by a thread not yet
    held. (A spawned worker has a second thread before its first line runs: torch's, started when
    unpickling its target imported engine.jobs.)"""
    while strays := [thread for thread in map(int, os.listdir("/proc/self/task"))
                     if _cpus_of(thread) not in (cpus, None)]:
        for thread in strays:
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(thread, cpus)


def _cpus_of(thread: int) -> frozenset[int] | None:
    """The CPUs `thread` may run on; None once it has ended."""
    try:
        return frozenset(os.sched_getaffinity(thread))
    except ProcessLookupError:
        return None


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
    kwargs: dict = field(repr=False)
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

    def drain(self) -> list[Any]:
        """The events produced since the last call, in order."""
        out = []
        while self._events:
            out.append(self._events.popleft())
        return out

    def cancel(self) -> None:
        """Ask the job to stop (it sees `should_stop()` turn true); a queued job never starts."""
        self._cancel.set()
        self.runner._cancelled(self)

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


# ---- functions that report progress through a callback ---------------------------------------------------
@dataclass(frozen=True)
class Result:
    value: Any
    kind: str = "result"


class _Stopped(Exception):
    """Raised inside a progress callback once the job is cancelled, to end the computation."""


STOP_POLL_S = 0.05  # how often a job waiting on a step it cannot interrupt looks at should_stop


def _until_stopped(should_stop: Callable[[], bool], done: queue.SimpleQueue) -> Any:
    """The next item of `done`, or _Stopped once `should_stop()` is true first."""
    while True:
        try:
            return done.get(timeout=STOP_POLL_S)
        except queue.Empty:
            if should_stop():
                raise _Stopped from None


def unless_stopped(should_stop: Callable[[], bool], function: Callable[..., Any], /, *args, **kwargs) -> Any:
    """`function(*args, **kwargs)`, or None when `should_stop()` turns true first.

    For a step of a job that cannot look at should_stop itself (a scikit-learn fit, t-SNE): it runs
    in a thread, and a Cancel ends the wait at once; the step then finishes in the background and
    its value is dropped (CPU time it still takes, but the page is free within a second).
    """
    done: queue.SimpleQueue = queue.SimpleQueue()

    def run() -> None:
        try:
            done.put((True, function(*args, **kwargs)))
        except BaseException as error:  # handed to the job's own thread
            done.put((False, error))

    threading.Thread(target=run, name="job-step", daemon=True).start()
    try:
        ok, value = _until_stopped(should_stop, done)
    except _Stopped:
        return None
    if not ok:
        raise value
    return value


def with_progress(should_stop: Callable[[], bool], *, work: Callable[..., Any], **kwargs) -> Iterator[Any]:
    """A job around `work(**kwargs, progress=callback)`: yields Progress events, then one Result.

    `work` runs in a thread of the worker so its callback can hand events to this generator; it
    also gets `should_stop` when it takes one (to look more often than it reports). After a cancel
    the callback raises, which ends `work` at its next report, and this generator ends at once
    without a Result (what `work` returns after a stop is partial), even while `work` is in a step
    it cannot interrupt (see `unless_stopped`).
    """
    reports: queue.SimpleQueue = queue.SimpleQueue()
    outcome: dict[str, Any] = {}
    if "should_stop" in inspect.signature(work).parameters:
        kwargs["should_stop"] = should_stop

    def report(fraction: float, message: str) -> None:
        if should_stop():
            raise _Stopped
        reports.put(Progress(float(fraction), str(message)))

    def compute() -> None:
        try:
            outcome["value"] = work(**kwargs, progress=report)
        except _Stopped:
            pass
        except Exception as error:
            outcome["error"] = error
        finally:
            reports.put(None)

    threading.Thread(target=compute, name="job-compute", daemon=True).start()
    try:
        while (event := _until_stopped(should_stop, reports)) is not None:
            yield event
    except _Stopped:
        return
    if should_stop():  # what work returned or raised after a stop is not its answer
        return
    if "error" in outcome:
        raise outcome["error"]
    if "value" in outcome:
        yield Result(outcome["value"])


# ---- workers ---------------------------------------------------------------------------------------
class _ThreadWorker:
    """Runs a job in a thread of this process."""

    def start(self, job: Job, finish: Callable[[Job, str], None]) -> None:
        def work() -> None:
            try:
                run_events(job.function, job.kwargs, job._cancel.is_set, job._events.append)
                state = CANCELLED if job._cancel.is_set() else DONE
            except Exception as error:  # reported on the handle; the page shows it
                job.error, job.error_trace, state = error, traceback.format_exc(), FAILED
            finish(job, state)

        threading.Thread(target=work, name=f"job-{job.id}", daemon=True).start()

    def cancel(self, job: Job) -> None:
        """The thread reads `job._cancel` itself."""


def _process_main(tasks, events, cancel_flag, threads: int, cpus: frozenset[int] | None) -> None:
    """A worker process: its CPUs (every thread it has, before torch starts its compute threads, which
    inherit them) and fixed torch threads, then one job at a time from `tasks`."""
    if cpus:
        _hold_threads(cpus)
    os.environ["VISIONEXPLORER_THREADS"] = str(threads)
    from engine.device import configure_threads

    configure_threads()
    server = multiprocessing.parent_process()
    while True:
        try:
            job_id, job = tasks.get(timeout=WORKER_POLL_S)
        except queue.Empty:
            if not server.is_alive():  # the server was killed: nothing will ever ask again
                return
            continue
        for message in job_messages(job, lambda: cancel_flag.value == job_id,
                                    lambda message: pickle.dumps((job_id, message))):
            events.put(message)


@contextmanager
def _without_main_script():
    """While a worker is spawned, hide the caller's `__main__`: spawn would re-run that script in the
    worker, and under Streamlit (and AppTest) `__main__` is app.py itself."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__: nothing to re-run
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class _ProcessWorker:
    """One worker process (started once, reused for job after job) and a thread that listens to it."""

    def __init__(self, threads: int, cpus: frozenset[int] | None):
        context = multiprocessing.get_context("spawn")  # never fork a threaded server (or an initialized CUDA)
        self._tasks, self._events = context.Queue(), context.Queue()
        self._cancel_flag = context.Value("q", 0)  # the id of the job to stop
        self._process = context.Process(target=_process_main, name="visionexplorer-worker", daemon=True,
                                        args=(self._tasks, self._events, self._cancel_flag, threads, cpus))
        with _without_main_script():
            self._process.start()

    def start(self, job: Job, finish: Callable[[Job, str], None]) -> None:
        self._tasks.put((job.id, pickle.dumps((job.function, job.kwargs))))
        threading.Thread(target=self._listen, args=(job, finish), name=f"job-{job.id}", daemon=True).start()

    def cancel(self, job: Job) -> None:
        self._cancel_flag.value = job.id

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def _listen(self, job: Job, finish: Callable[[Job, str], None]) -> None:
        while True:
            try:
                job_id, (kind, payload) = pickle.loads(self._events.get(timeout=WORKER_POLL_S))
            except queue.Empty:
                if not self._process.is_alive():
                    job.error = RuntimeError(f"the worker process stopped (exit code {self._process.exitcode}); "
                                             "the job may have run out of memory")
                    finish(job, FAILED)
                    return
                continue
            if job_id != job.id:
                continue  # a late event of a job closed before
            state = delivered(job, kind, payload)
            if state is not None:
                finish(job, state)
                return


# ---- the runner ------------------------------------------------------------------------------------
class JobRunner:
    """A bounded number of worker slots and a queue that is fair across sessions."""

    def __init__(self, slots: int | None = None, *, workers: str | None = None, threads: int | None = None,
                 ray_address: str | None = None):
        ray_address = ray_address or os.environ.get(RAY_ADDRESS_ENV)
        self.workers = workers or os.environ.get(WORKERS_ENV) or ("ray" if ray_address else "process")
        if self.workers not in WORKER_KINDS:
            raise UserInputError(f"{WORKERS_ENV} must be one of {', '.join(WORKER_KINDS)}; got {self.workers!r}")
        self._ray = None
        if self.workers == "ray":
            try:
                from engine.jobs_ray import RayWorker
            except ImportError as error:
                raise UserInputError(f"jobs on Ray ({RAY_ADDRESS_ENV} is set) need Ray on this server: "
                                     f"pip install ray ({error})") from error
            self._ray = RayWorker(ray_address or "local", threads=threads)
        offered = self._ray.cluster().slots(self._ray.threads) if self._ray else None
        self.slots = default_slots(offered) if slots is None else int(slots)
        if self.slots < 1:
            raise UserInputError(f"the job runner needs at least 1 slot; got {self.slots}")
        self.threads = self._ray.threads if self._ray else threads or threads_per_job(self.slots)
        self.cpus = worker_cpus(self.slots, self.threads) if self.workers == "process" else None
        self._server_cpus = frozenset(os.sched_getaffinity(0)) - self.cpus if self.cpus else None
        self._queue: list[Job] = []
        self._running: dict[Job, Any] = {}  # job -> its worker
        self._idle: list[Any] = []  # started worker processes without a job
        self._last_start: dict[str, float] = {}  # session -> when its last job started
        self._changed = threading.Condition()
        self._ids = itertools.count(1)

    def submit(self, function: JobFunction, *, session: str, label: str = "job", estimate_s: float = 1.0,
               **kwargs) -> Job:
        """Queue `function(should_stop=…, **kwargs)`; with process or Ray workers both must pickle.

        A session may have at most `limits.MAX_QUEUED_JOBS_PER_SESSION` jobs waiting: the server is shared.
        """
        job = Job(next(self._ids), session, label, function, kwargs, max(0.0, float(estimate_s)), self)
        with self._changed:
            waiting = sum(queued.session == session for queued in self._queue)
            if waiting >= limits.MAX_QUEUED_JOBS_PER_SESSION:
                raise UserInputError(
                    f"you already have {waiting} jobs waiting for a free slot (the server is shared; at most "
                    f"{limits.MAX_QUEUED_JOBS_PER_SESSION} may wait per session): wait for one to start, or "
                    "cancel one, then try again")
            self._queue.append(job)
            self._start_ready()
        return job

    def status(self) -> RunnerStatus:
        with self._changed:
            return RunnerStatus(self.slots, len(self._running), len(self._queue))

    def where(self) -> str:
        """Where jobs run, for the sidebar: the Ray cluster as it is now ("Ray cluster: 3 workers,
        1 GPU"), or "" for this server."""
        return str(self._ray.cluster()) if self._ray else ""

    def keep_server_apart(self) -> None:
        """Hold every thread of this process to the CPUs the workers leave. For the app server only:
        a test or a notebook that imports the engine keeps all its CPUs. Does nothing where the
        workers are not pinned."""
        if self._server_cpus:
            _hold_threads(self._server_cpus)

    def warm_up(self) -> None:
        """Start the workers now, so the first job does not wait for torch to import."""
        if self._ray:
            self._ray.warm_up(self.slots)
        elif self.workers == "process":
            with self._changed:
                while len(self._idle) + len(self._running) < self.slots:
                    self._idle.append(_ProcessWorker(self.threads, self.cpus))

    # ---- scheduling (called with the lock held) ------------------------------------------------------
    @staticmethod
    def _pick(queue_: list[Job], running: list[Job], last_start: dict[str, float]) -> Job:
        """Round robin over sessions: fewest running jobs first, then the session served longest ago."""
        busy: dict[str, int] = {}
        for job in running:
            busy[job.session] = busy.get(job.session, 0) + 1
        first_of_session: dict[str, Job] = {}
        for job in queue_:  # the queue is in submission order
            first_of_session.setdefault(job.session, job)
        return min(first_of_session.values(),
                   key=lambda j: (busy.get(j.session, 0), last_start.get(j.session, -1.0), j.submitted, j.id))

    def _worker(self):
        if self._ray:
            return self._ray
        if self.workers == "thread":
            return _ThreadWorker()
        while self._idle:
            worker = self._idle.pop()
            if worker.alive:
                return worker
        return _ProcessWorker(self.threads, self.cpus)

    def _start_ready(self) -> None:
        while self._queue and len(self._running) < self.slots:
            job = self._pick(self._queue, list(self._running), self._last_start)
            self._queue.remove(job)
            job.state, job.started = RUNNING, time.monotonic()
            self._last_start[job.session] = job.started
            worker = self._running[job] = self._worker()
            worker.start(job, self._finish)

    def _finish(self, job: Job, state: str) -> None:
        with self._changed:
            job.state, job.finished = state, time.monotonic()
            worker = self._running.pop(job)
            if self.workers == "process" and worker.alive:
                self._idle.append(worker)
            self._start_ready()
            self._changed.notify_all()

    def _cancelled(self, job: Job) -> None:
        with self._changed:
            if job in self._queue:
                self._queue.remove(job)
                job.state, job.finished = CANCELLED, time.monotonic()
                self._changed.notify_all()
            elif job in self._running:
                self._running[job].cancel(job)

    def _order(self) -> list[Job]:
        """The queue in the order its jobs would start if nothing else arrived."""
        queue_, running = list(self._queue), list(self._running)
        last_start, order = dict(self._last_start), []
        while queue_:
            job = self._pick(queue_, running, last_start)
            queue_.remove(job)
            running.append(job)
            last_start[job.session] = time.monotonic() + len(order)  # later than any real start
            order.append(job)
        return order

    def _position(self, job: Job) -> int:
        with self._changed:
            return self._order().index(job) + 1 if job.state == QUEUED else 0

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
                if queued is job:
                    return free_at[0]
                free_at[0] += queued.estimate_s
        return 0.0


_runner: JobRunner | None = None
_runner_lock = threading.Lock()


def runner() -> JobRunner:
    """The server process's one runner, made on first use; its workers start meanwhile."""
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = JobRunner()
            threading.Thread(target=_runner.warm_up, name="job-workers-warm-up", daemon=True).start()
        return _runner
