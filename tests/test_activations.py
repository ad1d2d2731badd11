"""Activations: the one list in blocks, closed-form derivatives equal autograd, Maxout is a drop-in, every
part of the engine sees the same activation modules, gradient flow and dead units behave."""

import math

import pytest
import torch
from torch import nn

from engine import models
from engine.errors import UserInputError
from engine.explain import attributions, features
from engine.layers import activations
from engine.models import blocks
from engine.models.blocks import Maxout, make_activation
from engine.training import gradient_flow as gflow
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer


def test_the_curves_read_the_one_activation_list_in_lecture_order():
    assert activations.names() == blocks.activation_names() == [
        "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "softplus", "maxout"]
    for name in activations.names():
        entry = activations.info(name)
        assert entry is blocks.activation_info(name) and entry.name == name
        assert entry.title and entry.formula and entry.derivative_formula
        assert type(make_activation(name)) is entry.module


@pytest.mark.parametrize("name", activations.names())
def test_closed_form_derivative_equals_autograd(name):
    # Avoid the kinks (x = 0, and Maxout's crossing near 0), where one-sided derivatives differ.
    x = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    x = x[(x.abs() > 1e-3)]
    y, dy = activations.curve(name, x)
    torch.testing.assert_close(dy, activations.info(name).derivative(x).to(dy.dtype), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(y, make_activation(name).to(x.dtype)(x).detach())


def test_curve_values_match_hand_computations():
    x = torch.tensor([-2.0, 0.5, 3.0])
    torch.testing.assert_close(activations.curve("relu", x)[0], torch.tensor([0.0, 0.5, 3.0]))
    torch.testing.assert_close(activations.curve("softplus", x)[1], torch.sigmoid(x))
    torch.testing.assert_close(activations.curve("leaky_relu", x)[1], torch.tensor([0.01, 1.0, 1.0]))


def test_maxout_is_the_max_of_its_pieces_and_keeps_width():
    unit = Maxout(3)
    x = torch.randn(5, 7)
    pieces = unit.slope[:, None, None] * x + unit.intercept[:, None, None]  # (k, 5, 7)
    torch.testing.assert_close(unit(x), pieces.amax(0))
    assert unit(torch.randn(2, 4, 3, 3)).shape == (2, 4, 3, 3)
    with pytest.raises(UserInputError, match="maxout pieces k"):
        Maxout(1)


@pytest.mark.parametrize("name", ["tinyvgg", "mlp", "resnet_small", "lenet5"])
def test_new_activations_are_drop_ins_for_models(name):
    for act in ("maxout", "silu", "softplus"):
        model = models.build(name, in_channels=1, num_classes=3, image_size=8, activation=act)
        out = model(torch.rand(2, 1, 8, 8))
        out.sum().backward()
        assert out.shape == (2, 3)
    maxouts = [m for m in models.build(name, in_channels=1, num_classes=3, image_size=8,
                                       activation="maxout").modules() if isinstance(m, Maxout)]
    assert maxouts and maxouts[0].slope.grad is None  # a fresh model: its own parameters


def test_maxout_model_exports_and_reloads(tmp_path):
    from engine.models.export import model_source

    model = models.build("mlp", in_channels=1, num_classes=3, image_size=8, activation="maxout")
    config = models.ModelConfig("mlp", 1, 3, 8, options={"activation": "maxout"})
    path = tmp_path / "exported.py"
    path.write_text(model_source(model, config))
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    rebuilt = namespace["build_model"]()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(rebuilt(x), model(x))


def _small_cnn(activation: str) -> nn.Module:
    return models.build("tinyvgg", in_channels=1, num_classes=3, image_size=8, width=4, activation=activation)


@pytest.mark.parametrize("name", activations.names())
def test_named_activations_are_the_outermost_activation_modules(name):
    model = _small_cnn(name)
    found = blocks.named_activations(model)
    assert [n for n, _ in found] == ["block1.2", "block1.5", "block2.2", "block2.5"]
    assert all(type(module) is activations.info(name).module for _, module in found)
    assert blocks.relu_only(model) == (name == "relu")


def test_named_activations_of_a_bare_maxout_is_the_maxout_alone():
    unit = Maxout(2)
    assert blocks.named_activations(unit) == [("", unit)]


@pytest.mark.parametrize("name", activations.names())
def test_feature_maps_return_the_activation_output(name):
    model = _small_cnn(name).eval()
    x = torch.rand(1, 1, 8, 8)
    maps = {layer.name: layer for layer in features.activation_maps(model, x)}
    assert [n for n, kind in features.mapped_layers(model) if kind == "activation"] == [
        "block1.2", "block1.5", "block2.2", "block2.5"]
    assert not any("rectify" in n for n in maps)  # Maxout's inner ReLU is not a layer of its own
    with torch.no_grad():
        pre = model.block1[1](model.block1[0](model.normalize(x)))  # conv → norm: the activation's input
        expected = model.block1[2](pre)[0]
    assert maps["block1.2"].kind == "activation"
    torch.testing.assert_close(maps["block1.2"].maps, expected)
    if name == "maxout":  # the max over the k lines, computed directly, not the inner ReLU's output
        unit = model.block1[2]
        lines = unit.slope.detach()[:, None, None, None] * pre[0] + unit.intercept.detach()[:, None, None, None]
        torch.testing.assert_close(maps["block1.2"].maps, lines.amax(0))


@pytest.mark.parametrize("name", activations.names())
def test_guided_backprop_is_refused_for_every_activation_but_relu(name):
    model = _small_cnn(name)
    x = torch.rand(1, 1, 8, 8)
    if name == "relu":
        assert attributions.unavailable("guided_backprop", model, layer=None) is None
        result = attributions.attribute(model, x, "guided_backprop", target=0)
        assert result.heat.shape == (8, 8)
    else:
        title = type(make_activation(name)).__name__
        with pytest.raises(UserInputError, match=f"ReLU units only; this model also uses {title},"):
            attributions.attribute(model, x, "guided_backprop", target=0)


def test_zero_and_constant_init_make_units_identical(digits):
    x, y = digits.train.x[:64], digits.train.y[:64]
    for init in ("zeros", "constant"):
        net = gflow.deep_net("mlp", depth=4, width=16, in_channels=1, image_size=8, num_classes=10,
                                   activation="sigmoid", init=init, sigma=0.1)
        flow = gflow.gradient_flow(net, x, y)
        assert all(layer.unit_spread < 1e-6 for layer in flow.layers), init
    net = gflow.deep_net("mlp", depth=4, width=16, in_channels=1, image_size=8, num_classes=10,
                               activation="sigmoid", init="xavier")
    assert all(layer.unit_spread > 1e-3 for layer in gflow.gradient_flow(net, x, y).layers)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_sigmoid_small_init_vanishes_while_relu_kaiming_stays_flat(digits, kind):
    x, y = digits.train.x[:64], digits.train.y[:64]
    depth = 10 if kind == "mlp" else 6
    net = gflow.deep_net(kind, depth=depth, width=32, in_channels=1, image_size=8, num_classes=10,
                               activation="sigmoid", init="normal", sigma=0.01)
    norms = [layer.grad_norm for layer in gflow.gradient_flow(net, x, y).layers]
    assert all(a < b for a, b in zip(norms, norms[1:])), norms  # smaller the further from the loss
    assert norms[0] < 1e-6 * norms[-1]
    net = gflow.deep_net(kind, depth=depth, width=32, in_channels=1, image_size=8, num_classes=10,
                               activation="relu", init="kaiming")
    norms = [layer.grad_norm for layer in gflow.gradient_flow(net, x, y).layers]
    assert max(norms) / min(norms) < 10, norms


def test_gradient_flow_statistics_match_a_direct_computation(digits):
    x, y = digits.train.x[:32], digits.train.y[:32]
    net = gflow.deep_net("mlp", depth=3, width=8, in_channels=1, image_size=8, num_classes=10,
                               activation="relu", init="kaiming", seed=1)
    flow = gflow.gradient_flow(net, x, y)
    hidden = net[2](net[1](net[0](x))).detach()  # flatten → linear → relu
    assert math.isclose(flow.layers[0].mean, float(hidden.mean()), rel_tol=1e-5)
    assert math.isclose(flow.layers[0].std, float(hidden.std()), rel_tol=1e-5)
    assert sum(flow.layers[0].hist_counts) == hidden.numel()
    assert flow.layers[0].dead_fraction == float((hidden == 0).all(0).float().mean())
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    assert math.isclose(flow.layers[1].grad_norm, float(net[3].weight.grad.norm()), rel_tol=1e-5)
    assert math.isclose(flow.loss, loss.item(), rel_tol=1e-6)


def test_gradient_flow_leaves_the_net_as_found(digits):
    net = gflow.deep_net("cnn", depth=2, width=4, in_channels=1, image_size=8, num_classes=10)
    net.train()
    net[0].weight.requires_grad_(False)
    gflow.gradient_flow(net, digits.train.x[:8], digits.train.y[:8])
    assert net.training and not net[0].weight.requires_grad
    assert all(p.grad is None for p in net.parameters())


def test_overflow_is_reported_not_plotted_as_nan(digits):
    net = gflow.deep_net("mlp", depth=50, width=256, in_channels=1, image_size=8, num_classes=10,
                               activation="relu", init="normal", sigma=1.0)
    flow = gflow.gradient_flow(net, digits.train.x[:32], digits.train.y[:32])
    assert flow.overflow and "overflowed" in flow.overflow and flow.loss is None
    assert 10 < len(flow.layers) < 50
    assert all(math.isfinite(layer.std) for layer in flow.layers)


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(kind="mlp", depth=50, width=1024, batch=512), "memory limit"),
    (dict(kind="cnn", depth=60, width=8, batch=8), "depth must be in"),
    (dict(kind="cnn", depth=40, width=256, batch=16, in_features=64, pixels=64), "compute limit"),
    (dict(kind="rnn", depth=5, width=8, batch=8), "net kind"),
])
def test_too_big_probe_nets_are_refused(kwargs, fragment):
    with pytest.raises(UserInputError, match=fragment):
        gflow.check_size(**(dict(in_features=784, pixels=28 * 28) | kwargs))


def _dead_after_training(digits, activation, lr):
    config = TrainConfig(data="digits", model="mlp", optimizer="adam", lr=lr, epochs=1, batch_size=32, snapshots=True,
                         model_options=dict(hidden=(100, 100), activation=activation))
    trainer = Trainer(config, digits)
    run = trainer.fit()
    assert run.history.diverged_at is None
    return gflow.dead_fraction_history(trainer.model, run.history.snapshots, digits.train.x)


def test_high_learning_rate_kills_relus_but_not_leaky_relus(digits):
    normal = _dead_after_training(digits, "relu", 0.003)
    high = _dead_after_training(digits, "relu", 0.05)
    leaky = _dead_after_training(digits, "leaky_relu", 0.05)
    assert len(high) == 2  # initial weights + 1 epoch
    assert high[-1] > normal[-1] + 0.2, (normal, high)
    assert leaky == [0.0, 0.0]


def test_sample_returns_plain_lists_on_an_even_grid():
    x, y, dy = activations.sample("relu", span=2.0, points=5)
    assert x == [-2.0, -1.0, 0.0, 1.0, 2.0] and y == [0.0, 0.0, 0.0, 1.0, 2.0] and dy == [0.0, 0.0, 0.0, 1.0, 1.0]
    with pytest.raises(UserInputError, match="x range"):
        activations.sample("relu", span=0.0)
