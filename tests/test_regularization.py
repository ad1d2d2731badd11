"""Regularizers against theory and PyTorch: L1 zeros, L2 vs (decoupled) weight decay, dropout, MC-dropout,
class weights, imbalance, leakage and the capacity grid. (Penalty formulas, soft-thresholding and a single
L2 = SGD-weight-decay step are in test_trainer_extensions.py.)"""

import json
import math
import pickle

import pytest
import torch
import torch.nn.functional as F

from engine import models
from engine.data.subsample import class_counts, subsample
from engine.errors import UserInputError
from engine.training import losses
from engine.training.capacity import Gap, capacity_grid, gap_at, with_width
from engine.training.dropout import at_test_time, dropout_masks, mc_dropout
from engine.training.pitfalls import (CLASS_WEIGHTS, NO_REMEDY, class_scores, imbalance_plan, imbalance_runs,
                                      leakage)
from engine.training.regularizers import (DECOUPLED, L2_IN_LOSS, WEIGHT_DECAY, decay_paths, regularized,
                                          regularizer_names, weight_histogram, weight_histograms)
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer, predict


# ----------------------------------------------------------------------------- L1
def test_proximal_l1_under_adam_makes_exact_zeros_where_no_penalty_makes_none(digits):
    few = subsample(digits, per_class=15)
    base = dict(model="mlp", model_options={"hidden": (64,)}, epochs=10, lr=3e-3)
    plain = Trainer(TrainConfig(**base), few).fit()
    sparse = Trainer(TrainConfig(**base, l1=0.3), few).fit()
    assert plain.history.zero_fraction[-1] == 0.0
    assert sparse.history.zero_fraction[-1] > 0.1
    assert sparse.history.zero_fraction == sorted(sparse.history.zero_fraction)  # zeros pile up epoch by epoch
    histogram = weight_histogram(sparse.model)
    assert sum(histogram.counts) == histogram.total == sum(p.numel() for p in (sparse.model.fc1.weight,
                                                                               sparse.model.fc_out.weight))
    centre = len(histogram.counts) // 2
    assert histogram.edges[centre] < 0 < histogram.edges[centre + 1]
    exact = sum(int((p == 0).sum()) for p in (sparse.model.fc1.weight, sparse.model.fc_out.weight))
    assert histogram.counts[centre] >= exact  # the spike at zero is one bar
    assert histogram.counts[centre] == max(histogram.counts)
    assert histogram.zero_fraction == pytest.approx(sparse.history.zero_fraction[-1])
    shared = weight_histograms({"plain": plain.model, "sparse": sparse.model})
    assert shared["plain"].edges == shared["sparse"].edges  # one range, so the widths compare
    layers = [p.detach() for run in (plain, sparse) for p in (run.model.fc1.weight, run.model.fc_out.weight)]
    top = max(float(p.abs().max()) for p in layers)
    assert shared["plain"].edges[-1] == pytest.approx(top)


# ----------------------------------------------------------------------------- L2 vs weight decay
def test_l2_in_the_loss_is_sgd_weight_decay_step_for_step():
    paths = decay_paths("sgd", lr=0.05, strength=0.4, steps=40, replicas=4, seed=3)
    for variant in (WEIGHT_DECAY, DECOUPLED):
        torch.testing.assert_close(paths.first_steps[variant], paths.first_steps[L2_IN_LOSS])
        torch.testing.assert_close(paths.paths[variant], paths.paths[L2_IN_LOSS])
    # the closed form of the update: w ← (1 − ηλ) w − η g, with g = scale · ξ the demo's own noise
    torch.manual_seed(0)
    half = torch.randn(40, 2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    noise = torch.cat([half, -half], dim=1) * torch.tensor([10.0, 0.1], dtype=torch.float64)
    w = torch.ones(4, 2, dtype=torch.float64)
    for step, g in enumerate(noise, start=1):
        w = (1 - 0.05 * 0.4) * w - 0.05 * g
        torch.testing.assert_close(paths.first_steps[L2_IN_LOSS][step], w[0])
    # antithetic noise cancels, so the mean follows (1 − ηλ)^t exactly for both weights
    torch.testing.assert_close(paths.paths[L2_IN_LOSS][:, 0], torch.tensor(paths.expected, dtype=torch.float64))


def test_l2_in_the_trainer_equals_sgd_weight_decay_over_whole_epochs(digits):
    base = dict(model="linear", optimizer="momentum", lr=0.05, epochs=2, penalize_all=True)
    penalty = Trainer(TrainConfig(**base, l2=0.01), digits).fit().model
    decay = Trainer(TrainConfig(**base, weight_decay=0.01), digits).fit().model
    plain = Trainer(TrainConfig(**base), digits).fit().model
    for a, b in zip(penalty.parameters(), decay.parameters()):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(penalty.fc.weight, plain.fc.weight)


def test_momentum_decoupled_decay_differs_from_l2():
    paths = decay_paths("momentum", lr=0.01, strength=0.5, steps=100, replicas=2)
    torch.testing.assert_close(paths.paths[WEIGHT_DECAY], paths.paths[L2_IN_LOSS])
    assert paths.difference(L2_IN_LOSS, DECOUPLED) > 0.1
    # decoupled: the decay skips the velocity, so the mean still follows (1 − ηλ)^t
    torch.testing.assert_close(paths.paths[DECOUPLED][:, 1], torch.tensor(paths.expected, dtype=torch.float64))


def _adam_by_hand(noise, *, lr, strength, decoupled, betas=(0.9, 0.999), eps=1e-8):
    """Kingma & Ba's Adam with the L2 gradient λw, or Loshchilov & Hutter's AdamW (decay applied to w)."""
    w = torch.ones(noise.shape[1:], dtype=torch.float64)
    m, v, out = torch.zeros_like(w), torch.zeros_like(w), [w.clone()]
    for t, g in enumerate(noise, start=1):
        if decoupled:
            w = w * (1 - lr * strength)
        else:
            g = g + strength * w
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        w = w - lr * m_hat / (v_hat.sqrt() + eps)
        out.append(w.clone())
    return torch.stack(out)


def test_adam_l2_differs_from_adamw_as_the_theory_says():
    lr, strength = 0.01, 0.5
    paths = decay_paths("adam", lr=lr, strength=strength, steps=200, replicas=2, seed=1)
    half = torch.randn(200, 1, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    noise = torch.cat([half, -half], dim=1) * torch.tensor([10.0, 0.1], dtype=torch.float64)
    torch.testing.assert_close(paths.first_steps[L2_IN_LOSS], _adam_by_hand(noise, lr=lr, strength=strength,
                                                                            decoupled=False)[:, 0])
    torch.testing.assert_close(paths.first_steps[WEIGHT_DECAY], paths.first_steps[L2_IN_LOSS])
    torch.testing.assert_close(paths.first_steps[DECOUPLED], _adam_by_hand(noise, lr=lr, strength=strength,
                                                                           decoupled=True)[:, 0])
    expected = torch.tensor(paths.expected, dtype=torch.float64)
    # AdamW shrinks every weight by the same factor (1 − ηλ) per step, whatever its gradients' size ...
    torch.testing.assert_close(paths.paths[DECOUPLED], expected[:, None].expand(-1, 2))
    # ... Adam + L2 divides the decay by √v̂: the weight with large gradients is hardly decayed, the other hard
    large, small = paths.paths[L2_IN_LOSS][-1]
    assert large > 0.8 > expected[-1] > 0.05 > small


def test_adamw_in_the_trainer_is_torch_adamw(digits):
    config = TrainConfig(model="linear", optimizer="adamw", weight_decay=0.3, lr=0.01, epochs=1, batch_size=64,
                         report_every=1)
    trainer = Trainer(config, digits)
    reference = models.build_from_config(trainer.model_config)
    reference.load_state_dict(trainer.model.state_dict())
    optimizer = torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=0.3)
    order = torch.randperm(len(digits.train), generator=torch.Generator().manual_seed(config.seed))
    trainer.fit()
    for start in range(0, len(order), 64):
        index = order[start:start + 64]
        optimizer.zero_grad()
        F.cross_entropy(reference(digits.train.x[index]), digits.train.y[index]).backward()
        optimizer.step()
    for a, b in zip(trainer.model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad", [dict(optimizer="rmsprop"), dict(lr=0), dict(strength=-1), dict(strength=200),
                                 dict(steps=0), dict(scales=(1.0, 0.0)), dict(replicas=3)])
def test_decay_demo_refuses_bad_input(bad):
    with pytest.raises(UserInputError):
        decay_paths(**bad)


# ----------------------------------------------------------------------------- dropout
def _dropout_model(digits, p=0.5, norm="none"):
    return models.build("tinyvgg", in_channels=1, num_classes=10, image_size=8, dropout=p, norm=norm,
                        mean=digits.mean, std=digits.std)


def test_dropout_is_the_identity_in_eval_and_keeps_the_expected_value_in_training(digits):
    model = _dropout_model(digits, p=0.4)
    demo = dropout_masks(model, digits.test.x[3], samples=16, seed=2)
    assert demo.layer == "dropout" and demo.p == 0.4 and demo.inputs.shape == (16 * 2 * 2,)
    assert torch.equal(demo.eval_output, demo.inputs)
    torch.testing.assert_close(demo.outputs, demo.inputs * demo.masks / 0.6)  # kept units scaled by 1/(1 − p)
    assert set(demo.masks.unique().tolist()) == {0.0, 1.0}
    assert abs(demo.masks.mean().item() - 0.6) < 0.1
    scale = demo.inputs.abs().max().item()
    torch.testing.assert_close(demo.mean_output, demo.inputs, atol=0.1 * scale, rtol=0)
    assert all(m.training for m in model.modules())  # the caller's mode is back
    # the real layer: the model in eval mode equals the model without the layer
    x = digits.test.x[:8]
    with torch.no_grad():
        model.eval()
        without = torch.nn.Sequential(*[m for name, m in model.named_children() if name != "dropout"])
        torch.testing.assert_close(model(x), without(x))
    override = dropout_masks(model, digits.test.x[3], p=0.9, samples=64)
    assert override.p == 0.9 and override.masks.mean() < 0.25
    with pytest.raises(UserInputError):
        dropout_masks(model, digits.test.x[3], p=1.0)
    with pytest.raises(UserInputError, match="no dropout layer"):
        dropout_masks(models.build("linear", in_channels=1, num_classes=10, image_size=8), digits.test.x[0])


def test_mc_dropout_keeps_batchnorm_in_eval_and_restores_modes(digits):
    model = _dropout_model(digits, p=0.5, norm="batch")
    model.train()
    with torch.no_grad():
        model(digits.train.x[:64])  # running statistics that differ from any test batch's own
    model.block1.eval()  # a mixed state the caller chose, which must come back
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    result = mc_dropout(model, digits.test.x, digits.test.y, passes=5, seed=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics untouched
    assert [m.training for m in model.modules()] == modes
    assert result.passes.shape == (5, len(digits.test), 10)
    assert not torch.allclose(result.passes[0], result.passes[1])
    torch.testing.assert_close(result.deterministic, predict(model, digits.test.x))
    # With (almost) no units dropped, a stochastic pass must equal the eval pass: BatchNorm in eval mode.
    model.dropout.p = 1e-12
    near = mc_dropout(model, digits.test.x[:32], digits.test.y[:32], passes=2)
    torch.testing.assert_close(near.passes[0], near.deterministic)
    with at_test_time(model, dropout=True):
        assert model.dropout.training and not model.block1[1].training
    assert result.accuracy_after()[-1] == pytest.approx(result.mc_accuracy)
    assert len(result.pass_accuracies) == 5 and result.spread().shape == (len(digits.test),)


def test_mc_dropout_refuses_a_model_without_dropout_and_bad_passes(digits):
    with pytest.raises(UserInputError, match="no dropout"):
        mc_dropout(_dropout_model(digits, p=0.0), digits.test.x, digits.test.y)
    with pytest.raises(UserInputError, match="passes"):
        mc_dropout(_dropout_model(digits), digits.test.x, digits.test.y, passes=0)


# ----------------------------------------------------------------------------- class weights
def test_class_weighted_cross_entropy_equals_its_formula_and_pickles():
    gen = torch.Generator().manual_seed(0)
    logits, y = torch.randn(12, 3, generator=gen), torch.randint(0, 3, (12,), generator=gen)
    weights = [0.5, 2.0, 1.0]
    loss = losses.build("cross_entropy", class_weights=weights)
    w = torch.tensor(weights)[y]
    expected = (w * -logits.log_softmax(1)[torch.arange(12), y]).sum() / w.sum()
    torch.testing.assert_close(loss(logits, y), expected)
    torch.testing.assert_close(pickle.loads(pickle.dumps(loss))(logits, y), expected)
    torch.testing.assert_close(losses.build("cross_entropy", class_weights=[1, 1, 1])(logits, y),
                               F.cross_entropy(logits, y))
    with pytest.raises(UserInputError, match="3 classes"):
        losses.build("cross_entropy", class_weights=[1.0, 2.0])(logits, y)
    for bad in ([1, -1, 1], [0, 0, 0], ["a"], [math.nan, 1, 1]):
        with pytest.raises(UserInputError, match="class_weights"):
            losses.build("cross_entropy", class_weights=bad)
    assert losses.balanced_class_weights([30, 10, 20]) == pytest.approx([60 / 90, 60 / 30, 60 / 60])
    with pytest.raises(UserInputError):
        losses.balanced_class_weights([3, 0])


# ----------------------------------------------------------------------------- imbalance
def test_imbalance_plan_keeps_every_class_and_says_what_gave(digits):
    plan = imbalance_plan(digits, per_class=100, ratio=20)
    assert plan.counts == [max(1, round(100 * 20 ** (-c / 9))) for c in range(10)] and not plan.notes
    extreme = imbalance_plan(digits, per_class=10_000, ratio=1000)
    smallest = min(class_counts(digits.train.y, 10))
    assert extreme.counts[0] == smallest and min(extreme.counts) == 1
    assert any("would get no training image" in note for note in extreme.notes)
    assert any(f"only {smallest}" in note for note in extreme.notes)
    for bad in (dict(per_class=10, ratio=0.5), dict(per_class=0, ratio=2), dict(per_class=10, ratio=1e6)):
        with pytest.raises(UserInputError):
            imbalance_plan(digits, **bad)


def test_class_weights_lift_the_balanced_accuracy_of_an_imbalanced_training_set(digits):
    plan = imbalance_plan(digits, per_class=100, ratio=20)
    runs = imbalance_runs(TrainConfig(epochs=15), digits, plan)
    assert [name for name, _, _ in runs] == [f"tinyvgg · ratio 20 · {r}" for r in (NO_REMEDY, CLASS_WEIGHTS)]
    (_, plain_config, data), (_, weighted_config, _) = runs
    assert class_counts(data.train.y, 10) == plan.counts
    assert weighted_config.loss_options["class_weights"][-1] > 1 > weighted_config.loss_options["class_weights"][0]
    scores = {}
    for name, config, dataset in runs:
        scores[name] = class_scores(Trainer(config, dataset).fit().model, digits.test, 10)
    plain, weighted = scores.values()
    present = [r for r in plain.per_class if not math.isnan(r)]
    assert plain.balanced_accuracy == pytest.approx(sum(present) / len(present))
    assert min(plain.per_class[-3:]) < min(plain.per_class[:3])  # the rare classes are the ones missed
    assert weighted.balanced_accuracy > plain.balanced_accuracy + 0.01
    with pytest.raises(UserInputError, match="cross_entropy"):
        imbalance_runs(TrainConfig(loss="mse"), digits, plan)


# ----------------------------------------------------------------------------- leakage
def test_leaked_test_images_inflate_the_score_and_the_held_out_part_stays_honest(digits):
    from engine.training.capacity import sized

    small = sized(digits, 10)
    leak = leakage(small, fraction=0.5, seed=0)
    assert len(leak.leaked) + len(leak.held_out) == len(digits.test)
    assert len(leak.leaky.train) == len(small.train) + len(leak.leaked) and leak.clean.train is small.train
    assert leak.leaky.test is leak.held_out and leak.clean.test is leak.held_out
    trained = {name: Trainer(TrainConfig(epochs=15), data).fit() for name, data in
               (("clean", leak.clean), ("leaky", leak.leaky))}
    leaky = {part: class_scores(trained["leaky"].model, split, 10).accuracy
             for part, split in (("leaked", leak.leaked), ("held_out", leak.held_out), ("test", leak.test))}
    clean_leaked = class_scores(trained["clean"].model, leak.leaked, 10).accuracy
    assert leaky["leaked"] > 0.99 and leaky["leaked"] > leaky["held_out"] + 0.03
    assert leaky["test"] > leaky["held_out"] and leaky["leaked"] > clean_leaked + 0.05
    assert trained["leaky"].history.test_acc == pytest.approx(leaky["held_out"])  # its own test is the honest one
    for bad in (0.0, 1.0, 0.001):
        with pytest.raises(UserInputError):
            leakage(small, fraction=bad)


# ----------------------------------------------------------------------------- capacity and data
def test_capacity_grid_names_sizes_and_widths(digits):
    runs = capacity_grid(TrainConfig(model="mlp", batch_size=64), digits, per_class=[3, None], widths=[8, 128])
    assert [name for name, _, _ in runs] == ["mlp w8 · 3/class", "mlp w128 · 3/class", "mlp w8 · all images",
                                             "mlp w128 · all images"]
    assert runs[0][1].batch_size == 30 and runs[2][1].batch_size == 64  # a batch no larger than the subset
    assert runs[1][1].model_options["hidden"] == (128,) and len(runs[0][2].train) == 30
    assert runs[2][2] is digits
    assert with_width(TrainConfig(model="tinyvgg"), 4).model_options["width"] == 4
    with pytest.raises(UserInputError, match="no width"):
        with_width(TrainConfig(model="linear"), 4)
    with pytest.raises(UserInputError, match="at most"):
        capacity_grid(TrainConfig(), digits, per_class=[1, 2, 3, 4], widths=[1, 2, 3, 4])
    with pytest.raises(UserInputError, match="between 1 and"):
        capacity_grid(TrainConfig(), digits, per_class=[10_000], widths=[8])


def test_less_data_widens_the_gap(digits):
    runs = capacity_grid(TrainConfig(model="mlp", epochs=20, lr=3e-3), digits, per_class=[5, None], widths=[256])
    few, many = (gap_at(Trainer(config, data).fit().history, 20) for _, config, data in runs)
    assert few.train_acc > 0.95 and few.gap > many.gap + 0.05
    assert few.verdict.startswith("over-fitting") and many.verdict.startswith("a good fit")
    assert Gap(1, 0.3, 0.28, 2.0, 2.1).verdict.startswith("under-fitting")


# ----------------------------------------------------------------------------- the registry and the CLI
def test_every_regularizer_makes_a_config_the_trainer_accepts(digits):
    base = TrainConfig(model="mlp", epochs=1)
    assert regularized(base, "none") == base
    for name in regularizer_names():
        config = regularized(base, name)
        Trainer(config, digits)  # validated, built
        assert config != base or name == "none"
    assert regularized(base, "weight_decay", 0.2).optimizer == "adamw"
    assert regularized(base, "dropout", 0.3).model_options["dropout"] == 0.3
    with pytest.raises(UserInputError, match="no dropout"):
        regularized(TrainConfig(model="linear"), "dropout")
    with pytest.raises(UserInputError):
        regularized(base, "l2", -1.0)


def test_cli_trains_with_adamw_and_balanced_class_weights(capsys):
    from engine.__main__ import main

    code = main(["train", "--data", "digits", "--model", "linear", "--optimizer", "adamw", "--weight-decay", "0.5",
                 "--per-class", "40", "--imbalance-ratio", "8", "--class-weights", "balanced", "--epochs", "2",
                 "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["config"]["optimizer"] == "adamw" and summary["config"]["weight_decay"] == 0.5
    weights = summary["config"]["loss_options"]["class_weights"]
    assert len(weights) == 10 and weights[-1] == pytest.approx(8 * weights[0], rel=0.05)
    for bad in ("1,2", "a,b"):
        assert main(["train", "--model", "linear", "--epochs", "1", "--class-weights", bad]) == 2
        assert "class-weights" in capsys.readouterr().err
