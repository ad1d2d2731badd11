"""Shared helpers for the benchmark scripts: threads, interleaved A/B timing, machine contention."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2  # the figures in README.md are for two torch threads
QUIET_SHARE = 0.10  # a pair counts as quiet when other processes used less of the CPUs than this


def setup() -> int:
    """Make the repo importable and fix torch's threads (VISIONEXPLORER_THREADS, default 2)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("VISIONEXPLORER_THREADS", str(THREADS))
    from engine.device import configure_threads
    return configure_threads()


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _own_ticks() -> int:
    """Clock ticks this process (all its threads) has used."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class Contention:
    """Share of the machine's CPU time that other processes used while the block ran (Linux only)."""

    def __enter__(self):
        self.available = Path("/proc/stat").exists()
        if self.available:
            self._busy, self._total = _cpu_ticks()
            self._own = _own_ticks()
        return self

    def __exit__(self, *exc) -> None:
        if self.available:
            busy, total = _cpu_ticks()
            others = (busy - self._busy) - (_own_ticks() - self._own)
            self.others = max(0.0, others / max(1, total - self._total))

    def describe(self) -> str:
        if not self.available:
            return "other processes' CPU share: unknown"
        note = "" if self.others < QUIET_SHARE else (
            " — a busy machine: torch's threads wait on each other at OpenMP barriers whenever one is "
            "descheduled, so times can be many-fold too slow")
        return f"other processes used {self.others:.0%} of all CPUs meanwhile{note}"


@dataclass
class Pairs:
    """Seconds of A and B run back to back, `repeats` times, and how busy the machine was per pair."""

    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    others: list[float] = field(default_factory=list)  # other processes' CPU share during each pair

    def __iter__(self):
        """`times_a, times_b = interleaved(...)` still works."""
        return iter((self.a, self.b))

    def quiet(self) -> Pairs:
        """The pairs during which other processes used under QUIET_SHARE of the CPUs."""
        keep = [i for i, o in enumerate(self.others) if o < QUIET_SHARE]
        return Pairs([self.a[i] for i in keep], [self.b[i] for i in keep], [self.others[i] for i in keep])

    def ratio(self) -> float:
        """median(B) ÷ median(A): how many times faster A is."""
        return statistics.median(self.b) / statistics.median(self.a)

    def paired(self) -> float:
        """Median over pairs of b ÷ a; each pair ran back to back, so shares the machine's mood."""
        return statistics.median(b / a for a, b in zip(self.a, self.b))

    def summary(self, names: tuple[str, str]) -> str:
        quiet = self.quiet()
        text = (f"ratio of medians {self.ratio():.3f}, median of pair ratios {self.paired():.3f} "
                f"over all {len(self.a)} pairs")
        if quiet.a and len(quiet.a) < len(self.a):
            text += f"; {quiet.ratio():.3f} / {quiet.paired():.3f} over the {len(quiet.a)} quiet pairs"
        elif not quiet.a:
            text += f"; no quiet pair (other processes used ≥ {QUIET_SHARE:.0%} of the CPUs throughout)"
        return (f"{text}\n    {listing(names[0], self.a)} | {listing(names[1], self.b)} | other processes "
                f"{' '.join(f'{o:.0%}' for o in self.others)}")


def interleaved(a: Callable[[], float], b: Callable[[], float], repeats: int) -> Pairs:
    """Seconds reported by a() and b(), run A/B/A/B… `repeats` times each."""
    pairs = Pairs()
    for _ in range(repeats):
        with Contention() as busy:
            pairs.a.append(a())
            pairs.b.append(b())
        pairs.others.append(busy.others if busy.available else 0.0)
    return pairs


def listing(name: str, times: list[float]) -> str:
    return f"{name} s: {' '.join(f'{t:.2f}' for t in times)}"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
