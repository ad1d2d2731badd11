"""One source of randomness: sessions training at once in one process get the curves of a run alone."""

import threading
import time
from functools import partial

import pytest
import torch

from engine import device, models
from engine.device import RunRandomness
from engine.explain import attributions
from engine.layers import conv, normalization
from engine.training import gradient_flow, minibatch
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer

# Tiny VGG's results depend on the intra-op thread count (how its reductions are split), and
# dropout draws from torch's global generator: both ways one session could change another's result.
CONFIG = TrainConfig(model="tinyvgg", model_options={"dropout": 0.3}, epochs=2, seed=101)


@pytest.fixture
def two_torch_threads(monkeypatch):
    """Every job computes with 2 intra-op threads (the count is chosen once per process)."""
    before = torch.get_num_threads()
    monkeypatch.setenv(device.THREADS_ENV, "2")
    monkeypatch.setattr(device, "_threads", None)
    yield
    torch.set_num_threads(before)


def _curves(dataset, *, started: threading.Event | None = None, threads_before: int | None = None) -> dict:
    """What a Train Lab session does: a Trainer for the time estimate (a probe with dropout), one to train."""
    if threads_before is not None:
        torch.set_num_threads(threads_before)  # this thread last computed with another count
    Trainer(CONFIG, dataset).estimate_seconds()
    trainer = Trainer(CONFIG, dataset)
    for _ in trainer.run():
        if started is not None:
            started.set()
    h = trainer.history
    return {"train_loss": h.train_loss, "train_acc": h.train_acc, "val_loss": h.val_loss,
            "val_acc": h.val_acc, "test_loss": h.test_loss, "test_acc": h.test_acc}


def _start(job) -> tuple[threading.Thread, dict]:
    """Run `job` in a thread of its own; once joined, the dict holds its "result" or its "error"."""
    box: dict = {}

    def work():
        try:
            box["result"] = job()
        except BaseException as error:  # raised again in the test's thread
            box["error"] = error

    thread = threading.Thread(target=work)
    thread.start()
    return thread, box


def _joined(thread: threading.Thread, box: dict):
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def _in_threads(*jobs) -> list:
    started = [_start(job) for job in jobs]
    return [_joined(*each) for each in started]


def test_two_sessions_training_at_once_get_exactly_the_curves_of_one_alone(digits, two_torch_threads):
    alone = _curves(digits)
    assert torch.get_num_threads() == 2
    started = threading.Event()

    def second_session():  # builds, probes and trains while the first session trains
        assert started.wait(timeout=60)
        return _curves(digits)

    together = _in_threads(lambda: _curves(digits, started=started), second_session)
    assert together == [alone, alone]


def test_a_thread_that_computed_with_another_thread_count_gets_the_same_curves(digits, two_torch_threads):
    alone = _curves(digits)
    (other,) = _in_threads(lambda: _curves(digits, threads_before=1))
    assert other == alone


def _tiny_model(dropout: float = 0.5) -> torch.nn.Module:
    return models.build("mlp", in_channels=1, num_classes=3, image_size=8, dropout=dropout)


def _images(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def _range_test() -> None:
    x, y = _images(32)
    minibatch.lr_range_test(_tiny_model(), x, y, torch.nn.functional.cross_entropy, steps=5, batch_size=8)


# Everything that draws from torch's global generator: model builds, dropout steps, captum's noise,
# re-initialization, the demos that build layers and the convolution page's real module. Each entry
# prepares its inputs and returns the call to make in another thread.
GLOBAL_DRAWS = {
    "model build": lambda digits: _tiny_model,
    "time-estimate probe": lambda digits: Trainer(TrainConfig(model="mlp", model_options={"dropout": 0.5}),
                                                  digits).estimate_seconds,
    "lr range test": lambda digits: _range_test,
    "smoothgrad": lambda digits: partial(attributions.attribute, _tiny_model(0.0), _images(1)[0], "smoothgrad",
                                         target=0, config=attributions.AttributionConfig(samples=4)),
    "randomized copy": lambda digits: partial(attributions.randomized_copy, _tiny_model(), seed=1),
    "deep net": lambda digits: partial(gradient_flow.deep_net, "mlp", depth=2, width=8, in_channels=1,
                                       image_size=8, num_classes=3),
    "folding demo": lambda digits: partial(normalization.folding_demo, _images(8)[0], steps=2),
    "conv page": lambda digits: partial(conv.run_conv, conv.ConvConfig(1, 2, 3), _images(1)[0][0],
                                        torch.ones(2, 1, 3, 3)),
}


@pytest.mark.parametrize("name", GLOBAL_DRAWS)
def test_global_generator_users_wait_for_a_running_step(name, digits):
    """While one run's step holds the global generator, no other user draws from it or reseeds it."""
    call = GLOBAL_DRAWS[name](digits)
    run = RunRandomness(5, torch.device("cpu"))
    draws = []
    with run.active():
        other = _start(call)
        deadline = time.perf_counter() + 0.5  # unlocked, the other user draws meanwhile; locked, it waits
        while time.perf_counter() < deadline:
            draws.append(torch.rand(1))
            time.sleep(0.001)
    _joined(*other)
    torch.manual_seed(5)
    assert torch.equal(torch.cat(draws), torch.rand(len(draws)))


def test_seeded_draws_like_manual_seed_and_restores_the_generator():
    torch.manual_seed(7)
    before = torch.get_rng_state()
    with device.seeded(3):
        inner = torch.rand(4)
        with device.seeded(4):  # re-entrant: a seeded block may build a model
            torch.rand(2)
        after_nested = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(3)
    assert torch.equal(torch.cat([inner, after_nested]), torch.rand(8))


@pytest.mark.parametrize("threads, label", [(1, "CPU (1 thread)"), (2, "CPU (2 threads)")])
def test_describe_counts_threads_in_words(threads, label, monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(device, "_threads", threads)
    try:
        assert device.describe(torch.device("cpu")) == label
    finally:
        torch.set_num_threads(before)
