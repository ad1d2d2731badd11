"""The Trainer: reaches known accuracy, is deterministic, stops early, detects divergence, keeps state."""

import math

import pytest
import torch

from engine.device import RunRandomness
from engine.errors import UserInputError
from engine.training.config import TrainConfig
from engine.training.events import Diverged, Done, EpochEnd, Stopped
from engine.training.trainer import Trainer, evaluate


def test_tinyvgg_reaches_97_percent_on_digits(digits):
    for seed in (0, 1):
        run = Trainer(TrainConfig(model="tinyvgg", seed=seed), digits).fit()  # the defaults = cnn_digits
        assert run.history.test_acc >= 0.97, seed
        assert len(run.history.epoch) == 20


def test_events_arrive_in_order_and_history_matches(digits):
    events = list(Trainer(TrainConfig(model="linear", epochs=3, lr=0.1, optimizer="sgd"), digits).run())
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert isinstance(events[-1], Done)
    assert events[-1].epochs == 3 and 0 <= events[-1].test_acc <= 1


def test_same_seed_same_curves_even_with_dropout(digits):
    config = TrainConfig(model="mlp", model_options={"dropout": 0.5}, epochs=2, seed=4, augmentation="shift")
    a = Trainer(config, digits).fit()
    torch.manual_seed(999)  # another user's global seeding must not matter
    b = Trainer(config, digits).fit()
    assert a.history.train_loss == b.history.train_loss
    for va, vb in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(va, vb)
    c = Trainer(TrainConfig(model="mlp", model_options={"dropout": 0.5}, epochs=2, seed=5), digits).fit()
    assert c.history.train_loss != a.history.train_loss


def test_evaluate_matches_manual_accuracy(digits):
    trainer = Trainer(TrainConfig(model="linear", epochs=1), digits)
    trainer.fit()
    loss, acc = evaluate(trainer.model, trainer.test_split, trainer.loss_fn)
    with torch.no_grad():
        logits = trainer.model.eval()(digits.test.x)
    assert acc == pytest.approx((logits.argmax(1) == digits.test.y).float().mean().item())
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, digits.test.y).item(), rel=1e-5)


def test_divergence_is_detected_and_last_good_weights_kept(digits):
    trainer = Trainer(TrainConfig(model="mlp", optimizer="sgd", lr=10.0, epochs=5), digits)
    events = list(trainer.run())
    diverged = [e for e in events if isinstance(e, Diverged)]
    assert diverged and "diverged at step" in diverged[0].message
    assert trainer.history.diverged_at == diverged[0].step
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert not any(isinstance(e, Done) for e in events)


def test_early_stopping_stops_and_restores_best(digits):
    # A large lr on SGD without decay makes validation loss bounce: patience 1 triggers quickly.
    config = TrainConfig(model="mlp", optimizer="sgd", lr=0.5, epochs=40, patience=1, restore_best=True)
    trainer = Trainer(config, digits)
    events = list(trainer.run())
    stopped = [e for e in events if isinstance(e, Stopped)]
    assert stopped and stopped[0].reason.startswith("early stopping")
    history = trainer.history
    assert len(history.epoch) < 40
    best = min(history.val_loss)
    assert history.val_loss[history.best_epoch - 1] == best
    val_loss, _ = evaluate(trainer.model, trainer.val_split, trainer.loss_fn)
    assert val_loss == pytest.approx(best, rel=1e-5)


def test_should_stop_cancels_after_current_batch(digits):
    calls = {"n": 0}

    def stop_after_five():
        calls["n"] += 1
        return calls["n"] > 5

    trainer = Trainer(TrainConfig(model="linear", epochs=5, batch_size=16), digits)
    events = list(trainer.run(should_stop=stop_after_five))
    assert any(isinstance(e, Stopped) and e.reason == "cancelled" for e in events)
    assert trainer.history.stopped_reason == "cancelled"


def test_snapshots_hold_weights_per_epoch(digits):
    trainer = Trainer(TrainConfig(model="linear", epochs=3, snapshots=True), digits)
    trainer.fit()
    snaps = trainer.history.snapshots
    assert len(snaps) == 4  # the initial weights and one per epoch
    torch.testing.assert_close(snaps[-1]["fc.weight"], trainer.model.fc.weight.detach())
    assert not torch.equal(snaps[0]["fc.weight"], snaps[-1]["fc.weight"])


@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "one_cycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_every_optimizer_and_schedule_trains(digits, optimizer, schedule):
    lr = 0.05 if optimizer in ("sgd", "momentum", "nesterov", "adagrad") else 0.003
    run = Trainer(TrainConfig(model="linear", optimizer=optimizer, schedule=schedule, lr=lr, epochs=2), digits).fit()
    assert run.history.test_acc > 0.5
    assert math.isfinite(run.history.train_loss[-1])


def test_schedule_reaches_lr_of_formula(digits):
    trainer = Trainer(TrainConfig(model="linear", schedule="cosine", lr=0.1, epochs=2), digits)
    trainer.fit()
    total = trainer.steps_per_epoch * 2
    assert trainer.history.lr[0] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * trainer.steps_per_epoch / total)))


@pytest.mark.parametrize("changes,fragment", [
    (dict(lr=0.0), "learning rate"),
    (dict(lr=-1.0), "learning rate"),
    (dict(lr=float("nan")), "learning rate"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=100_000), "batch size"),
    (dict(optimizer="lbfgs"), "optimizer"),
    (dict(schedule="warm"), "schedule"),
    (dict(loss="kl"), "loss"),
    (dict(augmentation="mixup"), "augmentation"),
])
def test_bad_config_raises_user_input_error(digits, changes, fragment):
    with pytest.raises(UserInputError, match=fragment):
        Trainer(TrainConfig(model="linear", **changes), digits)


def test_estimate_is_positive_and_leaves_model_untouched(digits):
    trainer = Trainer(TrainConfig(model="tinyvgg", epochs=2), digits)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.estimate_seconds() > 0
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_run_randomness_restores_global_state():
    torch.manual_seed(7)
    before = torch.get_rng_state()
    randomness = RunRandomness(3, torch.device("cpu"))
    with randomness.active():
        first = torch.rand(3)
    with randomness.active():
        second = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(3)
    torch.testing.assert_close(torch.cat([first, second]), torch.rand(6))


# ---------------------------------------------------------------------------------- the GPU path (issue 17)
def test_mixed_precision_off_cuda_is_refused_with_the_rule(digits):
    with pytest.raises(UserInputError, match="CUDA GPU only; this run is on cpu"):
        Trainer(TrainConfig(mixed_precision=True, epochs=1), digits, device=torch.device("cpu"))


def test_cli_mixed_precision_off_cuda_exits_2_with_one_line(capsys, monkeypatch):
    from engine.__main__ import main

    monkeypatch.setenv("VISIONEXPLORER_DEVICE", "cpu")
    assert main(["train", "--data", "digits", "--epochs", "1", "--mixed-precision", "--json"]) == 2
    assert "CUDA GPU only" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_mixed_precision_trains_on_cuda_and_keeps_float32_weights(digits):
    trainer = Trainer(TrainConfig(mixed_precision=True, epochs=5), digits, device=torch.device("cuda"))
    run = trainer.fit()
    assert torch.backends.cudnn.benchmark
    assert all(p.dtype == torch.float32 for p in run.model.parameters())
    assert run.history.test_acc > 0.95
