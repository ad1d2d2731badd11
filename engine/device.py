"""Pick the compute device, set CPU threads once, and give each run its own random generator."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import torch

DEVICE_ENV = "VISIONEXPLORER_DEVICE"  # "cpu", "cuda", "mps" or "cuda:1" overrides the automatic choice
THREADS_ENV = "VISIONEXPLORER_THREADS"

_configured = False


def configure_threads() -> int:
    """Set torch's intra-op threads once per process (users share one server process)."""
    global _configured
    if not _configured:
        wanted = os.environ.get(THREADS_ENV)
        # Half the cores by default: the browser, the server and other users need the rest, and
        # the small models here gain little from more threads (measured: 1 thread beat 2 while
        # anything else ran on a 2-core machine).
        torch.set_num_threads(int(wanted) if wanted else max(1, (os.cpu_count() or 1) // 2))
        _configured = True
    return torch.get_num_threads()


def pick_device() -> torch.device:
    """cuda → mps → cpu, unless ``VISIONEXPLORER_DEVICE`` names one (and set CPU threads, once)."""
    configure_threads()
    wanted = os.environ.get(DEVICE_ENV)
    if wanted:
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    """A short human-readable name for the sidebar."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator of its own for one run: no global seeding inside a shared server process."""
    return torch.Generator(device=device).manual_seed(int(seed))


class RunRandomness:
    """A run's own copy of torch's global RNG state, swapped in around each training step.

    Dropout and other layers draw from the global generator and take no `generator=` argument, so
    a run keeps its own state and installs it only while it computes; a lock stops two runs in one
    server process from interleaving. Same seed → same dropout masks, whoever else is training.
    """

    _lock = threading.Lock()

    def __init__(self, seed: int, device: torch.device):
        with self._lock, torch.random.fork_rng(devices=self._cuda(device)):
            torch.manual_seed(int(seed))
            self._cpu_state = torch.get_rng_state()
            self._cuda_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self._device = device

    @staticmethod
    def _cuda(device: torch.device) -> list:
        return [device] if device.type == "cuda" else []

    @contextmanager
    def active(self):
        with self._lock, torch.random.fork_rng(devices=self._cuda(self._device)):
            torch.set_rng_state(self._cpu_state)
            if self._cuda_state is not None:
                torch.cuda.set_rng_state(self._cuda_state, self._device)
            try:
                yield
            finally:
                self._cpu_state = torch.get_rng_state()
                if self._cuda_state is not None:
                    self._cuda_state = torch.cuda.get_rng_state(self._device)
