"""AppTests of the building-blocks pages: activations, gradients & init, normalization, preprocessing."""

import pytest

from ui.topics import page_file_for
from tests.apptest_helpers import assert_no_exception, chart_text, finish_jobs, randomize_widgets, run_page

ACTIVATIONS = "app_pages/building_blocks/activations.py"
GRADIENT_FLOW = "app_pages/building_blocks/gradient_flow.py"
NORMALIZATION = "app_pages/building_blocks/normalization.py"
PREPROCESSING = "app_pages/building_blocks/preprocessing.py"



def test_activations_page_draws_curves_and_formulas():
    at = run_page(ACTIVATIONS, query_params={"show": "relu,softplus,maxout"})
    assert at.multiselect(key="act.show").value == ["relu", "softplus", "maxout"]
    assert "f(x) solid" in chart_text(at)
    latex = " ".join(e.value for e in at.latex)
    assert r"\log(1 + e^{x})" in latex and r"\max(0, x)" in latex


def test_activations_page_dead_relu_demo_trains_and_measures(monkeypatch):
    at = run_page(ACTIVATIONS, query_params={"dead_ep": "1"}, timeout=180)
    at.button(key="act.dead.start").click().run()
    finish_jobs(at)
    assert_no_exception(at, "after training the dead-ReLU demo")
    assert "Dead units" in chart_text(at)
    assert len(at.session_state["act.dead.runs"]) == 3


def test_activations_page_race_trains_two_activations():
    at = run_page(ACTIVATIONS, query_params={"race": "relu,tanh", "ep": "1"}, timeout=180)
    at.button(key="act.race.start").click().run()
    finish_jobs(at)
    assert_no_exception(at, "after the side-by-side training")
    assert len(at.session_state["act.race.runs"]) == 2
    assert at.dataframe


# Small presets keep the buttons the fuzzer presses quick: one epoch, a small batch; those controls stay put.
SMALL = {ACTIVATIONS: {"dead_ep": "1", "ep": "1"}, GRADIENT_FLOW: {"bs": "16"}, NORMALIZATION: {"ep": "1"},
         PREPROCESSING: {}}


@pytest.mark.parametrize("page", list(SMALL))
def test_page_survives_random_widgets(page):
    at = run_page(page, query_params=SMALL[page], timeout=120)
    skip = [w.key for w in at.selectbox if w.key and w.key.endswith(".data")]  # downloads: slow offline errors
    skip += ["flow.batch", "act.dead_epochs", "act.epochs", "bn.epochs", "global.seed"]
    randomize_widgets(at, rounds=3, seed=1, timeout=120, skip_keys=skip,
                      allowed_errors=["training diverged", "memory limit"])  # explained outcomes; nothing else may fail


def test_gradient_flow_page_shows_vanishing_and_kaiming():
    at = run_page(GRADIENT_FLOW, query_params={"preset": "vanishing", "depth": "8", "width": "32"})
    specs = chart_text(at)
    assert "Gradient norm" in specs and "Activation std per layer" in specs and "Dead units per layer" in specs
    assert at.session_state["flow.depth"] == 8


def test_gradient_flow_page_reports_overflow_and_symmetry():
    at = run_page(GRADIENT_FLOW, query_params={"preset": "exploding"})
    assert any("overflowed" in w.value for w in at.warning)
    at = run_page(GRADIENT_FLOW, query_params={"preset": "symmetry"})
    assert any("same value" in i.value for i in at.info)


def test_gradient_flow_page_caps_memory():
    at = run_page(GRADIENT_FLOW, query_params={"kind": "cnn", "data": "shapes", "depth": "50", "width": "1024",
                                               "bs": "512"})
    assert any("memory limit" in e.value for e in at.error)


def test_normalization_page_shows_every_section_and_folding():
    at = run_page(NORMALIZATION)
    specs = chart_text(at)
    for fragment in ("The same batch through BatchNorm", "Running statistics", "undo the standardization", "batch companions",
                     "BatchNorm: over N, H, W", "InstanceNorm: over H, W"):
        assert fragment in specs, fragment
    difference = next(m.value for m in at.metric if m.label.startswith("Largest"))
    assert float(difference) < 1e-5


def test_normalization_page_trains_with_and_without_bn():
    at = run_page(NORMALIZATION, query_params={"ep": "1"}, timeout=180)
    at.button(key="bn.train.start").click().run()
    finish_jobs(at)
    assert_no_exception(at, "after training with and without BN")
    assert len(at.session_state["bn.train.runs"]) == 2


def test_preprocessing_page_standardizes():
    at = run_page(PREPROCESSING, query_params={"data": "digits", "mode": "standardize", "n": "300"})
    assert "Pixel values per channel" in chart_text(at)
    assert at.dataframe and len(at.image) >= 3  # mean image, before, after


def _lesson_links():
    from ui.lessons import LESSONS_DIR, app_links, parse_lesson

    for slug in ("03_activations_init", "04_normalization"):
        lesson = parse_lesson(LESSONS_DIR / f"{slug}.md")
        yield from ((slug, path, query) for _, path, query in app_links(lesson.body) if query)


@pytest.mark.parametrize("slug,path,query", list(_lesson_links()))
def test_lesson_deep_links_open_their_presets(slug, path, query):
    at = run_page(page_file_for(path), query_params=query, timeout=120)
    assert not [w.value for w in at.warning if "preset" in w.value or "Ignored" in w.value]
    assert not at.error, [e.value for e in at.error]


def test_list_controls_round_trip_through_the_url():
    at = run_page(ACTIVATIONS)
    at.multiselect(key="act.show").set_value(["relu", "gelu"]).run()
    assert at.query_params["show"] == "relu,gelu"
    at.multiselect(key="act.show").set_value(["sigmoid", "tanh", "relu", "leaky_relu"]).run()  # the default
    assert "show" not in at.query_params
    at = run_page(ACTIVATIONS, query_params={"race": "relu,nope"})
    assert any("Ignored ?race=relu,nope" in w.value for w in at.warning)
    assert at.multiselect(key="act.race").value == ["sigmoid", "relu", "gelu"]
