"""engine.jobs_ray: the job runner on a Ray cluster the test starts (2 CPUs) — the local runner's history
for a seed, Cancel, a worker that dies, and the sidebar naming the cluster."""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install -r requirements-dev.txt")

import torch  # noqa: E402

from engine import data  # noqa: E402
from engine.errors import UserInputError  # noqa: E402
from engine.jobs import CANCELLED, DONE, FAILED, QUEUED, JobRunner  # noqa: E402
from engine.jobs_ray import Cluster, _host_dumps, cluster_of, connect  # noqa: E402
from engine.training.config import TrainConfig
from engine.training.events import EpochEnd, Stopped
from engine.training.interleaved import train_interleaved  # noqa: E402
from tests.apptest_helpers import finish_jobs, run_page  # noqa: E402
from tests.test_jobs import count_up, crash  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 120
DIED = "the Ray worker running this job died"


@pytest.fixture(scope="module")
def cluster():
    """A Ray of the test's own (never one found on the machine); its workers import jobs from the repo
    and from this module (which pytest imports as `test_jobs_ray`)."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    ray.init(address="local", num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def on_ray(cluster):
    runner = JobRunner(workers="ray", threads=1)  # slots: what the cluster offers
    runner.warm_up()
    return runner


def train(name: str, *, seed: int = 7, epochs: int = 2) -> dict:
    config = TrainConfig(model="mlp", epochs=epochs, lr=0.01, batch_size=64, seed=seed, model_options={"dropout": 0.3})
    return {"runs": [(name, config, data.load("digits", seed=0))]}


def metrics(run) -> dict:
    """A Run's history without its timings."""
    timings = ("seconds", "images_per_s", "total_seconds")
    return {key: value for key, value in run.history.to_dict().items() if key not in timings}


def last_run(events: list):
    return [run for _, event, run in events if run is not None][-1]


def marking(should_stop, *, path: str):
    """A job that leaves a file behind when it starts (on whichever worker runs it)."""
    Path(path).touch()
    yield "started"


def test_the_cluster_is_described_by_its_nodes_that_offer_work():
    def node(cpus, gpus=0, alive=True):
        return {"Alive": alive, "Resources": {"CPU": cpus, **({"GPU": gpus} if gpus else {})}}

    app_server, dead = {"Alive": True, "Resources": {"memory": 1e9}}, node(8, alive=False)
    gpu_cluster = cluster_of([node(16, 1), node(16), node(16), app_server, dead])
    assert gpu_cluster == Cluster(workers=3, cpus=48, gpus=1)
    assert str(gpu_cluster) == "Ray cluster: 3 workers, 1 GPU" and gpu_cluster.slots(threads=1) == 1
    cpu_cluster = cluster_of([node(2.0)])
    assert str(cpu_cluster) == "Ray cluster: 1 worker, 2 CPUs"
    assert cpu_cluster.slots(threads=1) == 2 and cpu_cluster.slots(threads=4) == 1


def test_ray_client_addresses_are_refused_with_the_way_out():
    with pytest.raises(UserInputError, match="cannot stream a job's events.*ray start --address"):
        connect("ray://head:10001")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_weights_on_a_gpu_come_back_as_cpu_weights():
    """A server without a GPU must be able to read a GPU worker's Run snapshots."""
    model = torch.nn.Linear(3, 2).cuda()
    model.bias.requires_grad_(False)
    _, back = pickle.loads(_host_dumps(("event", model)))
    for name, parameter in back.named_parameters():
        original = getattr(model, name)
        assert parameter.device.type == "cpu" and isinstance(parameter, torch.nn.Parameter)
        assert parameter.requires_grad == original.requires_grad
        torch.testing.assert_close(parameter, original.cpu(), rtol=0, atol=0)


def test_slots_are_what_the_cluster_offers(on_ray):
    assert on_ray.slots == 2 and on_ray.where() == "Ray cluster: 1 worker, 2 CPUs"
    assert str(on_ray.status()) == "0 of 2 slots busy, 0 waiting"


def test_a_seeded_run_on_ray_is_the_local_run_bit_for_bit(on_ray):
    """Same losses, accuracies and weights as a local worker process with the same thread count."""
    local = JobRunner(slots=1, workers="process", threads=1)
    jobs = {"ray": on_ray.submit(train_interleaved, session="a", **train("ray")),
            "local": local.submit(train_interleaved, session="a", **train("local"))}
    assert all(job.wait(WAIT_S) for job in jobs.values())
    assert [job.state for job in jobs.values()] == [DONE, DONE], jobs["ray"].error_trace
    runs = {where: last_run(job.drain()) for where, job in jobs.items()}
    assert metrics(runs["ray"]) == metrics(runs["local"])
    assert len(runs["ray"].history.train_loss) == 2
    weights = {where: run.model.state_dict() for where, run in runs.items()}
    assert all(torch.equal(weights["ray"][key], weights["local"][key]) for key in weights["local"])


def test_cancel_stops_a_running_training_within_a_second_and_keeps_its_epochs(on_ray):
    job = on_ray.submit(train_interleaved, session="a", **train("long", epochs=200))
    deadline = time.monotonic() + WAIT_S
    while not any(isinstance(event, EpochEnd) for _, event, _ in list(job._events)):
        assert time.monotonic() < deadline and not job.finished_state, job.error_trace
        time.sleep(0.02)
    asked = time.monotonic()
    job.cancel()
    assert job.wait(1.0), "still running a second after Cancel"
    assert time.monotonic() - asked < 1.0 and job.state == CANCELLED
    events = job.drain()
    assert any(isinstance(event, Stopped) and event.reason == "cancelled" for _, event, _ in events)
    finished = last_run(events).history
    assert 1 <= len(finished.train_loss) < 200 and finished.stopped_reason == "cancelled"


def test_a_cancelled_queued_job_never_starts(cluster, tmp_path):
    one_slot = JobRunner(slots=1, workers="ray", threads=1)
    running = one_slot.submit(count_up, session="a", n=10_000, delay=0.01)
    queued = one_slot.submit(marking, session="b", path=str(tmp_path / "started"))
    assert queued.state == QUEUED
    queued.cancel()
    assert queued.state == CANCELLED and one_slot.status().queued == 0
    running.cancel()
    assert running.wait(WAIT_S) and running.state == CANCELLED
    after = one_slot.submit(marking, session="b", path=str(tmp_path / "after"))
    assert after.wait(WAIT_S) and after.drain() == ["started"]  # the slot is free, and jobs there do start
    assert not (tmp_path / "started").exists() and queued.started is None and queued.drain() == []


def test_a_worker_that_dies_fails_its_job_and_the_runner_goes_on(on_ray):
    crashed = on_ray.submit(crash, session="a")
    assert crashed.wait(WAIT_S) and crashed.state == FAILED
    assert str(crashed.error).startswith(DIED) and crashed.drain() == ["before"]
    after = on_ray.submit(count_up, session="a", n=3)
    assert after.wait(WAIT_S) and after.state == DONE and after.drain() == [0, 1, 2]


# ---- the pages -----------------------------------------------------------------------------------
@pytest.fixture
def app_on_ray(on_ray, monkeypatch):
    """Pages started in this test submit their jobs to the Ray runner."""
    import engine.jobs

    monkeypatch.setattr(engine.jobs, "_runner", on_ray)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def _kill_job_workers() -> int:
    """SIGKILL the Ray workers of this test's own cluster (descendants of this process) that run a job."""
    killed = 0
    for pid in set(_descendants(os.getpid())):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title == b"ray::_run_job":
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def test_the_sidebar_names_the_ray_cluster(app_on_ray):
    at = run_page("app_pages/start/home.py")
    shown = " ".join(caption.value for caption in at.sidebar.caption)
    assert "Jobs run on the **Ray cluster: 1 worker, 2 CPUs** · 0 of 2 slots busy, 0 waiting" in shown


def test_a_dead_worker_is_reported_in_the_page_and_the_sessions_runs_are_kept(app_on_ray):
    at = run_page("app_pages/start/train_lab.py", query_params={"preset": "mlp_digits", "ep": "2"}, timeout=180)
    at.button(key="train.start").click().run()
    finish_jobs(at)
    kept = dict(at.session_state["runs"])
    assert len(kept) == 1 and len(next(iter(kept.values())).history.train_loss) == 2

    at.query_params["ep"] = "200"
    at.run()
    at.button(key="train.start").click().run()
    job = at.session_state["train.job"]
    deadline = time.monotonic() + WAIT_S
    while not any(isinstance(event, EpochEnd) for _, event, _ in list(job._events)):
        assert time.monotonic() < deadline and not job.finished_state, job.error_trace
        time.sleep(0.02)
    assert _kill_job_workers() == 1
    finish_jobs(at)
    assert any(DIED in error.value for error in at.error), [error.value for error in at.error]
    for name, run in kept.items():
        assert at.session_state["runs"][name] is run
