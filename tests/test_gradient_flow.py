"""engine.training.gradient_flow.probe and GradientFlow.symmetric: the gradient-flow page's one engine call."""

import pytest

from engine.errors import UserInputError
from engine.training import gradient_flow as gflow


def test_probe_is_gradient_flow_of_the_seeded_deep_net_on_the_first_images(digits):
    flow = gflow.probe(digits, kind="mlp", depth=4, width=16, batch=32, activation="tanh", init="xavier", seed=3)
    net = gflow.deep_net("mlp", depth=4, width=16, in_channels=1, image_size=8, num_classes=10, activation="tanh",
                         init="xavier", seed=3, mean=digits.mean, std=digits.std)
    by_hand = gflow.gradient_flow(net, digits.train.x[:32], digits.train.y[:32])
    assert flow.loss == pytest.approx(by_hand.loss)
    assert [s.grad_norm for s in flow.layers] == pytest.approx([s.grad_norm for s in by_hand.layers])
    assert len(flow.layers) == 4


def test_probe_uses_at_most_the_training_images_and_checks_the_size(digits):
    small = gflow.probe(digits, kind="cnn", depth=2, width=4, batch=512, activation="relu", init="kaiming")
    assert small.loss is not None
    with pytest.raises(UserInputError, match="depth must be in 2…50"):
        gflow.probe(digits, kind="mlp", depth=60, width=16, batch=8, activation="relu", init="kaiming")


def test_symmetric_when_every_unit_of_every_layer_computes_the_same_value(digits):
    same = gflow.probe(digits, kind="mlp", depth=3, width=8, batch=16, activation="tanh", init="constant", sigma=0.05)
    assert same.symmetric
    different = gflow.probe(digits, kind="mlp", depth=3, width=8, batch=16, activation="tanh", init="xavier")
    assert not different.symmetric
    assert not gflow.GradientFlow([], None).symmetric  # no layers: nothing to say
