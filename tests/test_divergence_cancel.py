"""Divergence and Cancel on every training surface (issue 17).

Divergence: lr = 10 stops the run with a message and keeps the weights of the last good epoch, in the
Trainer, in the Run a page stores with the Diverged event, and in the Train Lab.

Cancel: every long job function stops within a second of `should_stop()` turning true, also in the
middle of a step (a time-based stop, not only right after an event), and keeps what it finished;
a Cancel pressed in a page ends the job and leaves the page usable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from engine import data, models
from engine.jobs import Result, run_events, with_progress
from engine.training.config import TrainConfig
from engine.training.events import Diverged, Done, EpochEnd, Stopped
from engine.training.interleaved import train_interleaved
from engine.training.optimizers import optimizer_names
from engine.training.trainer import Trainer
from tests.apptest_helpers import assert_no_exception, finish_jobs, run_page

CANCEL_S = 1.0  # from should_stop() → True to the end of the job, on this machine even when it is busy


def _finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())


def _same(state: dict, model: torch.nn.Module) -> bool:
    return all(torch.equal(state[k], v.cpu()) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------------------- divergence
def _calm_then_lr_10(digits) -> TrainConfig:
    """SGD at lr 10 on the MLP, its first epoch at lr 0.01 (a stage with lr factors): epoch 1 is good, epoch 2 diverges."""
    model = models.build("mlp", in_channels=1, num_classes=10, image_size=8, seed=0)
    calm = {name: 1e-3 for name, module in model.named_children() if any(True for _ in module.parameters())}
    return TrainConfig(data="digits", model="mlp", optimizer="sgd", lr=10.0, epochs=3, seed=0, snapshots=True,
                       stages=[{"epochs": 1, "lr_factors": calm}, {"epochs": 2}])


def test_lr_10_stops_with_a_message_and_keeps_the_last_good_epoch(digits):
    trainer = Trainer(_calm_then_lr_10(digits), digits)
    events = list(trainer.run())
    diverged = [e for e in events if isinstance(e, Diverged)]
    assert len(diverged) == 1 and diverged[0].epoch == 2, [type(e).__name__ for e in events]
    assert "diverged" in diverged[0].message and "smaller learning rate" in diverged[0].message
    assert not any(isinstance(e, Done) for e in events) and events[-1] is diverged[0]  # it stops there
    history = trainer.history
    assert len(history.epoch) == 1 and history.diverged_at == diverged[0].step
    assert len(history.snapshots) == 2  # the initial weights and epoch 1's
    assert _finite(trainer.model) and _same(history.snapshots[-1], trainer.model)
    assert not _same(history.snapshots[0], trainer.model)  # epoch 1 did train


def test_the_run_a_page_stores_with_the_diverged_event_has_the_last_good_weights(digits):
    """The page stores the snapshot that comes with the event: the weights must be back before it is taken."""
    received = [(event, run) for _, event, run in train_interleaved(lambda: False,
                                                                   runs=[("r", _calm_then_lr_10(digits), digits)])]
    event, run = received[-1]
    assert isinstance(event, Diverged)
    assert _finite(run.model) and _same(run.history.snapshots[-1], run.model)
    epoch_run = next(r for e, r in received if isinstance(e, EpochEnd))
    assert _same(epoch_run.history.snapshots[-1], run.model)  # what was stored after epoch 1, unchanged


@pytest.mark.parametrize("optimizer", optimizer_names())
@pytest.mark.parametrize("model", ["linear", "tinyvgg"])
def test_lr_10_with_every_optimizer_ends_finite(digits, optimizer, model):
    """Diverged, with the starting weights back; or trained to the end, finite (AdaGrad, Adam's steps are bounded)."""
    trainer = Trainer(TrainConfig(data="digits", model=model, optimizer=optimizer, lr=10.0, epochs=2, seed=0,
                                  snapshots=True), digits)
    events = list(trainer.run())
    assert _finite(trainer.model)
    if isinstance(events[-1], Diverged):
        assert _same(trainer.history.snapshots[-1], trainer.model)
    else:
        assert isinstance(events[-1], Done) and torch.isfinite(torch.tensor(trainer.history.train_loss)).all()


def test_train_lab_at_lr_10_says_so_and_keeps_the_run():
    at = run_page("app_pages/start/train_lab.py", query_params={"ep": "2", "lr": "10.0", "opt": "sgd"}, timeout=180)
    at.button(key="train.start").click().run(timeout=180)
    finish_jobs(at)
    assert_no_exception(at, "after a diverging run")
    assert any("diverged" in e.value and "last good weights" in e.value for e in at.error), [e.value for e in at.error]
    (run,) = at.session_state["runs"].values()
    assert run.history.diverged_at is not None and _finite(run.model)
    assert any("Training diverged at step" in w.value for w in at.warning)  # the results say it too
    assert any(m.label == "Test accuracy" and "nan" not in m.value for m in at.metric)


TWO_RUNS = """
from engine.training.trainer import TrainConfig
from ui.results import trained_runs_ui
from ui.train_config import load_dataset
from ui.train_panel import Job

digits = load_dataset("digits", None, 0)
calm = TrainConfig(data="digits", model="mlp", optimizer="sgd", lr=0.05, epochs=2)
wild = TrainConfig(data="digits", model="mlp", optimizer="sgd", lr=10.0, epochs=2)
trained_runs_ui([Job("calm", calm, digits), Job("wild", wild, digits)], key="two")
"""


def test_the_shared_training_panel_reports_divergence_and_trains_the_other_runs_on(tmp_path):
    """ui.results.trained_runs_ui (ui.train_panel, ui.jobs): what every page that trains goes through."""
    from streamlit.testing.v1 import AppTest

    script = tmp_path / "two_runs.py"
    script.write_text(TWO_RUNS)
    at = AppTest.from_file(str(script), default_timeout=120).run()
    at.button(key="two.start").click().run()
    finish_jobs(at)
    assert_no_exception(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "**wild**" in errors[0] and "diverged" in errors[0], errors
    runs = at.session_state["runs"]
    assert runs["wild"].history.diverged_at is not None and _finite(runs["wild"].model)
    assert len(runs["calm"].history.epoch) == 2 and runs["calm"].history.test_acc > 0.5


# pages whose learning-rate control reaches a rate that may diverge: (page, URL values, the button that trains)
LR_PAGES = [
    ("app_pages/building_blocks/activations.py", {"lr_hi": "1.0", "dead_ep": "2"}, "act.dead.start"),
    ("app_pages/building_blocks/activations.py", {"lr": "1.0", "ep": "2", "race": "relu,tanh"}, "act.race.start"),
    ("app_pages/building_blocks/normalization.py", {"lr": "1.0", "ep": "2"}, "bn.train.start"),
]


@pytest.mark.parametrize("page, query, button", LR_PAGES)
def test_pages_at_their_highest_learning_rate_end_finite_and_say_so(page, query, button):
    at = run_page(page, query_params=query, timeout=180)
    at.button(key=button).click().run(timeout=180)
    finish_jobs(at)
    assert_no_exception(at, f"{page} at its highest learning rate")
    runs = at.session_state["runs"]
    assert runs and all(_finite(run.model) for run in runs.values())
    errors = " ".join(e.value for e in at.error)
    for name, run in runs.items():
        assert (run.history.diverged_at is not None) == (f"**{name}**" in errors and "diverged" in errors), name


# ------------------------------------------------------------------------------------------------- cancel
@dataclass(frozen=True)
class LongJob:
    function: Callable
    kwargs: Callable[[], dict]  # built when the test runs (models, data)
    after: int = 1  # events before the stop is armed
    delay_s: float = 0.3  # then should_stop() turns true this long after, in the middle of the work
    final: tuple = (Result, Done)  # event types a job that ran to its end yields last (unless it says `cancelled`)


def _shapes():
    return data.load("shapes", seed=0, num_images=3000)


def _tiny(size: int = 32, name: str = "tinyvgg", **options):
    return models.build(name, in_channels=3, num_classes=8, image_size=size, seed=0, **options)


def _source():
    from engine.training import sources
    from engine.training.runs import Run

    return sources.from_run(Run("random tinyvgg", {}, models.ModelConfig("tinyvgg", 3, 8, 32), list("abcdefgh"),
                                "nothing", _tiny()))


def _trainer_kwargs():
    return {"runs": [("a", TrainConfig(data="shapes", model="tinyvgg", epochs=50), _shapes())]}


def _landscape_kwargs():
    from engine.training import landscape, losses

    shapes, model = _shapes(), _tiny()
    xs = landscape.axis(1.0, 41)
    return dict(work=landscape.evaluate, model=model, plane=landscape.random_plane(model, seed=0),
                images=shapes.train.x[:1024], labels=shapes.train.y[:1024], loss_fn=losses.build("cross_entropy"),
                xs=xs, ys=xs)


def _occlusion_kwargs():
    from engine.explain import robustness

    x = F.interpolate(_shapes().test.x[:1], size=128)
    return dict(work=robustness.occlusion_heatmap, model=_tiny(128), x=x, target=0, patch=8, stride=2)


def _visualize_kwargs():
    from engine.explain import features

    return dict(work=features.visualize, model=_tiny(), objective=features.Objective("channel", "block2", 0),
                channels=3, config=features.VisConfig(image_size=128, steps=2000))


def _range_test_kwargs():
    from engine.training import losses, minibatch

    shapes = _shapes()
    return dict(work=minibatch.lr_range_test, model=_tiny(), x=shapes.train.x, y=shapes.train.y,
                loss_fn=losses.build("cross_entropy"), steps=1000)


def _mc_dropout_kwargs():
    from engine.training import dropout

    shapes = _shapes()
    return dict(work=dropout.mc_dropout, model=_tiny(name="mlp", dropout=0.5), x=shapes.test.x, y=shapes.test.y,
                passes=200)


def _tuning_kwargs():
    from engine.training import tuning

    shapes = _shapes()
    plan = tuning.plan_search(shapes, TrainConfig(data="shapes", model="tinyvgg", epochs=5),
                              {"lr": {"low": 1e-4, "high": 0.1, "log": True}}, method="random", trials=20, prune=False)
    return dict(plan=plan, dataset=shapes)


def _crossval_kwargs():
    return dict(dataset=_shapes(), config=TrainConfig(data="shapes", model="tinyvgg", epochs=10), folds=5)


def _data_size_kwargs():
    from engine.training import compare

    shapes = _shapes()
    configs = [TrainConfig(data="shapes", model="tinyvgg", epochs=10),
               TrainConfig(data="shapes", model="vit_tiny", epochs=10)]
    plan = compare.plan_data_size(configs, shapes, fractions=[0.5, 1.0], full_seconds={"tinyvgg": 9.0, "vit_tiny": 9.0})
    return dict(plan=plan, dataset=shapes)


def _transfer_kwargs(**extra):
    return lambda: dict(source=_source(), target=_shapes(), **extra)


def _probe_kwargs(work, **extra):
    # 560 training images: the pixel probe's scikit-learn fit (≈ 2 s) outlasts the stop, and what it
    # does after the stop, in the background, stays short
    return lambda: dict(work=work, source=_source(), target=data.load("shapes", seed=0, num_images=800), **extra)


def _long_jobs() -> dict[str, LongJob]:
    from engine.training import compare, crossval, probe, strategies, transfer, tuning

    return {
        "training": LongJob(train_interleaved, _trainer_kwargs, after=3),
        "landscape": LongJob(with_progress, _landscape_kwargs),
        "occlusion": LongJob(with_progress, _occlusion_kwargs, after=0),
        "feature visualization": LongJob(with_progress, _visualize_kwargs),
        "range test": LongJob(with_progress, _range_test_kwargs),
        "MC dropout": LongJob(with_progress, _mc_dropout_kwargs),
        "tuning search": LongJob(tuning.search, _tuning_kwargs, final=(tuning.SearchDone,)),
        "cross-validation": LongJob(crossval.cross_validate, _crossval_kwargs, after=0, delay_s=1.0,
                                    final=(crossval.CrossValidated,)),
        "data-size experiment": LongJob(compare.data_size_experiment, _data_size_kwargs, after=0, delay_s=1.0),
        "few-shot curve": LongJob(transfer.few_shot_curve, _transfer_kwargs(shots=(5, 20, 0), epochs=5), after=0,
                                  delay_s=1.0, final=(transfer.CurvePoint,)),
        "fine-tuning": LongJob(transfer.fine_tune_job, _transfer_kwargs(spec=transfer.FineTune(head_epochs=10, epochs=10)),
                               final=(transfer.FineTuned,)),
        "transfer recipe": LongJob(strategies.run_strategy, _transfer_kwargs(strategy=strategies.strategy_names()[-1],
                                                                             epochs=10),
                                   after=0, delay_s=1.0, final=(transfer.TransferReport,)),
        # a scikit-learn fit cannot look at should_stop: the job ends at once, the fit finishes unseen
        "linear probes": LongJob(with_progress, _probe_kwargs(probe.probe_table, per_class=0), after=0, delay_s=0.5),
    }


LONG_JOBS = list(_long_jobs())


def stop_latency(job: LongJob) -> tuple[float, list]:
    """Run `job` as a worker does (engine.jobs.run_events); should_stop() turns true `delay_s` after its
    `after`-th event. Seconds from then to the job's end, and its events."""
    events: list = []
    armed = {"at": time.monotonic() if job.after == 0 else None}

    def emit(event) -> None:
        events.append(event)
        if armed["at"] is None and len(events) == job.after:
            armed["at"] = time.monotonic()

    def should_stop() -> bool:
        return armed["at"] is not None and time.monotonic() >= armed["at"] + job.delay_s

    run_events(job.function, job.kwargs(), should_stop, emit)
    assert armed["at"] is not None, f"only {len(events)} events: the job ended before the stop"
    return time.monotonic() - (armed["at"] + job.delay_s), events


@pytest.fixture(scope="module", autouse=True)
def _warm_and_wait():
    """One short training first: the first in a process imports and initializes what later runs reuse.

    At the end, the steps a stopped job left to finish in the background (engine.jobs.unless_stopped)
    are waited for: a thread still inside torch or scikit-learn when Python exits aborts the process.
    """
    Trainer(TrainConfig(data="digits", model="tinyvgg", epochs=1), data.load("digits", seed=0)).fit()
    yield
    for thread in threading.enumerate():
        if thread.name in ("job-step", "job-compute"):
            thread.join(timeout=120)


@pytest.mark.parametrize("name", LONG_JOBS)
def test_cancel_ends_every_long_job_within_a_second(name):
    job = _long_jobs()[name]
    latency, events = stop_latency(job)
    assert latency < CANCEL_S, f"{name} ran {latency:.2f} s after should_stop() turned true"
    assert latency >= 0, f"{name} ended before it was stopped: make it longer"
    assert not _ran_to_its_end(events, job.final), f"{name} ran to its end: make it longer"


def _ran_to_its_end(events: list, final: tuple) -> bool:
    """Whether the job finished its work (then the test stopped nothing) rather than ending at the stop."""
    if not events:
        return False
    kinds = [e[1] if isinstance(e, tuple) else e for e in events]  # train_interleaved: (name, event, run)
    last = kinds[-1]
    if any(isinstance(e, Stopped) for e in kinds) or getattr(last, "cancelled", False):
        return False
    if getattr(last, "kind", "") == "fine_tuned":
        return last.test_acc is not None  # a cancelled fine-tuning hands back its model, untested
    return isinstance(last, final)


def test_cancelled_training_keeps_its_finished_epochs(digits):
    epochs = []
    stream = train_interleaved(lambda: len(epochs) >= 2,
                               runs=[("r", TrainConfig(data="digits", model="tinyvgg", epochs=20), digits)])
    received = []
    for name, event, run in stream:
        received.append((event, run))
        if isinstance(event, EpochEnd):
            epochs.append(event)
    (stopped, _), (done, run) = received[-2:]
    assert isinstance(stopped, Stopped) and stopped.reason == "cancelled" and isinstance(done, Done)
    assert len(run.history.epoch) == 2 and run.history.stopped_reason == "cancelled"
    assert run.history.test_acc is None  # a Cancel ends the run at once, without the test pass


def test_a_cancel_during_validation_ends_the_run_there(digits, monkeypatch):
    """The validation pass looks at should_stop per chunk (10,000 images take seconds on a CPU)."""
    from engine.training import trainer as trainer_module

    real = trainer_module.evaluate
    # the stop arrives as the first validation starts: that epoch is not kept, and there is no test pass
    monkeypatch.setattr(trainer_module, "evaluate", lambda *a, should_stop=None, **k: real(*a, should_stop=lambda: True, **k))
    trainer = Trainer(TrainConfig(data="digits", model="linear", epochs=5), digits)
    events = list(trainer.run())
    assert isinstance(events[-1], Done) and isinstance(events[-2], Stopped) and events[-2].epoch == 1
    assert not trainer.history.epoch and trainer.history.test_acc is None


# ------------------------------------------------------------------------------------- Cancel in a page
def test_cancel_in_train_lab_ends_the_job_and_keeps_the_page_usable():
    """Press Cancel while Train Lab trains: the job ends within a second, the finished epochs are a Run,
    the page says it was cancelled and offers Train again."""
    at = run_page("app_pages/start/train_lab.py", query_params={"ep": "100"}, timeout=180)
    at.button(key="train.start").click().run(timeout=180)
    job = at.session_state["train.job"]
    deadline = time.monotonic() + 120
    while not any(isinstance(e, EpochEnd) for _, e, _ in list(job._events)) and time.monotonic() < deadline:
        time.sleep(0.1)  # at least one epoch done
    at.run(timeout=120)  # what the fragment's poll draws: the progress and the Cancel button
    cancel = at.button(key="train.cancel")
    asked = time.monotonic()
    cancel.click().run(timeout=120)
    assert job.wait(CANCEL_S + 5) and job.state == "cancelled", job.state
    ended = time.monotonic() - asked
    finish_jobs(at)
    assert_no_exception(at, "after Cancel")
    assert ended < CANCEL_S + 3, f"the job ended {ended:.1f} s after Cancel (the script run itself included)"
    assert any("cancelled" in i.value for i in at.info), [i.value for i in at.info]
    (run,) = at.session_state["runs"].values()
    assert run.history.epoch and run.history.stopped_reason == "cancelled"
    assert any(b.key == "train.start" for b in at.button)  # the page is usable again
