"""The augmentation pipeline: shapes and labels kept, per-image draws, seeds repeat, values as torchvision
computes them, the label mixing, plain-data specs, bad input, and torchvision code that runs."""

import argparse
import math
import pickle

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from engine.cli import train as train_cli
from engine.data import augment
from engine.data import augment_ops as ops
from engine.errors import UserInputError
from engine.training.config import TrainConfig, mixing_of
from engine.training.trainer import Trainer

IMAGE_STEPS = [name for name in augment.step_names() if augment.step_info(name).kind != "mixing"]
# parameters that make every image change, so copies of one image must all come out different
CHANGING = {"flip": {"p": 1.0}, "vflip": {"p": 1.0}, "blur": {"p": 1.0, "sigma": 2.0}, "erase": {"p": 1.0}}


def _images(b: int = 8, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, size, size, generator=torch.Generator().manual_seed(seed))


def _run(spec, x, seed: int = 0) -> torch.Tensor:
    return augment.build(spec)(x, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", IMAGE_STEPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_step_keeps_shape_and_pixel_range(name, channels):
    x = _images(c=channels)
    out = _run([{"name": name}], x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", IMAGE_STEPS)
def test_every_step_draws_per_image_parameters(name):
    copies = _images(1).repeat(12, 1, 1, 1)  # one image twelve times in one batch
    out = _run([{"name": name, **CHANGING.get(name, {})}], copies)
    distinct = {tuple(image.flatten().tolist()) for image in out}
    expected = 1 if name in ("flip", "vflip") else 12  # a flip of p = 1 mirrors every copy alike
    assert len(distinct) == expected
    if name in ("flip", "vflip"):
        half = _run([{"name": name, "p": 0.5}], copies)
        assert len({tuple(image.flatten().tolist()) for image in half}) == 2  # some mirrored, some not


@pytest.mark.parametrize("name", IMAGE_STEPS)
def test_every_step_repeats_for_a_seed_and_changes_with_it(name):
    x = _images()
    spec = [{"name": name, **({"p": 0.5} if name in ("flip", "vflip") else CHANGING.get(name, {}))}]
    assert torch.equal(_run(spec, x, seed=3), _run(spec, x, seed=3))
    assert not torch.equal(_run(spec, x, seed=3), _run(spec, x, seed=4))


def test_trainer_run_with_a_pipeline_repeats_and_keeps_labels(digits):
    spec = augment.parse("rotate:degrees=10;shift:fraction=0.1;erase")
    config = TrainConfig(model="linear", epochs=1, batch_size=64, augmentation=spec, seed=2)
    first, second = Trainer(config, digits).fit(), Trainer(config, digits).fit()
    assert first.history.train_loss == second.history.train_loss
    assert first.history.train_loss != Trainer(TrainConfig(model="linear", epochs=1, batch_size=64, seed=2),
                                               digits).fit().history.train_loss
    x, y = digits.train.x[:32], digits.train.y[:32].clone()
    assert augment.build(spec)(x, torch.Generator().manual_seed(0)).shape == x.shape
    assert torch.equal(y, digits.train.y[:32])  # images change, their labels are not touched


# ---- values against torchvision and plain tensor operations ---------------------------------------------------

def test_flip_and_identity_parameters_are_exact():
    x = _images()
    torch.testing.assert_close(_run([{"name": "flip", "p": 1.0}], x), x.flip(-1))
    torch.testing.assert_close(_run([{"name": "vflip", "p": 1.0}], x), x.flip(-2))
    for step in ({"name": "crop", "scale": 1.0, "ratio": 1.0}, {"name": "rotate", "degrees": 0.0},
                 {"name": "shift", "fraction": 0.0}, {"name": "erase", "p": 0.0}, {"name": "blur", "p": 0.0}):
        torch.testing.assert_close(_run([step], x), x, atol=1e-5, rtol=0)


def test_warp_turns_and_moves_like_rot90_and_a_pixel_shift():
    x = _images()
    quarter = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]).repeat(len(x), 1, 1)
    turned = ops.warp(x, quarter)
    assert any(torch.allclose(turned, torch.rot90(x, k, (2, 3)), atol=1e-5) for k in (1, 3))
    move = torch.eye(3).repeat(len(x), 1, 1)
    move[:, 0, 2] = 2  # each output pixel reads the input 2 pixels to its right
    expected = torch.zeros_like(x)
    expected[..., :-2] = x[..., 2:]
    torch.testing.assert_close(ops.warp(x, move), expected, atol=1e-5, rtol=0)


def test_fused_geometric_steps_match_warping_one_after_the_other():
    grid = torch.linspace(0, 1, 32)
    smooth = (0.5 + 0.4 * torch.sin(6 * grid[None, :] + 3 * grid[:, None])).expand(4, 1, 32, 32)  # few edges
    spec = augment.parse("crop:scale=0.7;rotate:degrees=30,fill=border")
    fused = _run(spec, smooth, seed=5)
    generator = torch.Generator().manual_seed(5)
    crop = ops.crop_matrix(smooth, generator, scale=0.7, ratio=4 / 3)
    turn = ops.rotation_matrix(smooth, generator, degrees=30.0)
    one_by_one = ops.warp(ops.warp(smooth, crop, fill="border"), turn, fill="border")
    assert (fused - one_by_one).abs().mean() < 0.01  # only the second interpolation differs


def _replayed(seed: int, batch: int, low: float, high: float, skip: int = 0) -> torch.Tensor:
    """The numbers a step drew: `skip` earlier batches of B, then B uniform in [low, high)."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(skip):
        torch.rand(batch, generator=generator)
    return torch.rand(batch, generator=generator) * (high - low) + low


@pytest.mark.parametrize("which, adjust, skip", [("brightness", TF.adjust_brightness, 0),
                                                 ("contrast", TF.adjust_contrast, 1),
                                                 ("saturation", TF.adjust_saturation, 2)])
def test_jitter_matches_torchvision_per_image(which, adjust, skip):
    x = _images()
    params = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0} | {which: 0.5}
    out = _run([{"name": "jitter", **params}], x, seed=7)
    factors = _replayed(7, len(x), 0.5, 1.5, skip)
    expected = torch.stack([adjust(image, float(f)) for image, f in zip(x, factors)])
    torch.testing.assert_close(out, expected, atol=2e-3, rtol=0)  # luma weights 0.299 vs 0.2989


def test_hue_shift_keeps_brightness_and_changes_colour():
    x = 0.4 + 0.2 * _images()  # mid-range: no clipping
    out = _run([{"name": "jitter", "brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.2}], x)
    torch.testing.assert_close(ops.gray(out), ops.gray(x), atol=1e-3, rtol=0)
    assert (out - x).abs().mean() > 0.01


def test_blur_matches_torchvision_with_each_images_sigma():
    x = _images(size=20)
    out = _run([{"name": "blur", "sigma": 1.5, "p": 1.0}], x, seed=4)
    sigmas = _replayed(4, len(x), ops.MIN_BLUR_SIGMA, 1.5)
    kernel = 2 * math.ceil(2 * 1.5) + 1
    expected = torch.stack([TF.gaussian_blur(image, [kernel, kernel], [float(s), float(s)])
                            for image, s in zip(x, sigmas)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_noise_has_the_asked_standard_deviation():
    x = torch.full((16, 3, 32, 32), 0.5)
    out = _run([{"name": "noise", "std": 0.05}], x)
    assert abs(float((out - x).std()) - 0.05) < 0.002


def test_erasing_blanks_one_box_within_the_asked_area():
    x = 0.5 + 0.5 * _images(b=32, c=1, size=32)  # no pixel is 0 before erasing
    out = _run([{"name": "erase", "p": 1.0, "scale": 0.3, "value": 0.0}], x)
    erased = out == 0  # (B, 1, H, W)
    for mask in erased[:, 0]:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert int(mask.sum()) == height * width  # one filled rectangle
        assert height * width <= 0.3 * 32 * 32 * 1.2  # the asked area, give or take rounding


# ---- MixUp / CutMix -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_step_mixes_labels_that_sum_to_one(digits, kind):
    config = TrainConfig(model="linear", epochs=1, augmentation=[{"name": "flip"}, {"name": kind, "alpha": 0.4}])
    assert mixing_of(config) == (kind, 0.4)
    trainer = Trainer(config, digits)
    x, y = digits.train.x[:64], digits.train.y[:64]
    mixed, target = trainer.mixer(trainer.augment(x, trainer.generator), y, trainer.generator)
    assert mixed.shape == x.shape and target.shape == (64, digits.num_classes)
    torch.testing.assert_close(target.sum(1), torch.ones(64))
    assert (target.max(1).values < 1).any()  # some rows really are mixtures
    assert trainer.fit().history.train_loss[0] > 0


# ---- specs as plain data and text ---------------------------------------------------------------------------------

def test_presets_keep_their_names_and_resolve_to_steps():
    assert augment.names()[:5] == ["none", "flip", "shift", "flip_shift", "noise"]  # in saved runs and URLs
    assert augment.build("none") is None
    assert [s["name"] for s in augment.resolve("flip_shift")] == ["flip", "shift"]
    assert augment.build("flip")(_images(), torch.Generator().manual_seed(0)).shape == (8, 3, 16, 16)


def test_spec_round_trips_through_text_config_and_pickle():
    spec = augment.parse("flip;crop:scale=0.5,ratio=1.5;rotate:fill=reflection;jitter:hue=0.1;cutmix:alpha=0.5")
    assert augment.to_text(spec) == "flip;crop:scale=0.5,ratio=1.5;rotate:fill=reflection;jitter:hue=0.1;cutmix:alpha=0.5"
    assert augment.parse(augment.to_text(spec)) == spec
    config = TrainConfig(augmentation=spec)
    assert TrainConfig.from_dict(pickle.loads(pickle.dumps(config.to_dict()))).augmentation == spec


def test_cli_builds_the_pipeline_from_augment_flags():
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    args = parser.parse_args(["--augment", "flip", "--augment", "crop:scale=0.6"])
    assert train_cli.config_from(args).augmentation == augment.resolve([{"name": "flip"},
                                                                        {"name": "crop", "scale": 0.6}])
    assert train_cli.config_from(parser.parse_args(["--augmentation", "flip_shift"])).augmentation == "flip_shift"
    with pytest.raises(UserInputError, match="not both"):
        train_cli.config_from(parser.parse_args(["--augmentation", "flip", "--augment", "noise"]))


@pytest.mark.parametrize("spec, fragment", [
    ([{"name": "erase", "scale": 1.0}], "whole image"),
    ([{"name": "mixup", "alpha": 0.0}], "needs α > 0"),
    ([{"name": "cutmix", "alpha": -1.0}], "needs α > 0"),
    ([{"name": "crop", "scale": float("nan")}], "between"),
    ([{"name": "rotate", "degrees": "ten"}], "must be a number"),
    ([{"name": "rotate", "fill": "blue"}], "must be one of"),
    ([{"name": "flip", "q": 1}], "no parameter 'q'"),
    ([{"name": "warp"}], "unknown augmentation step 'warp'"),
    (["flip"], "must be a dict"),
    ([{"name": "mixup"}, {"name": "flip"}], "last step"),
    ([{"name": "mixup"}, {"name": "cutmix"}], "last step"),
    ([{"name": "flip"}] * 13, "at most 12"),
    ("flip_rotate", "unknown augmentation 'flip_rotate'"),
    (42, "preset name or a list"),
])
def test_bad_specs_raise_user_input_errors(spec, fragment):
    with pytest.raises(UserInputError, match=fragment):
        augment.build(spec)


@pytest.mark.parametrize("text, fragment", [("crop:scale", "key=value"), ("crop:scale=big", "must be a number"),
                                            ("erase:scale=1", "whole image")])
def test_bad_text_raises_user_input_errors(text, fragment):
    with pytest.raises(UserInputError, match=fragment):
        augment.parse(text)


@pytest.mark.parametrize("changes, fragment", [
    (dict(augmentation=[{"name": "mixup"}], mixing="cutmix"), "already ends with mixup"),
    (dict(augmentation=[{"name": "cutmix"}], loss="mse"), "only cross_entropy"),
])
def test_trainer_refuses_conflicting_label_mixing(digits, changes, fragment):
    with pytest.raises(UserInputError, match=fragment):
        Trainer(TrainConfig(model="linear", **changes), digits)


# ---- torchvision code and domain advice ---------------------------------------------------------------------------

def test_torchvision_code_runs_on_an_image_and_a_batch():
    from torchvision.transforms import v2

    steps = [{"name": n} for n in augment.step_names() if n not in ("mixup", "cutmix")] + [{"name": "mixup"}]
    code = augment.torchvision_code(steps, image_size=16, num_classes=10)
    assert "not bit-identical" in code and "v2.RandomResizedCrop(16" in code and "v2.MixUp(alpha=0.4" in code
    names: dict = {"v2": v2}
    exec(code, names)
    image = names["augment"](torch.rand(3, 16, 16))
    assert image.shape == (3, 16, 16)
    mixed, target = names["mix"](torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(target.sum(1), torch.ones(4))
    assert augment.torchvision_code("none", image_size=16, num_classes=10) == ""


def test_domain_advice_warns_about_flipped_digits_only():
    assert augment.warnings("flip", "digits") and augment.warnings([{"name": "vflip"}], "cifar10")
    assert augment.warnings([{"name": "rotate", "degrees": 90}], "mnist")
    assert not augment.warnings("flip", "shapes") and not augment.warnings("digits_safe", "digits")
    assert augment.suggested("digits") == "digits_safe" and not augment.warnings(augment.suggested("mnist"), "mnist")


def test_exported_training_code_writes_and_runs_the_torchvision_pipeline():
    from engine import models
    from engine.models.export import model_source

    config = models.ModelConfig("tinyvgg", 1, 10, 8, options={"width": 4})
    train_config = TrainConfig(model="tinyvgg", epochs=1, batch_size=16,
                               augmentation=augment.parse("rotate:degrees=10;erase;mixup:alpha=0.3")).to_dict()
    source = model_source(models.build_from_config(config), config, train_config=train_config)
    assert "equivalent, not bit-identical" in source and "v2.RandomRotation(10" in source
    assert "v2.MixUp(alpha=0.3, num_classes=10)" in source and "x, y = mix(x, y)" in source
    namespace: dict = {}
    exec(compile(source, "exported.py", "exec"), namespace)  # noqa: S102 - our own generated code
    model = namespace["build_model"]()
    before = [p.clone() for p in model.parameters()]
    namespace["train"](model, torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,)), epochs=1)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_run_with_a_pipeline_saves_and_loads_with_its_steps(digits):
    from engine.training.runs import load_run, save_run

    spec = augment.parse("crop:scale=0.7;rotate:degrees=10,fill=border")
    run = Trainer(TrainConfig(model="linear", epochs=1, augmentation=spec), digits).fit()
    loaded = load_run(save_run(run))  # torch.load(weights_only=True): plain containers only
    assert loaded.config["augmentation"] == spec
    assert augment.build(loaded.config["augmentation"]) is not None
