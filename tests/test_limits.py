"""Every limit on user input lives in engine/limits.py and is obeyed exactly at its edge.

Each case lowers one limit to a small value L and checks that the engine accepts L and refuses the
next value with a message naming L: the module reads the setting from engine.limits when it runs
(one place to change it), and the edge is inclusive. Pages that hit a limit say so (AppTests below).
"""

from __future__ import annotations

import io
import tempfile
import threading
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine import data, limits
from engine.data.images import read_image, safe_extract_zip
from engine.errors import UserInputError
from engine.explain import attributions, features, robustness
from engine.jobs import JobRunner
from engine.layers.normalization import running_stats
from engine.models import ModelConfig, build_from_config
from engine.training import gradient_flow, landscape, margins, minibatch, regularizers, surfaces, toy2d
from engine.training.config import TrainConfig, validate
from engine.training.expressions import parse_expression
from tests.apptest_helpers import assert_no_exception, run_page

ROOT = Path(__file__).resolve().parents[1]
TRAIN_LAB = "app_pages/start/train_lab.py"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _extract(content: bytes) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        return safe_extract_zip(content, Path(folder))


def _zip(sizes: list[int]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, size in enumerate(sizes):
            archive.writestr(f"c{i % 2}/{i}.bin", b"x" * size)
    return buffer.getvalue()


_CNN = build_from_config(ModelConfig("tinyvgg", 1, 3, 8, options={"width": 4}))
_IMAGE = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
_XY = (torch.rand(16, 1, 8, 8), torch.arange(16) % 3)
_TOY = toy2d.split(*toy2d.make("quadrants", n_points=40, noise=0.1, seed=0), test_share=0.25, seed=0)


def _attribute(method: str, **config):
    return attributions.attribute(_CNN, _IMAGE, method, target=0, config=attributions.AttributionConfig(**config))


def _visualize(**config):
    return features.visualize(_CNN, features.Objective("logit", index=0), channels=1,
                              config=features.VisConfig(**{"image_size": 8, **config}))


# (limit, L, accepted at L, refused just past L); each call gets the value to try
EDGES = [
    ("MAX_IMAGE_PIXELS", 100, lambda v: read_image(_png(10, v // 10)), lambda v: read_image(_png(10, v // 10 + 1))),
    ("MAX_UPLOAD_BYTES", len(_png(4, 4)), lambda v: read_image(_png(4, 4)), lambda v: read_image(_png(4, 4) + b"\0")),
    ("MAX_ZIP_FILES", 4, lambda v: _extract(_zip([1] * v)), lambda v: _extract(_zip([1] * (v + 1)))),
    ("MAX_EPOCHS", 3, lambda v: validate(TrainConfig(epochs=v), 1000), lambda v: validate(TrainConfig(epochs=v + 1), 1000)),
    ("MAX_IMAGE_SIZE", 8, lambda v: data.load("digits", image_size=v), lambda v: data.load("digits", image_size=v + 1)),
    ("MAX_LANDSCAPE_RESOLUTION", 3, lambda v: landscape.axis(1.0, v), lambda v: landscape.axis(1.0, v + 1)),
    ("MAX_OCCLUSION_POSITIONS", 4, lambda v: robustness.occlusion_heatmap(_CNN, _IMAGE, 0, patch=7, stride=1),
     lambda v: robustness.occlusion_heatmap(_CNN, _IMAGE, 0, patch=6, stride=1)),  # 2×2 = 4, then 3×3 = 9 positions
    ("MAX_FEATURE_VIS_STEPS", 2, lambda v: _visualize(steps=v), lambda v: _visualize(steps=v + 1)),
    ("MAX_FEATURE_VIS_SIZE", 8, lambda v: _visualize(steps=1, image_size=v), lambda v: _visualize(steps=1, image_size=v + 1)),
    ("MAX_ATTACK_STEPS", 2, lambda v: robustness.pgd(_CNN, _IMAGE, 0, eps=0.01, steps=v),
     lambda v: robustness.pgd(_CNN, _IMAGE, 0, eps=0.01, steps=v + 1)),
    ("MAX_IG_STEPS", 2, lambda v: _attribute("integrated_gradients", steps=v),
     lambda v: _attribute("integrated_gradients", steps=v + 1)),
    ("MAX_SMOOTHGRAD_SAMPLES", 2, lambda v: _attribute("smoothgrad", samples=v), lambda v: _attribute("smoothgrad", samples=v + 1)),
    ("MAX_TOY_POINTS", 30, lambda v: toy2d.make("moons", n_points=v, noise=0.1, seed=0),
     lambda v: toy2d.make("moons", n_points=v + 1, noise=0.1, seed=0)),
    ("MAX_TOY_NOISE", 0.5, lambda v: toy2d.make("moons", n_points=40, noise=v, seed=0),
     lambda v: toy2d.make("moons", n_points=40, noise=v + 0.01, seed=0)),
    ("MAX_TOY_HIDDEN_LAYERS", 2, lambda v: toy2d.build_model(toy2d.ToyNet(hidden=(3,) * v), seed=0),
     lambda v: toy2d.build_model(toy2d.ToyNet(hidden=(3,) * (v + 1)), seed=0)),
    ("MAX_TOY_UNITS", 3, lambda v: toy2d.build_model(toy2d.ToyNet(hidden=(v,)), seed=0),
     lambda v: toy2d.build_model(toy2d.ToyNet(hidden=(v + 1,)), seed=0)),
    ("MAX_TOY_RESOLUTION", 5, lambda v: toy2d.decision_grid(toy2d.build_model(toy2d.ToyNet(), seed=0), (-1, 1, -1, 1), v),
     lambda v: toy2d.decision_grid(toy2d.build_model(toy2d.ToyNet(), seed=0), (-1, 1, -1, 1), v + 1)),
    ("MAX_OWN_POINTS", 2, lambda v: toy2d.add_points(_TOY, [(0.0, 0.0, 1)] * v),
     lambda v: toy2d.add_points(_TOY, [(0.0, 0.0, 1)] * (v + 1))),
    ("MAX_PATH_STEPS", 5, lambda v: surfaces.trajectory("quadratic", "sgd", lr=0.01, steps=v),
     lambda v: surfaces.trajectory("quadratic", "sgd", lr=0.01, steps=v + 1)),
    ("MAX_SURFACE_GRID", 5, lambda v: surfaces.grid("quadratic", resolution=v),
     lambda v: surfaces.grid("quadratic", resolution=v + 1)),
    ("MAX_LR_RANGE_STEPS", 6, lambda v: minibatch.lr_range_test(_CNN, *_XY, F.cross_entropy, steps=v, batch_size=4),
     lambda v: minibatch.lr_range_test(_CNN, *_XY, F.cross_entropy, steps=v + 1, batch_size=4)),
    ("MAX_MINIBATCH_REPEATS", 2, lambda v: minibatch.gradient_noise(_CNN, *_XY, F.cross_entropy, batch_sizes=[4], repeats=v),
     lambda v: minibatch.gradient_noise(_CNN, *_XY, F.cross_entropy, batch_sizes=[4], repeats=v + 1)),
    ("MAX_FLOW_DEPTH", 3, lambda v: gradient_flow.check_size("mlp", v, 8, 4, 64, 64),
     lambda v: gradient_flow.check_size("mlp", v + 1, 8, 4, 64, 64)),
    ("MAX_FLOW_WIDTH", 8, lambda v: gradient_flow.check_size("mlp", 3, v, 4, 64, 64),
     lambda v: gradient_flow.check_size("mlp", 3, v + 1, 4, 64, 64)),
    ("MAX_FLOW_BATCH", 4, lambda v: gradient_flow.check_size("mlp", 3, 8, v, 64, 64),
     lambda v: gradient_flow.check_size("mlp", 3, 8, v + 1, 64, 64)),
    ("MAX_EXPRESSION_CHARS", 3, lambda v: parse_expression("x+y"), lambda v: parse_expression("x+y1")),
    ("MAX_MARGIN_CLASSES", 3, lambda v: margins.margin_profile("cross_entropy", margins=np.linspace(-1, 1, 5), num_classes=v),
     lambda v: margins.margin_profile("cross_entropy", margins=np.linspace(-1, 1, 5), num_classes=v + 1)),
    ("MAX_MARGIN_POINTS", 5, lambda v: margins.margin_profile("cross_entropy", margins=np.linspace(-1, 1, v)),
     lambda v: margins.margin_profile("cross_entropy", margins=np.linspace(-1, 1, v + 1))),
    ("MAX_DECAY_STEPS", 10, lambda v: regularizers.decay_paths(steps=v, replicas=4),
     lambda v: regularizers.decay_paths(steps=v + 1, replicas=4)),
    ("MAX_RUNNING_STATS_STEPS", 3, lambda v: running_stats(torch.rand(16, 2, 3, 3), batch_size=4, momentum=0.1, steps=v),
     lambda v: running_stats(torch.rand(16, 2, 3, 3), batch_size=4, momentum=0.1, steps=v + 1)),
]


@pytest.mark.parametrize(("name", "edge", "accepted", "refused"), EDGES, ids=[case[0] for case in EDGES])
def test_each_limit_holds_exactly_at_its_edge(monkeypatch, name, edge, accepted, refused):
    assert hasattr(limits, name), f"{name} must be a setting in engine/limits.py"
    monkeypatch.setattr(limits, name, edge)
    accepted(edge)
    with pytest.raises(UserInputError) as error:
        refused(edge)
    named = (f"{edge:,}", f"{edge:g}", f"{edge / 1024**2:.1f} MB")  # the message names the limit
    assert any(text in str(error.value) for text in named), str(error.value)


def test_the_minimums_hold_too(monkeypatch):
    monkeypatch.setattr(limits, "MIN_TOY_POINTS", 30)
    toy2d.make("moons", n_points=30, noise=0.1, seed=0)
    with pytest.raises(UserInputError, match="30…"):
        toy2d.make("moons", n_points=29, noise=0.1, seed=0)
    with pytest.raises(UserInputError, match="image_size"):
        data.load("digits", image_size=limits.MIN_IMAGE_SIZE - 1)


def test_zip_uncompressed_size_counts_to_the_byte(monkeypatch, tmp_path):
    monkeypatch.setattr(limits, "MAX_ZIP_UNCOMPRESSED_BYTES", 30)
    safe_extract_zip(_zip([10, 20]), tmp_path / "ok")
    with pytest.raises(UserInputError, match="at most 0.0 MB uncompressed"):
        safe_extract_zip(_zip([10, 21]), tmp_path / "bad")


def test_occlusion_picks_a_stride_that_fits_the_limit():
    """The pages ask for a patch; the stride grows past half the patch only when the scan would be too long."""
    for side, patch in [(512, 1), (224, 11), (28, 2), (8, 1)]:
        stride = robustness.fitting_stride(side, side, patch=patch)
        assert robustness.occlusion_positions(side, side, patch=patch, stride=stride) <= limits.MAX_OCCLUSION_POSITIONS
        if stride > max(1, patch // 2):
            assert robustness.occlusion_positions(side, side, patch=patch, stride=stride - 1) > limits.MAX_OCCLUSION_POSITIONS
    assert robustness.occlusion_window(28, fraction=0.25) == (7, 3)  # small images keep half the patch
    big = attributions.AttributionConfig(window=1, stride=1)
    with pytest.raises(UserInputError, match="50,176 positions.*at most 4,096"):
        attributions.attribute(build_from_config(ModelConfig("tinyvgg", 1, 3, 224, options={"width": 4})),
                               torch.rand(1, 1, 224, 224), "occlusion", target=0, config=big)


def test_a_session_may_queue_only_so_many_jobs_and_others_still_can(monkeypatch):
    monkeypatch.setattr(limits, "MAX_QUEUED_JOBS_PER_SESSION", 2)
    runner = JobRunner(slots=1, workers="thread")
    release = threading.Event()
    running = runner.submit(_wait_for, session="a", release=release)
    queued = [runner.submit(_wait_for, session="a", release=release) for _ in range(2)]
    with pytest.raises(UserInputError, match="already have 2 jobs waiting.*at most 2 may wait per session"):
        runner.submit(_wait_for, session="a", release=release)
    other = runner.submit(_wait_for, session="b", release=release)  # the limit is per session
    queued[0].cancel()
    again = runner.submit(_wait_for, session="a", release=release)  # a freed place can be used
    release.set()
    for job in (running, queued[1], other, again):
        assert job.wait(10) and job.state == "done"


def _wait_for(should_stop, release):
    while not (release.is_set() or should_stop()):
        release.wait(0.01)
    yield "done"


def test_streamlit_upload_limit_agrees_with_the_engine():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1024**2 == limits.MAX_UPLOAD_BYTES


def test_the_page_explains_a_full_queue_and_a_too_long_training(monkeypatch):
    at = run_page(TRAIN_LAB, query_params={"ep": "1"}, timeout=120)
    monkeypatch.setattr(limits, "MAX_QUEUED_JOBS_PER_SESSION", 0)
    at.button(key="train.start").click().run(timeout=120)
    assert_no_exception(at)
    assert any("jobs waiting for a free slot" in e.value for e in at.error), [e.value for e in at.error]
    monkeypatch.setattr(limits, "MAX_TRAIN_SECONDS", 0)
    at.run()
    assert any("over the 0 s limit" in w.value for w in at.warning)
    assert at.button(key="train.start").disabled
