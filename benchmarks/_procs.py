"""Process-tree figures from /proc (Linux): peak memory and CPU time by role, and what other processes took.

A `TreeMeter` samples, every `interval` seconds in a thread of its own, every process descended from
this one (the server it started, the server's workers, Chromium): each one's resident memory and CPU
ticks, grouped by a role its caller names. The machine's CPU time that no process of the tree used
is the other processes' share — what `_timing.Contention` reports for a single process.
`renice_other_autogroups` lowers the scheduler weight of a program that runs in a session of its own.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, CPU ticks, resident kB) of `pid`, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21]) * PAGE_KB


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parents() -> dict[int, int]:
    """{pid: parent pid} of every process now."""
    return {int(e.name): stat[0] for e in Path("/proc").iterdir()
            if e.name.isdigit() and (stat := _stat(int(e.name))) is not None}


def child_pid(name: str) -> int:
    """The pid of this process's child whose command line contains `name`."""
    for pid, parent in _parents().items():
        if parent == os.getpid() and name in _cmdline(pid):
            return pid
    raise LookupError(f"no child process of {os.getpid()} runs {name!r}")


def descendants(name: str) -> list[int]:
    """This process's descendants whose command line contains `name`."""
    parents, found = _parents(), []
    for pid in parents:
        parent = parents.get(pid)
        while parent not in (None, 0, 1, os.getpid()):
            parent = parents.get(parent)
        if parent == os.getpid() and name in _cmdline(pid):
            found.append(pid)
    return found


def allowed_cpus(pid: int) -> str:
    """The CPUs `pid` may run on, as the kernel lists them ("0-1", "1")."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


def renice_other_autogroups(pids: list[int], nice: int) -> int:
    """Give the scheduler autogroups of `pids` the niceness `nice`, except this process's own group;
    returns how many groups changed.

    With autogroups on (Linux's default for desktops and this machine), the CPU is shared between
    sessions first and by niceness only inside one: a process's own nice value cannot make a program
    that runs in a session of its own (Chromium does) yield to this one.
    """
    own = Path("/proc/self/autogroup").read_text().split()[0]
    changed = set()
    for pid in pids:
        try:
            group = Path(f"/proc/{pid}/autogroup").read_text().split()[0]
            if group != own and group not in changed:
                Path(f"/proc/{pid}/autogroup").write_text(str(nice))
                changed.add(group)
        except OSError:  # gone meanwhile, or no autogroups on this kernel
            continue
    return len(changed)


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


class TreeMeter:
    """Peak resident memory and CPU ticks per role of this process's descendants, sampled in a thread.

    `role(pid, cmdline, ancestors)` names a process's role (ancestors: its parent's pid first, up to
    this process); processes of a role "" are counted in the tree's CPU time but not reported.
    """

    def __init__(self, role: Callable[[int, str, list[int]], str], interval: float = 0.25):
        self._role, self._interval = role, interval
        self._roles: dict[int, str] = {}
        self._ticks: dict[int, int] = {}  # pid -> its ticks when last seen
        self._first: dict[int, int] = {}  # pid -> its ticks when first seen (0 if born after the start)
        self.peak_kb: dict[str, int] = defaultdict(int)  # role -> peak of its processes' summed RSS
        self.peak_one_kb: dict[str, int] = defaultdict(int)  # role -> its largest single process
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> TreeMeter:
        self._busy, self._total = _machine_ticks()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, name="tree-meter", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        busy, total = _machine_ticks()
        self.seconds_total = max(1, total - self._total)
        self.machine_busy = busy - self._busy

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self, first: bool = False) -> None:
        parents, stats = {}, {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
                parents[int(entry.name)], stats[int(entry.name)] = stat[0], stat
        me, rss = os.getpid(), defaultdict(int)
        with self._lock:
            for pid, (_, ticks, kb) in stats.items():
                chain, parent = [], parents.get(pid)
                while parent is not None and parent not in (me, 0, 1):
                    chain.append(parent)
                    parent = parents.get(parent)
                if parent != me and pid != me:
                    continue
                if pid not in self._roles:
                    self._roles[pid] = self._role(pid, _cmdline(pid), chain + ([me] if pid != me else []))
                    self._first[pid] = ticks if first else 0
                self._ticks[pid] = ticks
                role = self._roles[pid]
                rss[role] += kb
                self.peak_one_kb[role] = max(self.peak_one_kb[role], kb)
            for role, kb in rss.items():
                self.peak_kb[role] = max(self.peak_kb[role], kb)

    def cpu_share(self) -> dict[str, float]:
        """Each role's share of all the machine's CPU time while the meter ran, and "others": what
        processes outside the tree used."""
        shares: dict[str, float] = defaultdict(float)
        with self._lock:
            for pid, ticks in self._ticks.items():
                shares[self._roles[pid]] += (ticks - self._first[pid]) / self.seconds_total
        tree = sum(shares.values())
        shares["others"] = max(0.0, self.machine_busy / self.seconds_total - tree)
        return dict(shares)
