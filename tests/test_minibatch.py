"""engine.training.margins and engine.training.minibatch: loss-vs-margin curves, gradient noise, the learning-rate range test."""

import math

import numpy as np
import pytest
import torch

from engine import models
from engine.training import losses, margins, minibatch
from engine.errors import UserInputError

CE = losses.build("cross_entropy")
M = np.linspace(-3, 3, 13)


def test_cross_entropy_margin_profile_matches_the_closed_form():
    k = 4
    p = margins.margin_profile("cross_entropy", margins=M, num_classes=k)
    np.testing.assert_allclose(p.loss, np.log1p((k - 1) * np.exp(-M)), rtol=1e-10)
    p_y = 1 / (1 + (k - 1) * np.exp(-M))
    np.testing.assert_allclose(p.gradient, p_y - 1, rtol=1e-10)  # dL/ds_y = p_y − 1


def test_hinge_margin_profile_is_zero_beyond_the_margin():
    p = margins.margin_profile("multiclass_hinge", margins=M, num_classes=3, margin=1.0)
    np.testing.assert_allclose(p.loss, 2 * np.maximum(0, 1.0 - M))
    np.testing.assert_allclose(p.gradient, np.where(M < 1.0, -2.0, 0.0))


def test_probability_losses_lose_their_gradient_on_confident_mistakes():
    for name in ("mse", "l1"):
        p = margins.margin_profile(name, margins=np.array([-12.0, 0.0]), num_classes=3)
        assert abs(p.gradient[0]) < 1e-3 < abs(p.gradient[1]), name


@pytest.fixture(scope="module")
def model_and_data():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(200, 1, 8, 8, generator=gen), torch.randint(0, 10, (200,), generator=gen)
    return models.build("mlp", in_channels=1, num_classes=10, image_size=8, seed=0), x, y


def test_gradient_noise_shrinks_with_batch_size_and_vanishes_at_full_batch(model_and_data):
    model, x, y = model_and_data
    noise = minibatch.gradient_noise(model, x, y, CE, batch_sizes=[1, 10, 100, 200], repeats=15)
    means = [noise.relative_error[b].mean() for b in (1, 10, 100)]
    assert means[0] > means[1] > means[2]
    assert noise.relative_error[200][0] == pytest.approx(0.0, abs=1e-5)
    assert noise.cosine[200][0] == pytest.approx(1.0, abs=1e-5)
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(CE(model(x), y), params)
    assert noise.full_norm == pytest.approx(float(torch.cat([g.reshape(-1) for g in grads]).norm()), rel=1e-5)
    assert all(p.grad is None for p in model.parameters())


def test_lr_range_test_grows_the_learning_rate_geometrically_and_leaves_the_model_alone(model_and_data):
    model, x, y = model_and_data
    before = [p.detach().clone() for p in model.parameters()]
    result = minibatch.lr_range_test(model, x, y, CE, optimizer="sgd", lr_min=1e-3, lr_max=1.0, steps=30,
                                     batch_size=16)
    ratios = result.lrs[1:] / result.lrs[:-1]
    np.testing.assert_allclose(ratios, (1.0 / 1e-3) ** (1 / 29), rtol=1e-9)
    assert result.lrs[0] == pytest.approx(1e-3)
    assert result.lrs[0] <= result.suggested <= result.lrs[-1]
    assert np.isfinite(result.smoothed).all()
    for p, q in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), q)
    assert model.training


def test_lr_range_test_stops_when_the_loss_blows_up(model_and_data):
    model, x, y = model_and_data
    result = minibatch.lr_range_test(model, x, y, CE, optimizer="sgd", lr_min=1e-2, lr_max=1e4, steps=100,
                                     batch_size=16)
    assert result.stopped_early and len(result.lrs) < 100 and math.isfinite(result.suggested)


@pytest.mark.parametrize("call, words", [
    (lambda m, x, y: minibatch.gradient_noise(m, x, y, CE, batch_sizes=[0]), "batch sizes"),
    (lambda m, x, y: minibatch.lr_range_test(m, x, y, CE, lr_min=1.0, lr_max=0.1), "lr_min < lr_max"),
    (lambda m, x, y: minibatch.lr_range_test(m, x, y, CE, steps=2), "steps"),
    (lambda m, x, y: margins.margin_profile("cross_entropy", margins=M, num_classes=1), "number of classes"),
])
def test_bad_input_names_the_rule(model_and_data, call, words):
    with pytest.raises(UserInputError, match=words):
        call(*model_and_data)


def test_gradient_noise_summaries_follow_the_stored_draws(model_and_data):
    model, x, y = model_and_data
    noise = minibatch.gradient_noise(model, x, y, CE, batch_sizes=[2, 8, 32, 200], repeats=5)
    assert noise.mini_batch_sizes == [2, 8, 32]
    np.testing.assert_allclose(noise.mean_error(), [noise.relative_error[b].mean() for b in (2, 8, 32)])
    # 1/√B through the smallest batch: B = 8 is 4 times B = 2, so its predicted error is half
    np.testing.assert_allclose(noise.sqrt_law(), noise.mean_error()[0] * np.array([1.0, 0.5, 0.25]))
    assert noise.mean_cosine() == pytest.approx({b: float(noise.cosine[b].mean()) for b in (2, 8, 32)})


def test_schedule_curves_match_the_schedule_formulas():
    steps, curves = minibatch.schedule_curves(total_steps=100, base_lr=0.5)
    assert steps[0] == 0 and steps[-1] == 100 and len(steps) == 101  # fewer steps than points: every step
    np.testing.assert_allclose(curves["constant"], 0.5)
    np.testing.assert_allclose(curves["cosine"], 0.25 * (1 + np.cos(np.pi * steps / 100)), atol=1e-12)
    assert curves["step"][49] == pytest.approx(0.5) and curves["step"][50] == pytest.approx(0.05)
    assert curves["step"][75] == pytest.approx(0.005)
    long_steps, _ = minibatch.schedule_curves(total_steps=10_000, base_lr=0.1, points=400)
    assert len(long_steps) == 400 and long_steps[-1] == 10_000
    with pytest.raises(UserInputError, match="positive learning rate"):
        minibatch.schedule_curves(total_steps=10, base_lr=0.0)
