"""Random use of every page (issue 17): random valid widget values, extremes, presets and button presses.

Each page runs `randomize_widgets` a few rounds here (always) and ≥ 50 rounds with
VISIONEXPLORER_LONG_TESTS=1. No round may raise, show a traceback, or show an st.error that none of
the page's explained rules matches: a value a widget allows is one the page must handle.

A page's `Setup` keeps what a pressed button trains small (URL values, and `narrow`ed or skipped
controls: data sets with thousands of images, epochs, widths); everything else moves freely.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

import pytest

from tests.apptest_helpers import assert_no_exception, assert_no_traceback_text, finish_jobs, randomize_widgets, run_page
from ui.topics import built_pages

LONG = os.environ.get("VISIONEXPLORER_LONG_TESTS") == "1"
LONG_ROUNDS, SHORT_ROUNDS = 50, 3
SETTLE_S = 30  # a cancelled job ends within a second; the worker may first finish loading its data

# still being built: their authors test them; remove a page from here once it has landed
STILL_BEING_BUILT: set[str] = set()

# Outcomes any page explains, none a bug: a download set offline, a learning rate the widget allows but
# the network cannot take, settings that together go over a time, memory or compute limit. (A single
# value over a limit, "must be between …", is not here: there the widget's range is the bug.)
EXPLAINED = (
    re.compile(r"could not be downloaded"),
    re.compile(r"training diverged|validation loss became|diverged at step"),
    re.compile(r"over (the [\d,]+ s|this lab's \w+) limit|positions, one forward pass each; at most"),
)
SMALL_DATA = ("Digits (8×8)", "Faces vs non-faces (25×25)", "MNIST digits (28×28)", "Fashion-MNIST (28×28)",
              "CIFAR-10 (32×32)")  # shapes' 12,000 images would make a pressed Train slow; downloads fail fast offline


@dataclass(frozen=True)
class Setup:
    query: dict = field(default_factory=dict)  # URL values the page opens with
    narrow: dict = field(default_factory=dict)  # key -> (low, high) or option labels
    skip: frozenset = frozenset()  # keys left alone in every run
    short_skip: frozenset = frozenset()  # buttons left alone in the short run only (their work is slow)
    allowed: tuple = ()  # regular expressions: the rules this page explains in an st.error
    run: str | None = None  # a fixture name: a trained Run put in the session first
    texts: dict = field(default_factory=dict)  # text_input key -> candidate strings


NESTEROV = re.compile(r"Nesterov momentum needs a momentum μ > 0")  # PyTorch refuses it too
TARGETS = ("Digits (8×8)", "Faces vs non-faces (25×25)")
TRANSFER_SKIP = frozenset({"transfer.train.start", "transfer.download"})  # 12,000 shapes (minutes); the network
TRAIN_NARROW = {"train.epochs": (1, 2), "train.data": SMALL_DATA, "train.size": ("native", "8×8", "16×16")}
SETUPS = {
    "app_pages/start/home.py": Setup(),
    "app_pages/start/train_lab.py": Setup(query={"ep": "1"}, narrow=TRAIN_NARROW, allowed=(NESTEROV,)),
    "app_pages/start/decision_boundaries.py": Setup(query={"n": "100"}),
    "app_pages/start/lessons.py": Setup(allowed=(re.compile("Not quite"),)),
    "app_pages/convolution/conv_playground.py": Setup(query={"px": "64"}, allowed=(
        re.compile(r"^PyTorch would refuse this layer: "),
        re.compile(r"^This kernel does not fit: the \w+ kernel is 3×3, so the kernel size must be ≥ 3"))),
    "app_pages/convolution/pooling.py": Setup(allowed=(re.compile(r"^PyTorch would refuse this pooling: "),)),
    "app_pages/convolution/receptive_field.py": Setup(),
    "app_pages/building_blocks/activations.py": Setup(
        query={"dead_ep": "1", "ep": "1"}, narrow={"act.dead_epochs": (1, 2), "act.epochs": (1, 2),
                                                   "act.data": SMALL_DATA}),
    "app_pages/building_blocks/gradient_flow.py": Setup(query={"bs": "16"}, narrow={"flow.batch": (2, 64)}),
    "app_pages/building_blocks/normalization.py": Setup(query={"ep": "1"}, narrow={"bn.epochs": (1, 2),
                                                                                   "bn.data": SMALL_DATA}),
    "app_pages/building_blocks/preprocessing.py": Setup(),
    "app_pages/training/optimizers.py": Setup(allowed=(NESTEROV,)),
    "app_pages/training/landscape.py": Setup(
        query={"res": "5", "n": "64", "depth": "8"},
        narrow={"land.res": ("5", "11"), "land.images": ("64", "128"), "land.depth": ("8", "14")},
        short_skip=frozenset({"land.train.start", "land.skip.start", "land.paths.start"})),
    "app_pages/training/losses.py": Setup(query={"ep": "1"}, narrow={"loss.epochs": (1, 2)}),
    "app_pages/training/minibatch.py": Setup(query={"reps": "5", "steps": "20", "total": "100"},
                                             narrow={"mb.repeats": (5, 10), "mb.steps": (20, 60)}),
    "app_pages/training/backprop.py": Setup(
        texts={"bp.expr": ["sigmoid(w*x + b)", "relu(a) - a^2", "(x", "log(x)", "exp(x*y) / y", "2 ** x ** 2", "q"]},
        allowed=(re.compile("position|overflowed|non-positive|no value"),)),
    "app_pages/regularization/overfitting.py": Setup(
        query={"ep": "2", "w": "16", "gn": "5", "gw": "4"},
        narrow={"ovf.epochs": (1, 3), "ovf.width": ("2", "4", "8", "16", "32"), "ovf.size": ("5 per class", "10 per class"),
                "ovf.grid_sizes": ("5 per class", "10 per class"), "ovf.grid_widths": ("4", "16"), "ovf.data": ("digits",)}),
    "app_pages/regularization/regularization.py": Setup(
        query={"ep": "2", "n": "5", "reg": "none,l1,dropout"},
        narrow={"reg.epochs": (1, 2), "reg.width": ("8", "16"), "reg.size": ("5",), "regp.steps": (1, 50)}),
    "app_pages/regularization/augmentation.py": Setup(query={"n": "5", "ep": "2"},
                                                      narrow={"aug.n": (5, 10), "aug.epochs": (1, 2)}),
    "app_pages/regularization/data_pitfalls.py": Setup(query={"ep": "2"},
                                                       narrow={"pit.epochs": (1, 2), "pit.data": ("digits",)}),
    "app_pages/regularization/tuning.py": Setup(
        query={"trials": "4", "ep": "1"}, narrow={"tune.trials": (2, 4), "tune.epochs": (1, 1), "tune.data": ("digits",)},
        allowed=tuple(re.compile(re.escape(rule)) for rule in (
            "has no dropout option", "has no width option", "choices must be a non-empty list",
            "the search space is empty", "batch sizes up to", "every batch size in the space is above"))),
    "app_pages/architectures/residual.py": Setup(
        query={"depths": "8,14", "ep": "1"},
        narrow={"res.depths": ("8", "14"), "res.epochs": (1, 2), "res.data": ("digits",)}),
    "app_pages/architectures/classic_nets.py": Setup(
        query={"ep": "1", "w": "4"}, narrow={"cn.epochs": (1, 2), "cn.width": ("4", "8"), "train.data": SMALL_DATA,
                                            "train.size": ("native", "8×8", "16×16")},
        allowed=(re.compile(r"is left out: .+ does not fit \d+×\d+ images: .+ would shrink the \d+×\d+ map to "
                            r"nothing"),)),  # the rule: the layer where the map vanishes, named before training
    "app_pages/architectures/gallery.py": Setup(),  # no buttons; every network is described on the meta device
    "app_pages/architectures/transfer.py": Setup(run="source_run", skip=TRANSFER_SKIP,
                                                 narrow={"transfer.target": TARGETS}),
    "app_pages/architectures/fine_tuning.py": Setup(
        run="source_run", skip=TRANSFER_SKIP, query={"ep": "1", "cep": "1"},
        narrow={"ft.epochs": (1, 2), "ft.curve_epochs": (1, 1), "transfer.target": TARGETS},
        allowed=(re.compile(r"^nothing would learn: every layer of the source is frozen and no head is trained"),)),
    "app_pages/architectures/ensembles.py": Setup(
        query={"k": "3", "ep": "1", "pc": "5"},
        narrow={"ens.members": (2, 3), "ens.epochs": (1, 2), "ens.per_class": ("5", "10", "20")}),
    "app_pages/architectures/multitask.py": Setup(
        query={"ep": "1", "pc": "25", "w": "8"},
        narrow={"mtl.epochs": (1, 2), "mtl.per_class": ("25", "50"), "mtl.width": ("8", "16")}),
    "app_pages/inside_cnn/feature_maps.py": Setup(run="digits_run"),
    "app_pages/inside_cnn/saliency.py": Setup(run="digits_run"),
    "app_pages/inside_cnn/robustness.py": Setup(run="digits_run"),
    "app_pages/transformers/attention.py": Setup(allowed=(re.compile(r"^heads \(\d+\) must divide the width"),)),
    "app_pages/transformers/vit_inside.py": Setup(run="vit_run", narrow={"vit.quick": ("Digits 8×8, patches 2×2",)},
                                                  short_skip=frozenset({"vit.train.start"})),
    "app_pages/transformers/cnn_vs_vit.py": Setup(
        query={"ep": "1", "w": "16", "depth": "1", "fr": "0.05,0.1"}, skip=frozenset({"cvv.fractions"}),  # labels vary
        narrow={"cvv.epochs": (1, 1), "cvv.width": ("16",), "cvv.depth": ("1", "2"), "cvv.data": ("digits", "faces")}),
}
PAGES = ["app_pages/start/home.py"] + [p.file for _, p in built_pages() if p.file not in STILL_BEING_BUILT]


@pytest.fixture(scope="module")
def digits_run(digits):
    from engine.training.config import TrainConfig
    from engine.training.trainer import Trainer

    return Trainer(TrainConfig(data="digits", model="tinyvgg", epochs=1, seed=0), digits).fit(), digits


@pytest.fixture(scope="module")
def vit_run(digits):
    from engine.training.config import TrainConfig
    from engine.training.trainer import Trainer

    config = TrainConfig(data="digits", model="vit_tiny", model_options=dict(width=16, depth=2, heads=2), epochs=1)
    return Trainer(config, digits).fit(), digits


@pytest.fixture(scope="module")
def source_run():
    from engine import data
    from engine.training.config import TrainConfig
    from engine.training.trainer import Trainer

    shapes = data.load("shapes", seed=0, num_images=800, image_size=16)
    config = TrainConfig.for_data("shapes", image_size=16, model_options={"norm": "batch", "width": 8}, epochs=2)
    return Trainer(config, shapes).fit(), shapes


def _session(setup: Setup, request) -> dict:
    if setup.run is None:
        return {}
    run, dataset = request.getfixturevalue(setup.run)
    return {"runs": {run.name: run}, "run_datasets": {run.name: dataset}}


def _settle(at=None, timeout: float = SETTLE_S) -> None:
    """Cancel what this session still runs, then wait until the job runner is idle: jobs that
    random use started and dropped (their inputs changed: cancelled) must really end, and none may
    hold a slot into the next test."""
    from engine.jobs import Job, runner

    for _, job in (at.session_state.items() if at is not None else []):
        if isinstance(job, Job) and not job.finished_state:
            job.cancel()
    deadline = time.monotonic() + timeout
    while (status := runner().status()).running or status.queued:
        assert time.monotonic() < deadline, f"jobs still running {timeout:.0f} s after Cancel: {status}"
        time.sleep(0.1)


def _use(page: str, request, *, rounds: int, seed: int, short: bool) -> list[str]:
    setup = SETUPS.get(page, Setup())
    _settle(timeout=600)  # what other tests left running
    at = run_page(page, query_params=setup.query, session_state=_session(setup, request), timeout=180)
    try:
        finish_jobs(at, timeout=300)  # work a page starts by itself (a probe, a landscape) ends first
        assert_no_traceback_text(at, page)
        seen = randomize_widgets(at, rounds=rounds, seed=seed, timeout=300, narrow=setup.narrow,
                                 skip_keys=setup.skip | (setup.short_skip if short else frozenset()),
                                 allowed_errors=EXPLAINED + setup.allowed, text_values=setup.texts)
        finish_jobs(at, timeout=300)
        assert_no_exception(at, f"{page}: after its jobs ended")
    finally:
        _settle(at)  # nothing keeps running into the next test, also after a failure
    return seen


def test_every_page_has_a_setup():
    """A new page gets a Setup here (what keeps its buttons' work small, which errors it explains)."""
    assert [p for p in PAGES if p not in SETUPS] == []


@pytest.mark.parametrize("page", PAGES)
def test_random_use_short(page, request):
    _use(page, request, rounds=SHORT_ROUNDS, seed=17, short=True)


@pytest.mark.skipif(not LONG, reason="long variant: VISIONEXPLORER_LONG_TESTS=1")
@pytest.mark.parametrize("page", PAGES)
def test_random_use_long(page, request):
    for seed in range(LONG_ROUNDS // 10):  # five sessions of ten rounds: a fresh session meets other states
        _use(page, request, rounds=10, seed=100 + seed, short=False)


# ---------------------------------------------------------------- the helper's narrowing and its checks
NARROWED = """
import streamlit as st

values = dict(
    ep=st.number_input("ep", 1, 200, 5, key="ep"),
    lr=st.slider("lr", 0.0, 1.0, 0.5, step=0.05, key="lr"),
    data=st.selectbox("data", ["digits", "shapes", "cifar10"], key="data"),
    w=st.select_slider("w", [4, 8, 16, 32], value=(4, 8), key="w"),
    nets=st.multiselect("nets", ["a", "b", "c"], key="nets"),
)
st.session_state.setdefault("seen", []).append(values)
if st.session_state.get("leak"):
    st.code('Traceback (most recent call last):\\n  File "x.py", line 3, in <module>')
if values["ep"] == 3:
    st.error("epoch 3 is refused by the rule")
"""


def _narrowed(tmp_path):
    from streamlit.testing.v1 import AppTest

    script = tmp_path / "narrowed.py"
    script.write_text(NARROWED)
    return AppTest.from_file(str(script), default_timeout=30).run()


def test_narrow_keeps_each_widget_inside_its_smaller_range(tmp_path):
    at = _narrowed(tmp_path)
    randomize_widgets(at, rounds=20, seed=3, narrow={"ep": (1, 3), "lr": (0.1, 0.3), "data": ("digits", "shapes"),
                                                     "w": ("8", "16"), "nets": ("a",)},
                      allowed_errors=[re.compile(r"^epoch \d is refused")])
    seen = at.session_state["seen"][1:]
    assert {v["ep"] for v in seen} == {1, 2, 3}  # both ends of the narrowed range, and the inside
    assert all(0.1 <= v["lr"] <= 0.3 + 1e-9 for v in seen) and {round(v["lr"], 2) for v in seen} >= {0.1, 0.3}
    assert {v["data"] for v in seen} == {"digits", "shapes"}
    assert all(set(v["w"]) <= {8, 16} for v in seen) and all(set(v["nets"]) <= {"a"} for v in seen)


def test_an_error_no_pattern_matches_and_a_traceback_shown_as_text_fail(tmp_path):
    at = _narrowed(tmp_path)
    with pytest.raises(AssertionError, match="error no rule explains"):
        randomize_widgets(at, rounds=20, seed=3, narrow={"ep": (3, 3)}, allowed_errors=[re.compile(r"^refused")])
    at.session_state["leak"] = True
    with pytest.raises(AssertionError, match="shows a traceback as code"):
        randomize_widgets(at, rounds=1, seed=3)


# ---------------------------------------------------------------- what the long run found, kept as regressions
def test_a_blur_wider_than_the_image_keeps_its_size():
    """Robustness page, digits: σ = 4 px means a 17-pixel kernel on an 8×8 image (reflect padding refused it)."""
    import torch

    from engine.explain import robustness

    x = torch.rand(1, 1, 8, 8)
    blurred = robustness.corrupt(x, robustness.Corruption(blur=4.0))
    assert blurred.shape == x.shape and torch.isfinite(blurred).all()
    assert blurred.std() < x.std()  # it did blur


def test_an_mlp_is_offered_only_the_norms_it_has():
    """Train Lab: 'instance' normalizes over H×W, which an MLP's hidden layers do not have."""
    at = run_page("app_pages/start/train_lab.py", query_params={"model": "mlp"})
    assert "instance" not in at.selectbox(key="train.norm").options
    at.selectbox(key="train.model").set_value("tinyvgg").run()
    assert "instance" in at.selectbox(key="train.norm").options


def test_an_empty_learning_rate_range_is_explained_not_refused():
    at = run_page("app_pages/training/minibatch.py", query_params={"lo": "0.0", "hi": "0.0"})
    assert_no_exception(at)
    assert not at.error and any("set “to” above “from”" in i.value for i in at.info)
    assert all(b.key != "mb.range.start" for b in at.button)
