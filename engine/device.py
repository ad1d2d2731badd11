"""Pick the compute device, fix the CPU thread count, give each run its own random generator, and guard the global one."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

DEVICE_ENV = "VISIONEXPLORER_DEVICE"  # "cpu", "cuda", "mps" or "cuda:1" overrides the automatic choice
THREADS_ENV = "VISIONEXPLORER_THREADS"
RAY_ADDRESS_ENV = "VISIONEXPLORER_RAY_ADDRESS"  # set: jobs run on this Ray cluster (engine/jobs_ray.py)

_threads: int | None = None  # chosen once per process


def configure_threads() -> int:
    """Give the calling thread this process's torch intra-op thread count (chosen once); return it.

    Results depend on the count (it sets how reductions are split, so their summation order), and
    torch keeps it per thread: a thread that computed before the count was chosen keeps torch's
    default. Every thread that runs a job calls this first, so a seed gives the same result in any thread.
    """
    global _threads
    if _threads is None:
        wanted = os.environ.get(THREADS_ENV)
        # Half the cores by default: the browser, the server and other users need the rest, and
        # the small models here gain little from more threads (measured: 1 thread beat 2 while
        # anything else ran on a 2-core machine).
        _threads = int(wanted) if wanted else max(1, (os.cpu_count() or 1) // 2)
    if torch.get_num_threads() != _threads:
        torch.set_num_threads(_threads)
    return _threads


def pick_device() -> torch.device:
    """cuda → mps → cpu, unless ``VISIONEXPLORER_DEVICE`` names one (and `configure_threads` for this thread)."""
    configure_threads()
    wanted = os.environ.get(DEVICE_ENV)
    if wanted:
        device = torch.device(wanted)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif (mps := getattr(torch.backends, "mps", None)) is not None and mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        # the same few batch shapes repeat for a whole run: cuDNN times its algorithms once and keeps
        # the fastest (results then match a seed to float rounding only, as GPU convolutions do anyway)
        torch.backends.cudnn.benchmark = True
    return device


def describe(device: torch.device) -> str:
    """A short human-readable name for the sidebar."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    threads = configure_threads()
    return f"CPU ({threads} thread{'' if threads == 1 else 's'})"


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator of its own for one run: no global seeding inside a shared server process."""
    return torch.Generator(device=device).manual_seed(int(seed))


# The one lock around torch's global generator. Sessions share this process, and whatever draws from
# the global generator (nn.Module constructors, dropout, captum's noise) takes no `generator=`: under
# the lock, a block's draws neither reseed another session's nor come from them. Re-entrant, so a
# seeded block may build a model.
_GLOBAL_RNG = threading.RLock()


def _forked(device: torch.device) -> list[torch.device]:
    return [device] if device.type == "cuda" else []


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Torch's global generator (CPU, and `device`'s if it is a GPU) seeded with `seed` for this block only.

    Holds the one lock, so no other thread draws from or reseeds the generator meanwhile; the state
    from before the block comes back after it.
    """
    device = torch.device(device)
    with _GLOBAL_RNG, torch.random.fork_rng(devices=_forked(device)):
        torch.default_generator.manual_seed(int(seed))
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(int(seed))  # not torch.manual_seed: that reseeds every GPU for good
        yield


class RunRandomness:
    """A run's own copy of torch's global RNG state, swapped in around each training step.

    Dropout draws from the global generator and takes no `generator=` argument, so a run keeps its
    own state and installs it only while it computes, under the lock of `seeded`. Same seed → same
    dropout masks, whoever else is training.
    """

    def __init__(self, seed: int, device: torch.device):
        self._device = torch.device(device)
        with seeded(seed, self._device):
            self._states = self._read()

    def _read(self) -> tuple[Tensor, Tensor | None]:
        cuda = torch.cuda.get_rng_state(self._device) if self._device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    @contextmanager
    def active(self) -> Iterator[None]:
        with _GLOBAL_RNG, torch.random.fork_rng(devices=_forked(self._device)):
            cpu, cuda = self._states
            torch.set_rng_state(cpu)
            if cuda is not None:
                torch.cuda.set_rng_state(cuda, self._device)
            try:
                yield
            finally:
                self._states = self._read()
