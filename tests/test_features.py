"""Activation maps, filters, top-activating images and feature visualization, against direct computations."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import models
from engine.explain import features
from engine.errors import UserInputError


def _cnn(seed: int = 0) -> nn.Sequential:
    return models.build("tinyvgg", in_channels=1, num_classes=3, image_size=8, width=4, seed=seed)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_activation_maps_equal_running_the_layers_by_hand():
    model = _cnn()
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    maps = {m.name: m for m in features.activation_maps(model, x)}
    assert [m.name for m in features.activation_maps(model, x)][:3] == ["block1.0", "block1.2", "block1.3"]
    with torch.no_grad():
        z = model.normalize(x)
        conv = model.block1[0](z)
        act = model.block1[2](model.block1[1](conv))  # conv → norm (none) → ReLU
    torch.testing.assert_close(maps["block1.0"].maps, conv[0])
    torch.testing.assert_close(maps["block1.2"].maps, act[0])
    assert maps["block1.0"].kind == "conv" and maps["block1.2"].kind == "activation"
    assert maps["block2.6"].kind == "pool" and maps["block2.6"].maps.shape == (4, 2, 2)
    assert "fc" not in maps  # (B, D) outputs are not maps
    assert _hooks(model) == 0


def test_capturing_removes_hooks_even_when_the_forward_pass_raises():
    model = _cnn()
    with pytest.raises(RuntimeError):
        with features.capturing(model, ["block1.0", "block2.0"]):
            model(torch.rand(1, 1, 5, 7))  # the classifier needs 8×8: the forward pass fails
    assert _hooks(model) == 0


def test_unknown_layer_and_bad_shapes_are_user_errors():
    model = _cnn()
    with pytest.raises(UserInputError, match="layer"):
        features.activation_maps(model, torch.rand(1, 1, 8, 8), layers=["nope"])
    with pytest.raises(UserInputError, match="one image"):
        features.activation_maps(model, torch.rand(2, 1, 8, 8))
    mlp = models.build("mlp", in_channels=1, num_classes=3, image_size=8)
    with pytest.raises(UserInputError, match="no convolutional layer"):
        features.conv_filters(mlp)


def test_conv_filters_are_a_copy_of_the_first_conv_weights():
    model = _cnn()
    name, weights = features.conv_filters(model)
    assert name == "block1.0"
    torch.testing.assert_close(weights, model.block1[0].weight.detach())
    weights.zero_()
    assert model.block1[0].weight.abs().sum() > 0


def test_top_activating_images_are_the_argmax_of_the_channel_means(digits):
    model = models.build("tinyvgg", in_channels=1, num_classes=10, image_size=8, width=4)
    images = digits.train.x[:300]
    top = features.top_activating(model, images, "block1.2", k=5)
    with torch.no_grad():
        acts = model.block1[:3](model.normalize(images))  # (N, 4, 8, 8)
    means = acts.mean(dim=(2, 3))  # (N, 4)
    assert top.indices.shape == (4, 5)
    for c in range(4):
        torch.testing.assert_close(top.values[c], means[:, c].topk(5).values)
        assert means[top.indices[c, 0], c] == means[:, c].max()


def test_visualize_raises_the_channel_activation_and_leaves_the_model_alone():
    model = _cnn()
    model.train()
    model.block1[0].weight.requires_grad_(False)
    objective = features.Objective("channel", "block2.3", 1)
    config = features.VisConfig(image_size=24, steps=40, lr=0.05, seed=1)  # any size: the pass ends at the layer
    image = features.visualize(model, objective, channels=1, config=config)
    assert model.training and not model.block1[0].weight.requires_grad and model.fc.weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert _hooks(model) == 0
    start = (0.5 + features.INIT_NOISE * torch.randn(1, 1, 24, 24, generator=torch.Generator().manual_seed(1))).clamp(0, 1)

    def activation(x):
        with features.capturing(model, ["block2.3"]) as out, torch.no_grad():
            try:
                model(x)
            except RuntimeError:
                pass  # the classifier cannot read 24×24; the layer output is captured before it
        return float(out["block2.3"][0, 1].mean())

    assert image.shape == (1, 24, 24) and image.min() >= 0 and image.max() <= 1
    # Gradient ascent must beat its own start, flat images and a random search over 20 noise images.
    rivals = [start, torch.zeros(1, 1, 24, 24), torch.ones(1, 1, 24, 24),
              *torch.rand(20, 1, 1, 24, 24, generator=torch.Generator().manual_seed(2))]
    assert activation(image[None]) > max(activation(r) for r in rivals)


def test_visualize_a_logit_reports_progress_and_stops_when_asked():
    model = _cnn()
    seen = []
    features.visualize(model, features.Objective("logit", None, 2), channels=1,
                       config=features.VisConfig(image_size=8, steps=5), progress=lambda f, m: seen.append(f))
    assert seen == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    seen.clear()
    features.visualize(model, features.Objective("logit", None, 2), channels=1,
                       config=features.VisConfig(image_size=8, steps=50), progress=lambda f, m: seen.append(f),
                       should_stop=lambda: len(seen) >= 3)
    assert len(seen) == 3


def test_visualize_rejects_bad_settings():
    model = _cnn()
    with pytest.raises(UserInputError, match="objective"):
        features.visualize(model, features.Objective("pixel", "block1.0", 0), channels=1)
    with pytest.raises(UserInputError, match="image size"):
        features.visualize(model, features.Objective("channel", "block1.0", 0), channels=1,
                           config=features.VisConfig(image_size=2))


def test_gaussian_blur_keeps_constants_and_sums():
    x = torch.full((1, 2, 9, 9), 0.3)
    torch.testing.assert_close(features.gaussian_blur(x, 1.0), x)
    spike = torch.zeros(1, 1, 15, 15)
    spike[0, 0, 7, 7] = 1.0
    blurred = features.gaussian_blur(spike, 1.0)
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(blurred[0, 0, 7, 7]) < 1.0 and F.mse_loss(blurred, blurred.flip(-1)) < 1e-12


def test_channel_range_and_top_images_read_the_tensors_they_describe(digits):
    model = _cnn()
    maps = features.activation_maps(model, digits.test.x[:1])[0]
    values = maps.maps[1]
    assert maps.channel_range(1) == pytest.approx((float(values.min()), float(values.max()), float(values.mean())))
    images = digits.train.x[:50]
    top = features.top_activating(model, images, maps.name, k=3)
    shown = top.images(images, channels=2)
    assert shown.shape == (6, *images.shape[1:])
    torch.testing.assert_close(shown[3], images[top.indices[1, 0]])  # row 1 starts with channel 1's strongest


def test_canvas_size_keeps_a_logits_input_size_and_bounds_a_layers_canvas():
    assert features.canvas_size("logit", 8) == 8
    assert features.canvas_size("channel", 8) == 32
    assert features.canvas_size("layer", 224) == 128
    assert features.canvas_size("neuron", 64) == 64
