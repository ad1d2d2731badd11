"""Every registered model builds and runs for every data set's shape; summary counts are exact."""

import pytest
import torch
from torch import nn

from engine import models
from engine.errors import UserInputError

SHAPES = [(1, 8), (1, 25), (1, 28), (3, 32)]  # digits, faces, (fashion_)mnist, shapes/cifar10


@pytest.mark.parametrize("name", models.names())
@pytest.mark.parametrize("channels,size", SHAPES)
def test_model_builds_and_runs_for_each_dataset_shape(name, channels, size):
    model = models.build(name, in_channels=channels, num_classes=7, image_size=size)
    x = torch.rand(2, channels, size, size)
    out = model(x)  # train mode: a model with extra heads returns {"logits": …, head: …}
    for scores in out.values() if isinstance(out, dict) else [out]:
        assert scores.shape == (2, 7)
    assert model.eval()(x).shape == (2, 7)
    assert isinstance(model[0], models.blocks.Normalize)


@pytest.mark.parametrize("name", models.names())
def test_summary_params_equal_numel_sum(name):
    model = models.build(name, in_channels=3, num_classes=10, image_size=32)
    rows = models.summary(model, (3, 32, 32))
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())


def test_summary_macs_and_shapes_match_hand_count():
    model = models.build("tinyvgg", in_channels=1, num_classes=10, image_size=8, width=4)
    rows = {r.name: r for r in models.summary(model, (1, 8, 8))}
    first_conv = rows["block1.0"]
    assert first_conv.output_shape == (4, 8, 8)
    assert first_conv.macs == 4 * 8 * 8 * (1 * 3 * 3)
    assert rows["fc"].macs == 4 * 2 * 2 * 10
    assert rows["fc"].params == 4 * 2 * 2 * 10 + 10


def test_mlp_784_100_10_has_lecture_parameter_count():
    model = models.build("mlp", in_channels=1, num_classes=10, image_size=28, hidden=(100,))
    assert models.count_params(model) == 784 * 100 + 100 + 100 * 10 + 10


def test_lenet5_on_32x32_matches_1998_layout():
    model = models.build("lenet5", in_channels=1, num_classes=10, image_size=32)
    rows = {r.name: r for r in models.summary(model, (1, 32, 32))}
    assert rows["conv1"].output_shape == (6, 28, 28)
    assert rows["conv2"].output_shape == (16, 10, 10)
    assert rows["fc1"].params == 16 * 5 * 5 * 120 + 120


def test_resnet_skip_toggle_changes_function_and_only_shortcut_parameters():
    a = models.build("resnet_small", in_channels=3, num_classes=10, image_size=16, skip=True, seed=3)
    b = models.build("resnet_small", in_channels=3, num_classes=10, image_size=16, skip=False, seed=3)
    shortcuts = sum(p.numel() for name, p in a.named_parameters() if ".shortcut." in name)
    assert shortcuts > 0 and models.count_params(a) == models.count_params(b) + shortcuts  # no projections in b
    torch.testing.assert_close(dict(a.state_dict())["fc.weight"], dict(b.state_dict())["fc.weight"])
    x = torch.rand(2, 3, 16, 16)
    a.eval(), b.eval()
    assert not torch.allclose(a(x), b(x))


def test_build_is_deterministic_by_seed_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = models.build("tinyvgg", in_channels=1, num_classes=3, image_size=8, seed=5)
    b = models.build("tinyvgg", in_channels=1, num_classes=3, image_size=8, seed=5)
    c = models.build("tinyvgg", in_channels=1, num_classes=3, image_size=8, seed=6)
    assert torch.equal(torch.get_rng_state(), before)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.state_dict()["block1.0.weight"], c.state_dict()["block1.0.weight"])


def test_normalize_uses_dataset_mean_and_std():
    model = models.build("linear", in_channels=2, num_classes=2, image_size=2, mean=(0.5, 0.2), std=(0.25, 0.1))
    x = torch.rand(1, 2, 2, 2)
    expected = (x - torch.tensor([0.5, 0.2]).view(1, 2, 1, 1)) / torch.tensor([0.25, 0.1]).view(1, 2, 1, 1)
    torch.testing.assert_close(model[0](x), expected)


@pytest.mark.parametrize("init", ["kaiming", "xavier", "normal"])
def test_init_schemes_set_expected_std(init):
    model = models.build("mlp", in_channels=1, num_classes=10, image_size=32, hidden=(512,), init=init,
                         init_sigma=0.05)
    w = model.fc1.weight
    fan_in, fan_out = w.shape[1], w.shape[0]
    expected = {"kaiming": (2 / fan_in) ** 0.5, "xavier": (2 / (fan_in + fan_out)) ** 0.5, "normal": 0.05}[init]
    assert abs(w.std().item() - expected) / expected < 0.05
    assert torch.count_nonzero(model.fc1.bias) == 0


@pytest.mark.parametrize("activation", models.activation_names())
def test_every_activation_is_a_fresh_not_inplace_module(activation):
    model = models.build("tinyvgg", in_channels=1, num_classes=2, image_size=8, activation=activation)
    acts = [m for m in model.modules() if type(m).__module__.startswith("torch.nn.modules.activation")]
    assert len(acts) == 4 and len({id(a) for a in acts}) == 4
    assert not any(getattr(a, "inplace", False) for a in acts)


@pytest.mark.parametrize("norm", models.norm_names())
def test_every_norm_builds(norm):
    model = models.build("resnet_small", in_channels=3, num_classes=2, image_size=8, norm=norm)
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 2)
    kinds = {type(m) for m in model.modules()}
    assert (nn.BatchNorm2d in kinds) == (norm == "batch")


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(name="vgg99"), "unknown model 'vgg99'; choose one of: linear, mlp, lenet5"),
    (dict(name="tinyvgg", colour="red"), "no option colour"),
    (dict(name="resnet_small", depth=9), r"6n\+2"),
    (dict(name="tinyvgg", activation="swishy"), "unknown activation 'swishy'; choose one of: sigmoid"),
    (dict(name="mlp", dropout=1.0), "dropout"),
    (dict(name="tinyvgg", image_size=2), "image_size"),
])
def test_bad_options_raise_user_input_error(kwargs, fragment):
    args = dict(in_channels=1, num_classes=3, image_size=8) | kwargs
    with pytest.raises(UserInputError, match=fragment):
        models.build(args.pop("name"), **args)
