"""Normalization: folding equals conv+BN(eval), axes found by experiment match the definitions, preprocessing."""

import pytest
import torch
from torch import nn

from engine import models
from engine.layers import normalization
from engine.errors import UserInputError


def _trained_bn(channels: int, seed: int = 0) -> nn.BatchNorm2d:
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(channels).train()
    for _ in range(10):
        bn(torch.randn(16, channels, 5, 5) * 3 + 2)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.normal_()
    return bn.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_folded_conv_equals_conv_then_bn_eval(bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3, padding=1, bias=bias, stride=2)
    bn = _trained_bn(6)
    fused = normalization.fold_batchnorm(conv, bn)
    x = torch.rand(4, 3, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), bn(conv(x)), atol=1e-5, rtol=0)
    assert fused.stride == conv.stride and fused.bias is not None
    assert conv.bias is None or not torch.equal(conv.bias, fused.bias)  # the original conv is untouched


def test_folding_a_trained_resnet_stem_keeps_its_output(small_shapes):
    model = models.build("resnet_small", in_channels=3, num_classes=4, image_size=16, seed=1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(small_shapes.train.x[:64])  # the running statistics move away from 0 and 1
    model.eval()
    conv, bn = model.stem[0], model.stem[1]
    x = model.normalize(small_shapes.val.x[:8])
    with torch.no_grad():
        torch.testing.assert_close(normalization.fold_batchnorm(conv, bn)(x), bn(conv(x)), atol=1e-5, rtol=0)


def test_fold_rejects_mismatched_layers():
    with pytest.raises(UserInputError, match="output channels"):
        normalization.fold_batchnorm(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(5))


def test_train_and_eval_outputs_differ_and_bn_is_left_as_found():
    bn = _trained_bn(2)
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    x = torch.randn(8, 2, 4, 4)
    train_out, eval_out = normalization.batchnorm_train_eval(bn, x)
    mean, var = x.mean((0, 2, 3), keepdim=True), x.var((0, 2, 3), unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(train_out, expected.detach(), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(eval_out, bn(x))
    assert not torch.allclose(train_out, eval_out)
    assert not bn.training
    assert torch.equal(bn.running_mean, before[0]) and int(bn.num_batches_tracked) == before[2]


def test_running_stats_follow_the_exponential_average():
    x = torch.rand(300, 1, 4, 4) * 4 + 1
    trace = normalization.running_stats(x, batch_size=16, momentum=0.2, steps=40)
    running = 0.0
    for batch_mean, logged in zip(trace.batch_mean, trace.running_mean):
        running = 0.8 * running + 0.2 * batch_mean
        assert abs(running - logged) < 1e-4
    assert abs(trace.running_mean[-1] - trace.data_mean) < 0.1 * trace.data_mean
    with pytest.raises(UserInputError, match="momentum"):
        normalization.running_stats(x, batch_size=16, momentum=0.0, steps=3)


def test_batch_dependence_shrinks_with_batch_size(digits):
    spread = normalization.batch_dependence(digits.train.x[:300], batch_sizes=[2, 8, 64], trials=20)
    assert spread[0] > spread[1] > spread[2] > 0


@pytest.mark.parametrize("kind,axes,reduce_dims", [
    ("batch", ("N", "H", "W"), (0, 2, 3)),
    ("layer", ("C", "H", "W"), (1, 2, 3)),
    ("instance", ("H", "W"), (2, 3)),
    ("group", ("C", "H", "W"), None),
])
def test_norm_group_axes_match_the_definition(kind, axes, reduce_dims):
    x = torch.randn(3, 4, 2, 5)
    mask, found = normalization.norm_group(kind, x, index=(1, 2, 1, 3), groups=2)
    assert found == axes
    if reduce_dims is not None:
        expected = torch.zeros_like(mask)
        sel = [slice(None) if d in reduce_dims else i for d, i in enumerate((1, 2, 1, 3))]
        expected[tuple(sel)] = True
        assert torch.equal(mask, expected)
        norm = normalization.make_norm(kind, 4).train()
        mean = x.mean(reduce_dims, keepdim=True)
        var = x.var(reduce_dims, unbiased=False, keepdim=True)
        torch.testing.assert_close(norm(x).detach(), (x - mean) / torch.sqrt(var + 1e-5), atol=1e-4, rtol=1e-4)
    else:  # channels 2 and 3 form the second of 2 groups, over all positions of example 1
        assert mask[1, 2:].all() and mask.sum() == 2 * 2 * 5


def test_preprocessing_modes_match_hand_computations(small_shapes):
    x = small_shapes.train.x[:50]
    out = normalization.preprocess(x, "mean_image")
    torch.testing.assert_close(out.x.mean(0), torch.zeros_like(x[0]), atol=1e-6, rtol=0)
    out = normalization.preprocess(x, "channel_mean")
    torch.testing.assert_close(out.x.mean((0, 2, 3)), torch.zeros(3), atol=1e-6, rtol=0)
    out = normalization.preprocess(x, "standardize")
    torch.testing.assert_close(out.x.std((0, 2, 3)), torch.ones(3), atol=1e-5, rtol=0)
    assert len(out.channel_mean) == 3
    edges, counts = normalization.channel_histograms(out.x, bins=20)
    assert len(edges) == 21 and [sum(c) for c in counts] == [50 * 16 * 16] * 3
    with pytest.raises(UserInputError, match="preprocessing must be one of"):
        normalization.preprocess(x, "whiten")


def test_instance_norm_in_registries():
    model = models.build("tinyvgg", in_channels=1, num_classes=2, image_size=8, norm="instance")
    assert any(isinstance(m, nn.InstanceNorm2d) for m in model.modules())
    with pytest.raises(UserInputError, match="instance.*MLP"):
        models.build("mlp", in_channels=1, num_classes=2, image_size=8, norm="instance")


def test_modes_demo_summarizes_both_modes():
    bn = _trained_bn(2)
    x = torch.randn(8, 2, 4, 4)
    demo = normalization.modes_demo(bn, x, gamma=2.0, beta=0.5)
    assert len(demo.train_values) == 8 * 4 * 4
    assert abs(demo.train_mean - 0.5) < 1e-5 and abs(demo.train_std - 2.0) < 0.05  # γ·x̂ + β over the batch
    with torch.no_grad():
        assert abs(demo.eval_mean - float(bn(x).mean())) > 1e-3  # eval used γ = 2, β = 0.5, not bn's own
