"""AppTests for the inside-the-CNN pages: a trained Run, a model trained on the spot, a pretrained net
from a temporary torch hub cache, missing weights, presets and random widget values."""

import pytest
import torch
import torchvision

from engine.models import pretrained
from tests.apptest_helpers import assert_no_exception, finish_jobs, randomize_widgets, run_page

PAGES = ["app_pages/inside_cnn/feature_maps.py", "app_pages/inside_cnn/saliency.py", "app_pages/inside_cnn/robustness.py"]
KEYS = {"app_pages/inside_cnn/feature_maps.py": "fmaps", "app_pages/inside_cnn/saliency.py": "sal", "app_pages/inside_cnn/robustness.py": "robust"}


@pytest.fixture(scope="module")
def digits_run(digits):
    from engine.training.config import TrainConfig
    from engine.training.trainer import Trainer

    return Trainer(TrainConfig(data="digits", model="tinyvgg", epochs=1, seed=0), digits).fit()


@pytest.fixture(scope="module")
def mlp_run(digits):
    """A run without conv layers: the pages must explain what they cannot show."""
    from engine.training.config import TrainConfig
    from engine.training.trainer import Trainer

    run = Trainer(TrainConfig(data="digits", model="mlp", epochs=1, seed=0), digits).fit()
    run.name = "mlp on digits"
    return run


@pytest.fixture(scope="module")
def hub_with_resnet18(tmp_path_factory):
    """A TORCH_HOME holding random resnet18 weights under the real file name."""
    home = tmp_path_factory.mktemp("torch_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home))
        net = torchvision.models.resnet18()
        path = pretrained.weights_path("resnet18")
        path.parent.mkdir(parents=True)
        torch.save(net.state_dict(), path)
    return home


def _state(run, digits):
    return {"runs": {run.name: run}, "run_datasets": {run.name: digits}}


def _texts(at) -> str:
    """Every message, caption and image caption on the page, as one string."""
    shown = [str(e.value) for kind in (at.error, at.warning, at.info, at.caption) for e in kind]
    return " ".join(shown + [img.caption for element in at.image for img in element.proto.imgs])


@pytest.mark.parametrize("page", PAGES)
def test_page_shows_the_run_and_survives_random_widgets(page, digits_run, digits):
    at = run_page(page, session_state=_state(digits_run, digits), timeout=90)
    assert not at.error, [e.value for e in at.error]
    assert len(at.image) >= 2, "the page shows no images"
    randomize_widgets(at, rounds=3, seed=7, timeout=90, skip_keys={f"{KEYS[page]}.source"})
    assert_no_exception(at)


@pytest.mark.parametrize("page", PAGES)
def test_random_widgets_including_the_model_source(page, digits_run, mlp_run, digits, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no pretrained weights: the page must say so, not fail
    state = _state(digits_run, digits)
    state["runs"][mlp_run.name] = mlp_run
    state["run_datasets"][mlp_run.name] = digits
    at = run_page(page, session_state=state, timeout=90)
    randomize_widgets(at, rounds=3, seed=11, timeout=90)
    assert_no_exception(at)


def test_train_a_small_cnn_on_the_spot():
    at = run_page("app_pages/inside_cnn/feature_maps.py", timeout=120)
    assert "No runs in this session yet" in _texts(at)
    at.button(key="fmaps.train.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at)
    assert at.session_state["runs"], "training stored no run"
    assert "What the model sees: (1, 8, 8)" in _texts(at)


def test_a_run_without_conv_layers_says_what_it_cannot_show(mlp_run, digits):
    at = run_page("app_pages/inside_cnn/feature_maps.py", session_state=_state(mlp_run, digits), timeout=60)
    assert "has no convolution, activation or pooling layer" in _texts(at)
    at = run_page("app_pages/inside_cnn/saliency.py", session_state=_state(mlp_run, digits), timeout=60)
    assert "Grad-CAM needs a convolutional layer" in _texts(at)


def test_missing_pretrained_weights_show_the_file_and_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = run_page("app_pages/inside_cnn/robustness.py", query_params={"src": "pretrained"}, timeout=60)
    shown = _texts(at)
    assert "resnet18-f37072fd.pth" in shown and str(tmp_path / "hub" / "checkpoints") in shown
    assert not at.error


@pytest.mark.parametrize("page", PAGES)
def test_pretrained_resnet18_from_the_hub_cache(page, hub_with_resnet18, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(hub_with_resnet18))
    at = finish_jobs(run_page(page, query_params={"src": "pretrained", "img": "photo", "photo": "coffee"}, timeout=180))
    assert not at.error, [e.value for e in at.error]
    assert "(3, 224, 224)" in _texts(at) or "predicted:" in _texts(at)


def test_presets_and_url_parameters_set_the_controls(digits_run, digits):
    at = run_page("app_pages/inside_cnn/robustness.py", query_params={"preset": "pgd", "rot": "45"},
                  session_state=_state(digits_run, digits), timeout=90)
    assert at.session_state["robust.attack"] == "pgd" and at.session_state["robust.eps"] == 0.05
    assert at.session_state["robust.rotation"] == 45.0
    at = run_page("app_pages/inside_cnn/saliency.py", query_params={"preset": "sanity"}, session_state=_state(digits_run, digits))
    assert at.session_state["sal.sanity"] is True
    assert "random weights · rank correlation" in _texts(at)
    at = run_page("app_pages/inside_cnn/saliency.py", query_params={"eps": "7", "op": "2"}, session_state=_state(digits_run, digits))
    assert any("Ignored ?op=2" in str(w.value) for w in at.warning)


def test_grad_cam_layer_can_be_picked_and_starts_wider_than_2x2(digits_run, digits):
    at = run_page("app_pages/inside_cnn/saliency.py", session_state=_state(digits_run, digits), timeout=90)
    layer = next(s for s in at.selectbox if s.label == "Grad-CAM layer")
    assert layer.value != "block2" and "block2" in layer.options  # digits' 8×8 input: block2 is 2×2
    layer.set_value("block2").run(timeout=90)
    assert_no_exception(at)
    assert not at.error and next(s for s in at.selectbox if s.label == "Grad-CAM layer").value == "block2"


def test_pretrained_download_failure_replaces_the_missing_message(monkeypatch, tmp_path):
    """Issue 17: one message before (not yet here) and one after a failed try (why), never both."""
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    at = run_page("app_pages/inside_cnn/saliency.py", query_params={"src": "pretrained"}, timeout=60)
    assert [w.value for w in at.warning if "weights" in w.value] and not at.error
    assert "not on this machine yet" in at.warning[0].value and "failed" not in _texts(at)
    next(b for b in at.button if b.label == "Try to download").click().run(timeout=60)
    assert_no_exception(at)
    assert len(at.error) == 1 and "failed (URLError)" in at.error[0].value
    assert not [w for w in at.warning if "weights" in w.value]
