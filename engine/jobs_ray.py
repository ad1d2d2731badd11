"""Jobs on a Ray cluster: the job runner's workers when `$VISIONEXPLORER_RAY_ADDRESS` is set.

The server keeps its fair queue (engine/jobs.py); a job whose turn comes runs as one Ray task, and
its events come back through a Ray streaming generator, one object per event, in order. Cancel goes
the other way through a small actor of the server's, the cancel board, which the task asks every
CANCEL_POLL_S: the job sees `should_stop()` turn true as in a local worker, so a Trainer still ends
with its Stopped event and every finished epoch is kept.

Messages are the local workers' plain pickles, but tensors on a GPU are pickled as CPU tensors (the
server may have no GPU). On a cluster with GPUs each job asks for one; on CPUs it asks for `threads`
CPUs and fixes torch to that many threads (1 by default, as a local worker has), so a seed gives
what it gives locally. Tasks are not retried: a worker that dies (memory, a machine leaving) ends
its job FAILED, and the runner goes on with the next.

Addresses: `auto` (the cluster this machine belongs to), `HOST:6379` (a node's GCS address; this
machine must be a node too) or `local` (a Ray of this server's own, for a try-out). Ray Client
(`ray://…`) cannot stream a task's results, so it is refused. The engine package travels with
every job (`runtime_env` py_modules), so workers run the server's code; its packages
(requirements.txt) must be installed on the workers.

References:
    Ray streaming generators, https://docs.ray.io/en/latest/ray-core/ray-generator.html
    Ray, "Pattern: Using an actor to synchronize other tasks and actors",
    https://docs.ray.io/en/latest/ray-core/patterns/actor-sync.html
"""

from __future__ import annotations

import io
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
import torch
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from engine.device import RAY_ADDRESS_ENV, THREADS_ENV, configure_threads
from engine.errors import UserInputError
from engine.job_messages import FAILED, delivered, job_messages

if TYPE_CHECKING:  # engine.jobs imports this module when Ray is configured: no import back at run time
    from engine.jobs import Job

CANCEL_POLL_S = 0.2  # how often a running job asks the cancel board whether it was cancelled
ENGINE_DIR = str(Path(__file__).resolve().parent)  # shipped to the workers when the server joins (py_modules)


@dataclass(frozen=True)
class Cluster:
    """What a Ray cluster offers for jobs: its nodes with CPUs or GPUs (app servers join with none)."""

    workers: int
    cpus: int
    gpus: int

    def slots(self, threads: int) -> int:
        """One job per GPU where there are GPUs, else one per `threads` CPUs."""
        return self.gpus if self.gpus else max(1, self.cpus // threads)

    def __str__(self) -> str:
        units = _count(self.gpus, "GPU") if self.gpus else _count(self.cpus, "CPU")
        return f"Ray cluster: {_count(self.workers, 'worker')}, {units}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cluster_of(nodes: list[dict]) -> Cluster:
    """The Cluster that `ray.nodes()` describes."""
    offering = [node["Resources"] for node in nodes
                if node["Alive"] and (node["Resources"].get("CPU") or node["Resources"].get("GPU"))]
    return Cluster(len(offering), int(sum(r.get("CPU", 0) for r in offering)),
                   int(sum(r.get("GPU", 0) for r in offering)))


def connect(address: str) -> None:
    """Join the Ray cluster at `address`, once per process; `local` starts one for this process."""
    if address.startswith("ray://"):
        raise UserInputError(
            f"{RAY_ADDRESS_ENV}={address}: Ray Client cannot stream a job's events; make this machine a node "
            "(`ray start --address=HEAD:6379 --num-cpus=0`) and set it to `auto`")
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"runtime_env": {"py_modules": [ENGINE_DIR]}}
    if address == "local":
        options["include_dashboard"] = False
    # Ray's processes get a signal to stop when the *thread* that started them ends, and Streamlit runs
    # each script run in a thread of its own: so Ray starts in a thread that lives as long as the server.
    started, failed = threading.Event(), []

    def keep() -> None:
        try:
            ray.init(address=address, **options)
        except Exception as error:  # reported in the caller's thread
            failed.append(error)
            return
        finally:
            started.set()
        threading.Event().wait()

    threading.Thread(target=keep, name="ray-connection", daemon=True).start()
    started.wait()
    if failed:
        raise UserInputError(f"{RAY_ADDRESS_ENV}={address}: could not join the Ray cluster "
                             f"({type(failed[0]).__name__}: {failed[0]})") from failed[0]


# ---- on the worker ---------------------------------------------------------------------------------
class _HostPickler(pickle.Pickler):
    """Pickles tensors on a GPU as CPU tensors, since the server that reads them may have no GPU."""

    def __init__(self, file: io.BytesIO):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._copies: list[torch.Tensor] = []  # alive until the dump ends: pickle's memo keys on id()

    def reducer_override(self, obj: Any) -> Any:
        if not isinstance(obj, torch.Tensor) or obj.device.type == "cpu":
            return NotImplemented
        copy = obj.detach().cpu()
        copy = torch.nn.Parameter(copy, obj.requires_grad) if isinstance(obj, torch.nn.Parameter) \
            else copy.requires_grad_(obj.requires_grad)
        self._copies.append(copy)
        return copy.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


def _host_dumps(message: tuple[str, Any]) -> bytes:
    buffer = io.BytesIO()
    _HostPickler(buffer).dump(message)
    return buffer.getvalue()


class _CancelBoard:
    """The ids of the server's cancelled jobs; running jobs ask it."""

    def __init__(self):
        self._cancelled: set[int] = set()

    def cancel(self, job_id: int) -> None:
        self._cancelled.add(job_id)

    def cancelled(self, job_id: int) -> bool:
        return job_id in self._cancelled

    def forget(self, job_id: int) -> None:
        self._cancelled.discard(job_id)


def _watch(board, job_id: int, cancelled: threading.Event, ended: threading.Event) -> None:
    """Set `cancelled` once the board says so (asked at once, then every CANCEL_POLL_S) until `ended`."""
    while not ended.is_set():
        if ray.get(board.cancelled.remote(job_id)):
            cancelled.set()
            return
        ended.wait(CANCEL_POLL_S)


def _run_job(board, job_id: int, job: bytes) -> Iterator[bytes]:
    """The Ray task: one pickled job's messages (engine.job_messages.job_messages), with Cancel from the board."""
    configure_threads()
    cancelled, ended = threading.Event(), threading.Event()
    threading.Thread(target=_watch, args=(board, job_id, cancelled, ended), name="cancel-watch", daemon=True).start()
    try:
        yield from job_messages(job, cancelled.is_set, _host_dumps)
    finally:
        ended.set()


def _warm() -> None:
    """Import what jobs need, in a worker that jobs will reuse."""
    configure_threads()
    import engine.training.interleaved  # noqa: F401  (the Trainer, models and data)


# ---- on the server ---------------------------------------------------------------------------------
class RayWorker:
    """Runs a runner's jobs as Ray tasks; one object serves all of them."""

    def __init__(self, address: str, *, threads: int | None = None):
        connect(address)
        self.threads = threads or int(os.environ.get(THREADS_ENV) or 1)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self._board = ray.remote(_CancelBoard).options(num_cpus=0, scheduling_strategy=here).remote()
        gpu = {"num_gpus": 1} if self.cluster().gpus else {}
        options = dict(num_cpus=self.threads, max_retries=0, **gpu,
                       runtime_env={"env_vars": {THREADS_ENV: str(self.threads)}})
        self._task = ray.remote(_run_job).options(num_returns="streaming", **options)
        self._warm = ray.remote(_warm).options(**options)

    def cluster(self) -> Cluster:
        return cluster_of(ray.nodes())

    def warm_up(self, slots: int) -> None:
        """Start a worker per slot and import the engine there."""
        ray.get([self._warm.remote() for _ in range(slots)])

    def start(self, job: Job, finish: Callable[[Job, str], None]) -> None:
        stream = self._task.remote(self._board, job.id, pickle.dumps((job.function, job.kwargs)))
        threading.Thread(target=self._listen, args=(job, stream, finish), name=f"job-{job.id}", daemon=True).start()

    def cancel(self, job: Job) -> None:
        self._board.cancel.remote(job.id)

    def _listen(self, job: Job, stream, finish: Callable[[Job, str], None]) -> None:
        state = None
        try:
            for message in stream:
                state = delivered(job, *pickle.loads(ray.get(message)))
        except RayError as error:
            job.error = RuntimeError(f"the Ray worker running this job died ({type(error).__name__}): it may have "
                                     "run out of memory, or its machine left the cluster")
            job.error_trace, state = str(error), FAILED
        if job._cancel.is_set():
            self._board.forget.remote(job.id)
        assert state is not None, "a job's stream ends with its end or its error"
        finish(job, state)
