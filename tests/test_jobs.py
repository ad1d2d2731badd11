"""engine.jobs: the fair queue, cancelling before and during a run, event order, failures.

The queue's rules are tested with thread workers (jobs can be closures); the process workers, which
the server uses, with the module-level jobs at the end.
"""

import os
import threading
import time
from pathlib import Path

import pytest

from engine.errors import UserInputError
from engine.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobRunner

WAIT_S = 10
ROOT = Path(__file__).resolve().parents[1]


def gated(started: list, gate: threading.Event, name: str, events: int = 3):
    """A job that records its start, then waits for `gate` before yielding `events` events."""

    def job(should_stop):
        started.append(name)
        gate.wait(WAIT_S)
        for i in range(events):
            if should_stop():
                return
            yield (name, i)

    return job


def test_queue_is_fair_across_sessions():
    runner, gate, started = JobRunner(slots=1, workers="thread"), threading.Event(), []
    jobs = [runner.submit(gated(started, gate, f"a{i}"), session="a") for i in range(5)]
    late = runner.submit(gated(started, gate, "b0"), session="b")
    assert late.position() == 1  # next after the running a0, before a1…a4
    assert [j.position() for j in jobs] == [0, 2, 3, 4, 5]
    gate.set()
    assert all(j.wait(WAIT_S) for j in [*jobs, late])
    assert started[:2] == ["a0", "b0"]
    assert started == ["a0", "b0", "a1", "a2", "a3", "a4"]


def test_a_cancelled_queued_job_never_starts():
    runner, gate, started = JobRunner(slots=1, workers="thread"), threading.Event(), []
    first = runner.submit(gated(started, gate, "first"), session="a")
    queued = runner.submit(gated(started, gate, "queued"), session="b")
    assert queued.state == QUEUED
    queued.cancel()
    assert queued.state == CANCELLED and runner.status().queued == 0
    gate.set()
    assert first.wait(WAIT_S)
    time.sleep(0.1)
    assert started == ["first"] and queued.drain() == []


def test_a_running_job_stops_within_a_second_and_keeps_its_events():
    runner = JobRunner(slots=1, workers="thread")

    def endless(should_stop):
        i = 0
        while True:
            yield i
            i += 1
            time.sleep(0.01)

    job = runner.submit(endless, session="a")
    while len(job._events) < 5:
        time.sleep(0.01)
    asked = time.monotonic()
    job.cancel()
    assert job.wait(1.0), "still running a second after Cancel"
    assert time.monotonic() - asked < 1.0
    events = job.drain()
    assert job.state == CANCELLED and events == list(range(len(events))) and len(events) >= 5


def test_events_arrive_in_order_and_drain_returns_each_once():
    runner = JobRunner(slots=2, workers="thread")
    job = runner.submit(lambda should_stop: iter(range(1000)), session="a")
    assert job.wait(WAIT_S) and job.state == DONE
    assert job.drain() == list(range(1000)) and job.drain() == []


def test_a_failing_job_reports_its_error_and_frees_its_slot():
    runner = JobRunner(slots=1, workers="thread")

    def broken(should_stop):
        yield "before"
        raise UserInputError("learning rate must be a positive number; got 0.0")

    bad = runner.submit(broken, session="a")
    good = runner.submit(lambda should_stop: iter(["fine"]), session="a")
    assert bad.wait(WAIT_S) and good.wait(WAIT_S)
    assert bad.state == FAILED and isinstance(bad.error, UserInputError) and bad.drain() == ["before"]
    assert good.state == DONE and good.drain() == ["fine"]


def test_slots_bound_the_running_jobs_and_status_says_so():
    runner, gate, started = JobRunner(slots=2, workers="thread"), threading.Event(), []
    jobs = [runner.submit(gated(started, gate, f"j{i}"), session=f"s{i}") for i in range(5)]
    time.sleep(0.2)
    assert [j.state for j in jobs].count(RUNNING) == 2 and len(started) == 2
    assert str(runner.status()) == "2 of 2 slots busy, 3 waiting"
    gate.set()
    assert all(j.wait(WAIT_S) for j in jobs)
    assert str(runner.status()) == "0 of 2 slots busy, 0 waiting"


def test_estimated_start_adds_up_the_estimates_ahead():
    runner, gate, started = JobRunner(slots=1, workers="thread"), threading.Event(), []
    running = runner.submit(gated(started, gate, "r"), session="a", estimate_s=10)
    second = runner.submit(gated(started, gate, "q1"), session="b", estimate_s=4)
    third = runner.submit(gated(started, gate, "q2"), session="c", estimate_s=4)
    assert running.estimated_start_s() == 0
    assert second.estimated_start_s() == pytest.approx(10, abs=0.5)
    assert third.estimated_start_s() == pytest.approx(14, abs=0.5)
    gate.set()
    assert all(j.wait(WAIT_S) for j in (running, second, third))


def test_a_runner_needs_a_slot():
    with pytest.raises(UserInputError, match="at least 1 slot"):
        JobRunner(slots=0, workers="thread")


def test_a_cooperative_job_says_it_stopped_after_cancel():
    runner = JobRunner(slots=1, workers="thread")

    def cooperative(should_stop):
        i = 0
        while not should_stop():
            yield i
            i += 1
            time.sleep(0.01)
        yield "stopped"

    job = runner.submit(cooperative, session="a")
    while len(job._events) < 3:
        time.sleep(0.01)
    job.cancel()
    assert job.wait(1.0)
    assert job.state == CANCELLED and job.drain()[-1] == "stopped"


# ---- process workers ----------------------------------------------------------------------------------
def count_up(should_stop, *, n: int, delay: float = 0.0):
    for i in range(n):
        if should_stop():
            yield "stopped"
            return
        yield i
        time.sleep(delay)


def refuse(should_stop):
    yield "before"
    raise UserInputError("learning rate must be a positive number; got 0.0")


def crash(should_stop):
    yield "before"
    os._exit(3)  # a worker killed, e.g. for memory


def train_digits(should_stop, *, seed: int):
    from engine import data
    from engine.training.config import TrainConfig
    from engine.training.events import EpochEnd
    from engine.training.trainer import Trainer

    config = TrainConfig(model="mlp", epochs=2, lr=0.01, batch_size=64, seed=seed, model_options={"dropout": 0.3})
    for event in Trainer(config, data.load("digits", seed=0)).run(should_stop):
        if isinstance(event, EpochEnd):
            yield event.train_loss, event.val_acc


@pytest.fixture(scope="module")
def processes():
    return JobRunner(slots=2, workers="process", threads=1)


def test_process_jobs_stream_events_in_order_and_cancel(processes):
    quick = processes.submit(count_up, session="a", n=200)
    slow = processes.submit(count_up, session="b", n=10_000, delay=0.01)
    assert quick.wait(60) and quick.state == DONE and quick.drain() == list(range(200))
    while len(slow._events) < 5:
        time.sleep(0.02)
    slow.cancel()
    assert slow.wait(2) and slow.state == CANCELLED and slow.drain()[-1] == "stopped"


def test_process_job_errors_arrive_and_a_dead_worker_is_replaced(processes):
    refused = processes.submit(refuse, session="a")
    assert refused.wait(60) and refused.state == FAILED and isinstance(refused.error, UserInputError)
    assert refused.drain() == ["before"]
    crashed = processes.submit(crash, session="a")
    assert crashed.wait(60) and crashed.state == FAILED and "worker process stopped" in str(crashed.error)
    after = processes.submit(count_up, session="a", n=3)
    assert after.wait(60) and after.drain() == [0, 1, 2]


def test_same_seed_same_curves_together_or_alone(processes):
    """Two sessions training the same config at once get exactly what one gets alone."""
    alone = processes.submit(train_digits, session="a", seed=7)
    assert alone.wait(120), alone.error_trace
    together = [processes.submit(train_digits, session=s, seed=7) for s in ("b", "c")]
    assert all(job.wait(120) for job in together)
    expected = alone.drain()
    assert len(expected) == 2
    assert [job.drain() for job in together] == [expected, expected]


def slow_sum(n: int, *, progress):
    total = 0
    for i in range(n):
        total += i
        progress((i + 1) / n, f"{i + 1} of {n}")
        time.sleep(0.005)
    return total


def test_with_progress_reports_then_returns_and_stops_on_cancel(processes):
    from engine.jobs import Progress, Result, with_progress

    job = processes.submit(with_progress, session="a", work=slow_sum, n=20)
    assert job.wait(60), job.error_trace
    events = job.drain()
    assert [e.fraction for e in events[:-1]] == [(i + 1) / 20 for i in range(20)]
    assert events[-1] == Result(sum(range(20)))
    long = processes.submit(with_progress, session="a", work=slow_sum, n=100_000)
    while not long._events:
        time.sleep(0.01)
    long.cancel()
    assert long.wait(2) and long.state == CANCELLED
    assert not any(isinstance(e, Result) for e in long.drain())
    assert isinstance(events[0], Progress)


def test_a_worker_ends_when_its_server_is_killed(tmp_path):
    """A killed server (SIGKILL: no clean-up) must not leave its worker processes behind."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "server.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from engine.jobs import JobRunner\n"
        "if __name__ == '__main__':\n"
        "    runner = JobRunner(slots=1, workers='process', threads=1)\n"
        "    runner.warm_up()\n"
        "    print(runner._idle[0]._process.pid, flush=True)\n"
        "    time.sleep(60)\n")
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(server.stdout.readline())
    server.send_signal(signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{worker}") and \
            open(f"/proc/{worker}/stat").read().split()[2] != "Z":
        time.sleep(0.2)
    assert not os.path.exists(f"/proc/{worker}") or open(f"/proc/{worker}/stat").read().split()[2] == "Z"


# ---- where worker processes run -----------------------------------------------------------------------
def own_cpus(should_stop):
    """The CPUs that any thread of this process may run on."""
    yield sorted(set().union(*(os.sched_getaffinity(int(t)) for t in os.listdir("/proc/self/task"))))


@pytest.mark.parametrize("allowed, slots, threads, expected", [
    ({0, 1}, 1, 1, {1}),  # the last CPU for the job, the first for the server
    ({0, 1, 2, 3, 4, 5, 6, 7}, 2, 2, {4, 5, 6, 7}),
    ({2, 5, 7}, 1, 2, {5, 7}),  # a server started on some CPUs shares those
    ({0, 1}, 2, 1, None),  # no CPU would be left for the server
    ({0, 1}, 1, 2, None),
])
def test_workers_keep_to_the_last_cpus_when_one_is_left_for_the_server(monkeypatch, allowed, slots, threads,
                                                                         expected):
    from engine.jobs import worker_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(allowed))
    assert worker_cpus(slots, threads) == expected
    monkeypatch.setenv("VISIONEXPLORER_PIN_WORKERS", "0")
    assert worker_cpus(slots, threads) is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs a CPU to spare")
def test_a_worker_process_runs_on_its_cpus_only_and_the_server_stays_free():
    server_cpus = os.sched_getaffinity(0)
    runner = JobRunner(slots=1, workers="process", threads=1)
    assert runner.cpus == {max(server_cpus)}
    job = runner.submit(own_cpus, session="a")
    assert job.wait(60), job.error_trace
    assert job.drain() == [[max(server_cpus)]]
    assert os.sched_getaffinity(0) == server_cpus


def test_thread_workers_are_never_pinned():
    assert JobRunner(slots=1, workers="thread", threads=1).cpus is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs a CPU to spare")
def test_the_server_keeps_to_the_cpus_its_workers_leave_with_every_thread(tmp_path):
    """In a process of its own (pinning this one would slow the rest of the tests): threads from before
    and after `keep_server_apart` run on the server's CPUs, every thread of the worker on its own."""
    import json
    import subprocess
    import sys

    script = tmp_path / "server.py"
    script.write_text(
        "import json, os, sys, threading, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from engine.jobs import JobRunner\n"
        "from tests.test_jobs import own_cpus\n"
        "def cpus(tid):\n"
        "    return sorted(os.sched_getaffinity(tid))\n"
        "if __name__ == '__main__':\n"
        "    runner = JobRunner(slots=1, workers='process', threads=1)\n"
        "    before = threading.Thread(target=time.sleep, args=(5,), daemon=True)\n"
        "    before.start()\n"
        "    runner.keep_server_apart()\n"
        "    after = []\n"
        "    later = threading.Thread(target=lambda: after.append(cpus(0)))\n"
        "    later.start(); later.join()\n"
        "    job = runner.submit(own_cpus, session='a')\n"
        "    assert job.wait(60), job.error_trace\n"
        "    print(json.dumps({'main': cpus(0), 'before': cpus(before.native_id), 'after': after[0],\n"
        "                      'worker': job.drain()[0]}))\n")
    shown = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert shown.returncode == 0, shown.stderr
    allowed = sorted(os.sched_getaffinity(0))
    assert json.loads(shown.stdout) == {"main": allowed[:-1], "before": allowed[:-1], "after": allowed[:-1],
                                        "worker": allowed[-1:]}


def test_a_page_run_outside_a_streamlit_server_leaves_this_process_all_its_cpus():
    """AppTest runs the app in this process: the sidebar must not pin the test runner (nor a notebook)."""
    from streamlit.testing.v1 import AppTest

    from engine.jobs import runner

    before = os.sched_getaffinity(0)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert runner().cpus or len(before) < 2  # where the workers are pinned, the server could have been
    assert os.sched_getaffinity(0) == before
