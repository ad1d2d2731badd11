"""Corruptions, occlusion heatmaps and adversarial examples, against direct computations."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import models
from engine.explain import robustness
from engine.errors import UserInputError


def _cnn() -> nn.Sequential:
    return models.build("tinyvgg", in_channels=3, num_classes=5, image_size=16, width=8, seed=0).eval()


def _image(low: float = 0.0, high: float = 1.0, seed: int = 0) -> torch.Tensor:
    return low + (high - low) * torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_fgsm_is_exactly_eps_times_the_gradient_sign():
    model, x = _cnn(), _image(0.2, 0.8)  # away from 0 and 1, so nothing is clipped
    eps, label = 0.05, torch.tensor([2])
    adv = robustness.fgsm(model, x, label, eps=eps)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xg), label), xg)
    torch.testing.assert_close(adv - x, eps * grad.sign())
    assert robustness.linf(adv, x) <= eps + 1e-6


def test_fgsm_stays_in_the_ball_and_in_range_and_raises_the_loss():
    model, x = _cnn(), _image()
    label = model(x).argmax(1)
    adv = robustness.fgsm(model, x, label, eps=0.03)
    assert adv.min() >= 0 and adv.max() <= 1
    assert robustness.linf(adv, x) <= 0.03 + 1e-6
    with torch.no_grad():
        assert F.cross_entropy(model(adv), label) > F.cross_entropy(model(x), label)


def test_fgsm_leaves_the_model_alone():
    model, x = _cnn(), _image()
    model.train()
    model.fc.weight.requires_grad_(False)
    robustness.fgsm(model, x, 1, eps=0.1)
    robustness.pgd(model, x, 1, eps=0.1, steps=2)
    assert model.training and not model.fc.weight.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_pgd_stays_in_the_ball_and_beats_fgsm():
    model, x = _cnn(), _image()
    label = model(x).argmax(1)
    eps = 0.02
    adv = robustness.pgd(model, x, label, eps=eps, steps=20, seed=1)
    assert robustness.linf(adv, x) <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        loss = lambda z: float(F.cross_entropy(model(z), label))  # noqa: E731
        assert loss(adv) >= loss(robustness.fgsm(model, x, label, eps=eps)) - 1e-4
        assert loss(adv) > loss(x)


def test_pgd_reports_progress_and_stops():
    model, x = _cnn(), _image()
    seen = []
    robustness.pgd(model, x, 0, eps=0.05, steps=10, progress=lambda f, m: seen.append(f), should_stop=lambda: len(seen) >= 4)
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_fgsm_sweep_matches_single_fgsm_calls():
    model, x = _cnn(), _image()
    probs = robustness.fgsm_sweep(model, x, 3, [0.0, 0.02, 0.1])
    with torch.no_grad():
        for row, eps in zip(probs, [0.0, 0.02, 0.1]):
            torch.testing.assert_close(row, model(robustness.fgsm(model, x, 3, eps=eps)).softmax(1)[0])


def test_eps_outside_pixel_range_is_a_user_error():
    with pytest.raises(UserInputError, match="ε"):
        robustness.fgsm(_cnn(), _image(), 0, eps=2.0)


def test_photometric_edits_match_their_formulas():
    x = _image()
    torch.testing.assert_close(robustness.photometric(x, gamma=2.0), x**2)
    torch.testing.assert_close(robustness.photometric(x, brightness=0.1), (x + 0.1).clamp(0, 1))
    half = robustness.photometric(x, contrast=0.5)
    torch.testing.assert_close(half.mean(), x.mean(), atol=1e-6, rtol=0)
    assert half.std() == pytest.approx(float(x.std()) * 0.5, rel=1e-4)


def test_neutral_corruption_is_the_identity_and_every_edit_stays_in_range():
    x = _image()
    torch.testing.assert_close(robustness.corrupt(x, robustness.Corruption()), x)
    c = robustness.Corruption(brightness=0.3, contrast=2.0, gamma=0.5, rotation=30, scale=1.5, shift=0.2,
                              elastic=3.0, noise=0.2, blur=1.0)
    edited = robustness.corrupt(x, c)
    assert edited.shape == x.shape and edited.min() >= 0 and edited.max() <= 1
    torch.testing.assert_close(robustness.corrupt(x, c), edited)  # seeded: the same edit twice


def test_rotation_by_90_degrees_turns_the_pixels():
    x = _image()
    turned = robustness.geometric(x, rotation=90)
    torch.testing.assert_close(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_elastic_moves_pixels_by_at_most_alpha():
    x = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16).contiguous()  # a horizontal ramp
    warped = robustness.elastic(x, alpha=2.0, seed=0)
    step = 1 / 15  # ramp value per pixel
    assert (warped - x).abs().max() <= 2.0 * step + 1e-5
    assert (warped - x).abs().max() > 0.5 * step


def test_occlusion_heatmap_entries_are_the_probabilities_of_occluded_images():
    model, x = _cnn(), _image()
    heat = robustness.occlusion_heatmap(model, x, 2, patch=4, stride=4)
    assert heat.shape == (4, 4)
    occluded = x.clone()
    occluded[..., 4:8, 8:12] = 0.5
    with torch.no_grad():
        expected = model(occluded).softmax(1)[0, 2]
    assert float(heat[1, 2]) == pytest.approx(float(expected), abs=1e-6)
    with pytest.raises(UserInputError, match="patch"):
        robustness.occlusion_heatmap(model, x, 2, patch=32, stride=4)


def test_occlusion_heatmap_cancelled_leaves_nan_for_the_rest(monkeypatch):
    monkeypatch.setattr(robustness, "CHUNK", 3)
    model, x = _cnn(), _image()
    calls = iter([False, True])
    heat = robustness.occlusion_heatmap(model, x, 0, patch=4, stride=4, should_stop=lambda: next(calls))
    assert torch.isfinite(heat.flatten()[:3]).all() and torch.isnan(heat.flatten()[3:]).all()
    assert not math.isnan(float(heat[0, 0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_attacks_on_a_gpu_model_take_and_return_cpu_images():
    model, x = _cnn().cuda(), _image(0.2, 0.8)
    adv = robustness.fgsm(model, x, 1, eps=0.05)
    assert adv.device == x.device and robustness.linf(adv, x) <= 0.05 + 1e-6
    assert robustness.pgd(model, x, 1, eps=0.05, steps=3).device == x.device
    assert robustness.occlusion_heatmap(model, x, 1, patch=4, stride=4).device.type == "cpu"


def test_occlusion_window_is_a_fraction_of_the_side_with_half_stride():
    assert robustness.occlusion_window(28, fraction=0.25) == (7, 3)
    assert robustness.occlusion_window(224, fraction=0.5) == (112, 56)
    assert robustness.occlusion_window(8, fraction=0.05) == (1, 1)  # never below one pixel
    with pytest.raises(UserInputError, match="fraction"):
        robustness.occlusion_window(28, fraction=0.0)


def test_attack_returns_the_methods_image_and_its_perturbation():
    model, x = _cnn(), _image()
    fgsm = robustness.attack(model, x, 1, method="fgsm", eps=0.04)
    torch.testing.assert_close(fgsm.adversarial, robustness.fgsm(model, x, 1, eps=0.04))
    torch.testing.assert_close(fgsm.delta, fgsm.adversarial - x)
    assert fgsm.linf == pytest.approx(float((fgsm.adversarial - x).abs().max()))
    pgd = robustness.attack(model, x, 1, method="pgd", eps=0.04, steps=3, seed=2)
    torch.testing.assert_close(pgd.adversarial, robustness.pgd(model, x, 1, eps=0.04, steps=3, seed=2))
    with pytest.raises(UserInputError, match="attack must be one of fgsm, pgd"):
        robustness.attack(model, x, 1, method="cw", eps=0.04)


def test_eps_curve_reads_the_label_and_its_strongest_rival_off_fgsm_sweeps():
    model, x = _cnn(), _image()
    label = int(model(x).argmax())
    curve = robustness.eps_curve(model, x, label, around=0.03, points=6)
    assert curve.eps == pytest.approx([0.0, 0.012, 0.024, 0.036, 0.048, 0.06])  # 0 … 2 × 0.03
    probabilities = robustness.fgsm_sweep(model, x, label, curve.eps)
    assert curve.label_probability == pytest.approx(probabilities[:, label].tolist())
    others = probabilities[-1].clone()
    others[label] = -1
    assert curve.rival == int(others.argmax()) != label
    assert curve.rival_probability == pytest.approx(probabilities[:, curve.rival].tolist())
    with torch.no_grad():
        assert curve.label_probability[0] == pytest.approx(float(model(x).softmax(1)[0, label]), abs=1e-6)
    assert robustness.eps_curve(model, x, label, around=0.0, points=3).eps == [0.0, 0.01, 0.02]  # at least 0.02
