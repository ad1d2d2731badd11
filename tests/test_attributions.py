"""Attribution maps against hand computations, and no side effects on the model."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import models
from engine.errors import UserInputError
from engine.explain import attributions as A


def _cnn(activation: str = "relu", seed: int = 0) -> nn.Sequential:
    model = models.build("tinyvgg", in_channels=3, num_classes=4, image_size=16, width=8, activation=activation,
                         mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), seed=seed)
    return model.eval()


def _image(seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_saliency_equals_the_autograd_input_gradient():
    model, x = _cnn(), _image()
    result = A.attribute(model, x, "saliency", target=2)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xg)[0, 2], xg)
    torch.testing.assert_close(result.raw, grad[0].abs())
    torch.testing.assert_close(result.heat, grad[0].abs().amax(0))


def test_grad_cam_equals_a_hand_written_grad_cam():
    model, x = _cnn(), _image()
    result = A.attribute(model, x, "grad_cam", target=1, layer="block2")
    store = {}
    handle = model.block2.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    try:
        score = model(x.clone().requires_grad_(True))[0, 1]
        (grad,) = torch.autograd.grad(score, store["a"])
    finally:
        handle.remove()
    weights = grad.mean(dim=(2, 3), keepdim=True)  # α_k
    cam = F.relu((weights * store["a"]).sum(1, keepdim=True))  # (1, 1, 4, 4)
    expected = F.interpolate(cam, size=(16, 16), mode="bilinear")[0, 0]
    torch.testing.assert_close(result.heat, expected.detach())
    assert result.heat.min() >= 0 and result.heat.max() > 0


def test_grad_cam_tokens_matches_captum_on_a_conv_layer_with_identity_reshape():
    model, x = _cnn(), _image()
    identity = A.grad_cam_tokens(model, x, 3, "block2", lambda t: t)  # (1, 1, 4, 4)
    captum_map = A.attribute(model, x, "grad_cam", target=3, layer="block2").heat
    torch.testing.assert_close(F.interpolate(identity, size=(16, 16), mode="bilinear")[0, 0], captum_map)


def test_integrated_gradients_are_complete():
    """IG's attributions sum to S(x) − S(black) (Sundararajan et al.'s completeness), up to the Riemann error."""
    model, x = _cnn(), _image()
    result = A.attribute(model, x, "integrated_gradients", target=0, config=A.AttributionConfig(steps=128))
    with torch.no_grad():
        gap = float(model(x)[0, 0] - model(torch.zeros_like(x))[0, 0])
    assert float(result.raw.sum()) == pytest.approx(gap, rel=0.05, abs=1e-3)


def test_occlusion_equals_the_score_drop_of_one_hand_occluded_window():
    model, x = _cnn(), _image()
    config = A.AttributionConfig(window=8, stride=8)
    result = A.attribute(model, x, "occlusion", target=1, config=config)
    occluded = x.clone()
    occluded[..., :8, 8:] = 0.5
    with torch.no_grad():
        drop = float(model(x)[0, 1] - model(occluded)[0, 1])
    assert float(result.raw[0, 0, 8]) == pytest.approx(drop, abs=1e-5)


@pytest.mark.parametrize("name", A.names())
def test_every_method_leaves_the_model_as_found(name):
    model, x = _cnn(), _image()
    model.train()
    model.fc.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    progress = []
    result = A.attribute(model, x, name, target=0, layer="block2", progress=lambda f, m: progress.append(f))
    assert result.heat.shape == (16, 16) and torch.isfinite(result.heat).all()
    assert model.training
    assert not model.fc.weight.requires_grad and model.block1[0].weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert _hooks(model) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    if A.method(name).slow:
        assert progress and progress[-1] == pytest.approx(1.0)


def test_hooks_are_removed_when_a_slow_method_is_cancelled():
    model, x = _cnn(), _image()
    calls = iter([False, True, True, True])
    with pytest.raises(A.Cancelled):
        A.attribute(model, x, "occlusion", target=0, config=A.AttributionConfig(window=2, stride=1),
                    should_stop=lambda: next(calls))
    assert _hooks(model) == 0


def test_hooks_are_removed_when_grad_cam_fails():
    model, x = _cnn(), _image()

    def broken(tokens):
        raise ValueError("boom")

    with pytest.raises(ValueError):
        A.attribute(model, x, "grad_cam", target=0, layer="block2", reshape=broken)
    assert _hooks(model) == 0


def test_guided_methods_are_refused_for_non_relu_networks():
    model = _cnn("gelu")
    assert "GELU" in A.unavailable("guided_backprop", model, layer="block2")
    assert A.unavailable("guided_grad_cam", model, layer="block2")
    assert A.unavailable("grad_cam", model, layer="block2") is None
    assert A.unavailable("guided_backprop", _cnn("relu"), layer="block2") is None
    with pytest.raises(UserInputError, match="ReLU"):
        A.attribute(model, _image(), "guided_backprop", target=0)


def test_bad_inputs_are_user_errors():
    model, x = _cnn(), _image()
    with pytest.raises(UserInputError, match="target class"):
        A.attribute(model, x, "saliency", target=4)
    with pytest.raises(UserInputError, match="attribution method"):
        A.attribute(model, x, "lime", target=0)
    with pytest.raises(UserInputError, match="needs a convolutional layer"):
        A.attribute(model, x, "grad_cam", target=0, layer=None)
    with pytest.raises(UserInputError, match="occlusion window"):
        A.attribute(model, x, "occlusion", target=0, config=A.AttributionConfig(window=40))


def test_sanity_check_randomizes_the_weights_but_not_the_original():
    model, x = _cnn(), _image()
    before = model.block1[0].weight.clone()
    random = A.randomized_copy(model, seed=3)
    assert torch.equal(model.block1[0].weight, before)
    assert not torch.equal(random.block1[0].weight, before)
    assert torch.equal(random.normalize.mean, model.normalize.mean)  # buffers are not weights
    a = A.attribute(model, x, "saliency", target=0).heat
    assert A.rank_correlation(a, a) == pytest.approx(1.0)
    assert A.rank_correlation(a, -a) == pytest.approx(1.0)  # compared on |values|
    b = A.attribute(random, x, "saliency", target=0).heat
    assert A.rank_correlation(a, b) < 0.9


@pytest.mark.parametrize("model_name", models.names())
def test_every_registry_model_runs_each_method_or_says_why_not(model_name):
    entry = models.info(model_name)
    model = models.build(model_name, in_channels=1, num_classes=3, image_size=16).eval()
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    for name in A.names():
        reason = A.unavailable(name, model, layer=entry.gradcam_layer)
        if reason is None:
            result = A.attribute(model, x, name, target=1, layer=entry.gradcam_layer)
            assert result.heat.shape == (16, 16) and torch.isfinite(result.heat).all()
        else:
            assert A.method(name).title in reason
    assert _hooks(model) == 0


def test_grad_cam_starts_at_a_layer_with_a_map_wider_than_a_blob():
    """At 8×8 input a tinyvgg's last block (the architecture's usual layer) is 2×2: too coarse to show where."""
    model = models.build("tinyvgg", in_channels=1, num_classes=10, image_size=8, seed=0).eval()
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    choices, default = A.grad_cam_layers(model, x, "block2")
    assert "block2" in choices and default != "block2"
    with A.capturing(model, [default]) as out, torch.no_grad():
        model(x)
    assert min(out[default].shape[-2:]) >= A.MIN_CAM_SIDE
    wide = models.build("tinyvgg", in_channels=1, num_classes=10, image_size=32, seed=0).eval()
    assert A.grad_cam_layers(wide, torch.rand(1, 1, 32, 32), "block2")[1] == "block2"  # 8×8 there: kept


def test_an_empty_grad_cam_map_says_why():
    assert A.attribute(_cnn(), _image(), "grad_cam", target=1, layer="block2").note is None  # a map: no note
    torch.manual_seed(0)
    empty = A.attribute(_NegativeCam(), torch.rand(1, 1, 8, 8), "grad_cam", target=0, layer="act")
    assert not empty.heat.any() and "The map is empty" in empty.note and "act" in empty.note


class _NegativeCam(nn.Module):
    """conv → ReLU → mean, class 0 scored as minus the mean: at the ReLU's output (≥ 0) every α_k is
    negative, so the map is all zero."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        m = self.act(self.conv(x)).mean(dim=(1, 2, 3))
        return torch.stack([-m, m], dim=1)
