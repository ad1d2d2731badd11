"""The classic minis: they build, train a step and export at every bundled data set's shape; Inception's
auxiliary loss reaches exactly the layers below its tap; a net that pools the image away says where."""

import pytest
import torch
from torch import nn

from engine import data, models
from engine.data.sets import Dataset, Split
from engine.errors import UserInputError
from engine.models.export import model_source
from engine.models.minis import plan
from engine.training import losses
from engine.training.config import TrainConfig
from engine.training.objective import Objective
from engine.training.penalties import Penalties
from engine.training.trainer import Trainer

MINIS = ["alexnet_mini", "vgg_mini", "inception_mini", "densenet_mini"]
SMALL = {"alexnet_mini": dict(width=4, fc_width=16), "vgg_mini": dict(width=4, fc_width=16),
         "inception_mini": dict(width=8), "densenet_mini": dict(growth_rate=4)}
SHAPES = sorted({(data.info(n).channels, data.info(n).native_size) for n in data.names()})  # 1×8, 1×25, 1×28, 3×32
CPU = torch.device("cpu")


def _dataset(channels: int, size: int, *, n: int = 8, classes: int = 3, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)

    def split() -> Split:
        return Split(torch.rand(n, channels, size, size, generator=g), torch.arange(n) % classes)

    return Dataset("synthetic", "Synthetic", split(), split(), split(), [str(c) for c in range(classes)],
                   channels, size, (0.5,) * channels, (0.25,) * channels)


def test_the_minis_are_registered_in_lecture_order():
    names = models.names()
    order = ["lenet5", "alexnet_mini", "vgg_mini", "inception_mini", "resnet_small", "densenet_mini", "vit_tiny"]
    assert [names.index(n) for n in order] == sorted(names.index(n) for n in order)
    assert all(models.info(n).family == "cnn" for n in MINIS)


@pytest.mark.parametrize("name", MINIS)
@pytest.mark.parametrize("channels,size", SHAPES)
def test_mini_trains_a_step_and_exports_at_each_dataset_shape(name, channels, size, tmp_path):
    dataset = _dataset(channels, size)
    config = TrainConfig(data="synthetic", model=name, model_options=SMALL[name], epochs=1, batch_size=8,
                         lr=1e-2, evaluate_test=False)
    trainer = Trainer(config, dataset, device=CPU)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    run = trainer.fit()
    assert len(run.history.epoch) == 1 and run.history.diverged_at is None
    changed = [k for k, v in run.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("weight") for k in changed)
    model = run.model.eval()
    source = model_source(model, run.model_config)
    namespace: dict = {}
    exec(compile(source, str(tmp_path / "exported.py"), "exec"), namespace)  # noqa: S102 - our own code
    rebuilt = namespace["build_model"]()
    rebuilt.load_state_dict(model.state_dict())  # strict: every name and shape must match
    x = dataset.test.x[:4]
    torch.testing.assert_close(rebuilt.eval()(x), model(x))


@pytest.mark.parametrize("name", MINIS)
@pytest.mark.parametrize("channels,size", SHAPES)
def test_default_minis_have_a_spatial_gradcam_layer_and_exact_counts(name, channels, size):
    model = models.build(name, in_channels=channels, num_classes=10, image_size=size).eval()
    seen = []
    handle = model.get_submodule(models.info(name).gradcam_layer).register_forward_hook(
        lambda module, inputs, output: seen.append(output.shape))
    try:
        model(torch.rand(1, channels, size, size))
    finally:
        handle.remove()
    assert len(seen[0]) == 4 and min(seen[0][2:]) >= 2, seen  # (B, C, H, W) with H, W ≥ 2: a map to explain
    rows = models.summary(model, (channels, size, size))
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())


def test_summary_counts_the_aux_head_as_train_only_without_side_effects():
    model = models.build("inception_mini", in_channels=3, num_classes=5, image_size=32, aux=True, seed=1)
    model.train()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    rng = torch.get_rng_state()
    rows = models.summary(model, (3, 32, 32))
    assert torch.equal(torch.get_rng_state(), rng) and model.training
    assert all(torch.equal(v, stats[k]) for k, v in model.state_dict().items())  # BatchNorm statistics kept
    aux = [r for r in rows if r.name.startswith("net.aux.")]
    assert aux and all(r.train_only for r in aux) and not any(r.train_only for r in rows if r not in aux)
    assert sum(r.params for r in rows) == models.count_params(model)
    by_name = {r.name: r for r in rows}
    c1, c3r, c3, c5r, c5, cp = (round(c * 16 / 64) for c in (64, 96, 128, 16, 32, 32))  # 3a at width 16
    reduce_, conv = by_name["net.inception3a.branch3.reduce.conv"], by_name["net.inception3a.branch3.conv.conv"]
    assert conv.output_shape == (c3, 16, 16)
    assert conv.macs == 16 * 16 * c3 * c3r * 9 and reduce_.macs == 16 * 16 * c3r * 48  # 48 = the stem's maps
    assert by_name["net.aux.fc2"].output_shape == (5,)
    fp = plan("inception_mini", in_channels=3, num_classes=5, image_size=32, aux=True)
    assert fp.params == models.count_params(model)  # the aux head's weights count, its MACs do not
    assert fp.macs == sum(r.macs for r in rows) - sum(r.macs for r in aux) > 0
    assert fp.sides == [("input", 32), ("net.pool1", 16), ("net.pool2", 8), ("net.pool", 1)]
    concatenated = model.net.inception3a.eval()(torch.rand(2, 48, 16, 16))
    assert concatenated.shape == (2, c1 + c3 + c5 + cp, 16, 16)


def _inception(aux: bool, weight: float = 0.3) -> nn.Module:
    return models.build("inception_mini", in_channels=1, num_classes=4, image_size=8, width=8, aux=aux,
                        aux_weight=weight, dropout=0.0, seed=3)


def _gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    objective = Objective(losses.build("cross_entropy"), model, heads={}, num_classes=4, penalties=Penalties(),
                          device=CPU)
    model.train()
    model.zero_grad()
    _, terms = objective(model(x), y)
    sum(terms.values()).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if not n.startswith("net.aux.")}


def test_inception_aux_loss_changes_gradients_only_below_its_tap_and_only_in_training():
    plain, with_aux, zero_aux = _inception(False), _inception(True), _inception(True, 0.0)
    trunk = plain.state_dict()
    for model in (with_aux, zero_aux):  # the same seed builds the same trunk: the aux head is built last
        assert all(torch.equal(model.state_dict()[k], v) for k, v in trunk.items())
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 1, 8, 8, generator=g), torch.arange(6) % 4
    with torch.no_grad():  # eval: the main logits alone, the aux head unused
        torch.testing.assert_close(with_aux.eval()(x), plain.eval()(x))
    base, aux, zero = _gradients(plain, x, y), _gradients(with_aux, x, y), _gradients(zero_aux, x, y)
    for name in base:
        torch.testing.assert_close(zero[name], base[name])  # λ = 0: the aux head might as well not exist
    below = ("net.stem.", "net.inception3a.", "net.inception3b.", "net.inception4a.")
    changed = {n for n in base if not torch.allclose(aux[n], base[n])}
    assert changed and all(n.startswith(below) for n in changed)  # layers after the tap only see the main loss
    assert any(n.startswith("net.stem.") for n in changed)
    output = with_aux.train()(x)
    assert set(output) == {"logits", "aux"} and output["aux"].shape == (6, 4)


def test_the_models_aux_weight_reaches_the_trainers_loss():
    dataset = _dataset(1, 8, n=16, classes=4)
    for weight in (0.5, 0.0):
        config = TrainConfig(data="synthetic", model="inception_mini", model_options=dict(width=8, aux_weight=weight),
                             epochs=1, batch_size=16, evaluate_test=False)
        trainer = Trainer(config, dataset, device=CPU)
        with torch.no_grad():
            out = trainer.model.train()(dataset.train.x)
            _, terms = trainer.objective(out, dataset.train.y)
        expected = weight * torch.nn.functional.cross_entropy(out["aux"], dataset.train.y)
        torch.testing.assert_close(terms["head_aux"], expected)  # λ · L_aux, added to the main loss
        run = trainer.fit()
        assert "head_aux" in run.history.terms  # reported per epoch like every loss term


@pytest.mark.parametrize("channels,size", SHAPES)
def test_vgg_pools_the_image_away_one_block_past_log2_of_its_side(channels, size):
    most = size.bit_length() - 1  # ⌊log₂ size⌋ halvings leave 1×1
    sides = plan("vgg_mini", in_channels=channels, num_classes=3, image_size=size, blocks=most, width=4).sides
    assert sides[0] == ("input", size) and sides[-1] == ("pool", 1)
    if most + 1 <= 6:
        with pytest.raises(UserInputError, match=rf"{size}×{size} images: pool .* 1×1 map .*at most {most} blocks"):
            models.build("vgg_mini", in_channels=channels, num_classes=3, image_size=size, blocks=most + 1)


def test_vanishing_layer_is_named_before_any_training():
    with pytest.raises(UserInputError, match=r"densenet_mini with 5 blocks does not fit 8×8 images: "
                                             r"features.transition4.pool"):
        models.build("densenet_mini", in_channels=1, num_classes=3, image_size=8, blocks=5)
    config = TrainConfig(data="synthetic", model="vgg_mini", model_options={"blocks": 4}, epochs=1, batch_size=8)
    with pytest.raises(UserInputError, match=r"8×8 images: pool \(2×2 pool, stride 2\) would shrink the 1×1 map"):
        Trainer(config, _dataset(1, 8), device=CPU)  # the constructor refuses: no step is taken
    sides = plan("densenet_mini", in_channels=1, num_classes=3, image_size=8, blocks=4).sides
    assert sides[-1] == ("features.transition3.pool", 1)


def test_dense_blocks_concatenate_every_earlier_map():
    k, layers = 5, 3
    model = models.build("densenet_mini", in_channels=3, num_classes=2, image_size=16, growth_rate=k,
                         layers_per_block=layers).eval()
    x = torch.rand(2, 2 * k, 16, 16)
    out = model.features.block1(x)
    assert out.shape == (2, 2 * k + layers * k, 16, 16)
    torch.testing.assert_close(out[:, :2 * k], x)  # the block's input is passed on unchanged
    assert model.features.transition1.conv.out_channels == (2 * k + layers * k) // 2  # compression 0.5


def test_alexnet_keeps_most_parameters_in_its_fully_connected_layers():
    model = models.build("alexnet_mini", in_channels=3, num_classes=10, image_size=32)
    fc = sum(p.numel() for n, p in model.named_parameters() if n.startswith("fc"))
    assert fc / models.count_params(model) > 0.75  # AlexNet: ~58.6 M of ~61 M


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(name="vgg_mini", convs_per_block=0), "convs_per_block must be a whole number in 1…4"),
    (dict(name="inception_mini", aux_weight=-1), "aux_weight"),
    (dict(name="inception_mini", aux="yes"), "aux must be true or false"),
    (dict(name="alexnet_mini", dropout=1.0), "dropout"),
    (dict(name="densenet_mini", growth_rate=0), "growth_rate"),
])
def test_bad_mini_options_raise_user_input_errors(kwargs, fragment):
    args = dict(in_channels=1, num_classes=3, image_size=8) | kwargs
    with pytest.raises(UserInputError, match=fragment):
        models.build(args.pop("name"), **args)
