"""The one Registry: duplicates refused, registration order kept, and one wording for an unknown name
in every registry of the engine, through each kind's own public functions."""

import importlib
import pkgutil
import re

import pytest
import torch
from torch import nn

import engine
from engine import data, models
from engine.data import augment
from engine.errors import UserInputError
from engine.explain import attributions
from engine.layers import activations, kernels
from engine.models import blocks, gallery, pretrained
from engine.registry import Registry
from engine.training import losses, optimizers, probe, regularizers, search_space, strategies, surfaces, toy2d, tuning


def test_registry_keeps_registration_order_and_refuses_duplicates():
    colours: Registry[int] = Registry("colour")
    colours.add("red", 1)

    @colours.register("green", lambda fn: fn())
    def _green() -> int:
        return 2

    colours.add("blue", 3)
    assert colours.names() == ["red", "green", "blue"] == list(colours)
    assert colours.get("green") == 2 and "blue" in colours and len(colours) == 3
    assert colours.items() == [("red", 1), ("green", 2), ("blue", 3)]
    with pytest.raises(ValueError, match="colour 'red' is registered twice"):
        colours.add("red", 4)
    assert colours.get("red") == 1  # the first entry stays


def test_unknown_name_lists_the_valid_ones():
    colours: Registry[int] = Registry("colour")
    colours.add("red", 1)
    colours.add("green", 2)
    with pytest.raises(UserInputError) as error:
        colours.get("mauve")
    assert str(error.value) == "unknown colour 'mauve'; choose one of: red, green"
    with pytest.raises(UserInputError, match=r"choose one of: \(none\)"):
        Registry("empty").get("x")


def _linear() -> nn.Module:
    return nn.Linear(2, 2)


# kind, its names(), and a public function of the kind called with an unknown name.
LOOKUPS = [
    ("data set", data.names, lambda n: data.info(n)),
    ("data set", data.names, lambda n: data.load(n)),
    ("model", models.names, lambda n: models.info(n)),
    ("gallery network", gallery.names, lambda n: gallery.entry(n)),
    ("model", models.names, lambda n: models.build(n, in_channels=1, num_classes=2, image_size=8)),
    ("pretrained model", pretrained.names, lambda n: pretrained.info(n)),
    ("pretrained model", pretrained.names, lambda n: pretrained.load(n, download_missing=False)),
    ("loss", losses.names, lambda n: losses.build(n)),
    ("optimizer", optimizers.optimizer_names, lambda n: optimizers.optimizer_info(n)),
    ("optimizer", optimizers.optimizer_names, lambda n: optimizers.build_optimizer(n, _linear().parameters(), lr=0.1)),
    ("optimizer", optimizers.optimizer_names, lambda n: surfaces.suggested_lr("quadratic", n)),
    ("schedule", optimizers.schedule_names, lambda n: optimizers.schedule_factor(n, 0, 10)),
    ("surface", surfaces.names, lambda n: surfaces.info(n)),
    ("surface", surfaces.names, lambda n: surfaces.trajectory(n, "sgd", lr=0.1)),
    ("attribution method", attributions.names, lambda n: attributions.method(n)),
    ("activation", blocks.activation_names, lambda n: blocks.make_activation(n)),
    ("activation", blocks.activation_names, lambda n: activations.info(n)),
    ("activation", blocks.activation_names, lambda n: activations.sample(n, span=1.0)),
    ("norm", blocks.norm_names, lambda n: blocks.norm2d(n, 4)),
    ("norm", blocks.norm_names, lambda n: blocks.norm1d(n, 4)),
    ("init", blocks.init_names, lambda n: blocks.initialize(_linear(), n)),
    ("augmentation", augment.names, lambda n: augment.build(n)),
    ("augmentation step", augment.step_names, lambda n: augment.build([{"name": n}])),
    ("augmentation step", augment.step_names, lambda n: augment.parse_step(f"{n}:p=1")),
    ("kernel", kernels.names, lambda n: kernels.kernel(n)),
    ("photo", data.photo_names, lambda n: data.load_photo(n)),
    ("2-D data set", toy2d.toy_names, lambda n: toy2d.make(n, n_points=10, noise=0.1, seed=0)),
    ("input feature", toy2d.FEATURES.names, lambda n: toy2d.feature_map(torch.zeros(3, 2), features=[n])),
    ("hyperparameter", search_space.hyperparameter_names,
     lambda n: search_space.parse_space({n: {"choices": [1]}}, model="mlp", train_images=10)),
    ("search method", tuning.method_names, lambda n: tuning.method_info(n)),
    ("regularizer", regularizers.regularizer_names, lambda n: regularizers.regularizer_info(n)),
    ("feature pooling", probe.pooling_names, lambda n: probe.pooling_info(n)),
    ("linear classifier", probe.classifier_names, lambda n: probe.fit_probe(torch.zeros(2, 1), torch.arange(2), classifier=n)),
    ("transfer strategy", strategies.strategy_names, lambda n: strategies.strategy_info(n)),
]


@pytest.mark.parametrize("kind, names, lookup", LOOKUPS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(LOOKUPS)])
def test_every_registry_refuses_an_unknown_name_in_one_wording(kind, names, lookup):
    with pytest.raises(UserInputError) as error:
        lookup("no_such_name")
    assert str(error.value) == f"unknown {kind} 'no_such_name'; choose one of: {', '.join(names())}"


def _engine_registries() -> dict[str, Registry]:
    """Every Registry object at module level anywhere in the engine, by kind."""
    found = {}
    for module_info in pkgutil.walk_packages(engine.__path__, "engine."):
        if module_info.name == "engine.__main__":
            continue
        module = importlib.import_module(module_info.name)
        found |= {value.kind: value for value in vars(module).values() if isinstance(value, Registry)}
    return found


def test_the_lookups_above_cover_every_registry_of_the_engine():
    assert set(_engine_registries()) == {kind for kind, _, _ in LOOKUPS}


@pytest.mark.parametrize("registry, order", [
    (models.names, ["linear", "mlp", "lenet5", "tinyvgg", "alexnet_mini", "vgg_mini", "inception_mini",
                    "resnet_small", "densenet_mini", "vit_tiny"]),
    (blocks.activation_names, ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "softplus",
                               "maxout"]),
    (optimizers.optimizer_names, ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]),
    (data.names, ["digits", "faces", "shapes", "mnist", "fashion_mnist", "cifar10"]),
])
def test_registries_list_names_in_lecture_order(registry, order):
    assert registry() == order


def test_losses_start_with_cross_entropy():
    assert losses.names()[0] == "cross_entropy"


@pytest.mark.parametrize("name", optimizers.optimizer_names())
def test_exported_optimizer_source_builds_the_same_optimizer(name):
    """The export's source line comes from the same registry entry the Trainer builds from."""
    entry = optimizers.optimizer_info(name)
    source = entry.source("params", lr=0.05, momentum=0.8, weight_decay=0.001)
    assert re.fullmatch(rf"torch\.optim\.{entry.torch_class.__name__}\(params, .*\)", source)
    model = _linear()
    built = optimizers.build_optimizer(name, model.parameters(), lr=0.05, momentum=0.8, weight_decay=0.001)
    rebuilt = eval(source, {"torch": torch, "params": model.parameters()})
    assert type(rebuilt) is type(built)
    assert rebuilt.defaults == built.defaults
    assert ("momentum=0.8" in source) == entry.uses_momentum
