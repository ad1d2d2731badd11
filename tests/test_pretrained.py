"""Pretrained registry: cache lookup in a temporary TORCH_HOME, the offline message, per-model glue."""

import urllib.error
from collections import OrderedDict
import urllib.request

import pytest
import torch
import torchvision

from engine.models import pretrained
from engine.errors import UserInputError
from engine.explain import attributions


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def _offline(*args, **kwargs):
    raise urllib.error.URLError("no network in this test")


def _write_random_weights(name: str) -> dict:
    net = torchvision.models.get_model(name, weights=None)
    # Random weights; BatchNorm running variances must stay positive.
    state = {k: (torch.rand_like(v) + 0.5 if "running_var" in k else 0.1 * torch.randn_like(v))
             if v.is_floating_point() else v for k, v in net.state_dict().items()}
    path = pretrained.weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_registry_lists_the_five_models_with_real_file_names():
    assert pretrained.names() == ["resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "vit_b_16"]
    assert pretrained.info("resnet18").file_name == "resnet18-f37072fd.pth"
    with pytest.raises(UserInputError, match="resnet18"):
        pretrained.info("alexnet")


def test_cache_dir_follows_torch_home(torch_home):
    assert pretrained.cache_dir() == torch_home / "hub" / "checkpoints"
    assert not pretrained.is_cached("resnet18")


def test_missing_weights_offline_name_the_file_and_the_folder(torch_home, monkeypatch):
    with pytest.raises(UserInputError) as error:
        pretrained.load("resnet18", download_missing=False)
    assert "resnet18-f37072fd.pth" in str(error.value) and str(torch_home / "hub" / "checkpoints") in str(error.value)
    assert "not on this machine yet" in str(error.value) and "failed" not in str(error.value)  # nothing was tried
    assert "no reload needed" in str(error.value)  # a reload would lose the session's runs
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    with pytest.raises(UserInputError, match="Downloading the .* failed \\(URLError\\)") as error:
        pretrained.load("resnet18")
    assert "resnet18-f37072fd.pth" in str(error.value)
    assert not list((torch_home / "hub" / "checkpoints").glob("*"))  # no partial file left behind


def test_load_from_the_cache_uses_the_file_and_the_weights_metadata(torch_home, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _offline)  # must not touch the network
    state = _write_random_weights("resnet18")
    loaded = pretrained.load("resnet18")
    torch.testing.assert_close(loaded.model.net.conv1.weight, state["conv1.weight"])
    assert len(loaded.class_names) == 1000 and loaded.class_names[0] == "tench"
    assert (loaded.resize_size, loaded.crop_size) == (256, 224)
    assert not any(getattr(m, "inplace", False) for m in loaded.model.modules())
    x = loaded.preprocess(torch.rand(3, 300, 400))
    assert x.shape == (1, 3, 224, 224)
    with torch.no_grad():
        expected = loaded.model.net((x - torch.tensor(loaded.mean).view(1, 3, 1, 1)) / torch.tensor(loaded.std).view(1, 3, 1, 1))
        torch.testing.assert_close(loaded.model(x), expected)  # the wrapper normalizes with ImageNet's mean/std
    result = attributions.attribute(loaded.model, x, "grad_cam", target=3, layer=loaded.info.gradcam_layer)
    assert result.heat.shape == (224, 224)
    assert attributions.unavailable("guided_backprop", loaded.model, layer="net.layer4") is None


def test_a_corrupt_weights_file_is_a_user_error(torch_home):
    path = pretrained.weights_path("mobilenet_v3_small")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserInputError, match="could not be loaded"):
        pretrained.load("mobilenet_v3_small", download_missing=False)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0", "resnet50", "vit_b_16"])
def test_every_grad_cam_layer_exists_and_gives_a_grid(name):
    entry = pretrained.info(name)
    net = torchvision.models.get_model(name, weights=None).eval()
    model = torch.nn.Sequential(OrderedDict([("normalize", torch.nn.Identity()), ("net", net)]))  # load()'s layout
    layer = dict(model.named_modules())[entry.gradcam_layer]
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.setdefault("out", o))
    try:
        with torch.no_grad():
            model(torch.rand(1, 3, 224, 224))
    finally:
        handle.remove()
    grid = entry.reshape(store["out"]) if entry.reshape else store["out"]
    assert grid.dim() == 4 and grid.shape[-1] == grid.shape[-2] and grid.shape[-1] in (7, 14)


def test_vit_tokens_become_a_grid_in_row_major_patch_order():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)  # B=2, 1 + 4 tokens, D=3
    grid = pretrained.vit_tokens_to_grid(tokens)
    assert grid.shape == (2, 3, 2, 2)
    torch.testing.assert_close(grid[1, :, 0, 1], tokens[1, 2])  # patch 1 = row 0, column 1
    torch.testing.assert_close(grid[0, :, 1, 0], tokens[0, 3])
