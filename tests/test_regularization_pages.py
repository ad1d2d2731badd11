"""AppTests of the overfitting, regularization and data-pitfalls pages: they train what they promise, draw it,
survive random widgets and button presses, and the lesson's deep links open them cleanly."""

import json

from tests.apptest_helpers import assert_no_exception, finish_jobs, randomize_widgets, run_page
from ui.lessons import app_links, lesson_by_slug
from ui.topics import page_file_for

OVERFITTING = "app_pages/regularization/overfitting.py"
REGULARIZATION = "app_pages/regularization/regularization.py"
PITFALLS = "app_pages/regularization/data_pitfalls.py"
SLOW_KEYS = {"global.seed"}  # with each page's epochs, widths and sizes: a random 100 epochs is no unit test


def _figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _press(at, key: str) -> None:
    at.button(key=key).click().run(timeout=180)
    finish_jobs(at)
    assert_no_exception(at, f"after pressing {key}")


def test_overfitting_page_shades_the_gap_and_marks_early_stopping():
    at = run_page(OVERFITTING, query_params={"preset": "early_stopping", "ep": "25"}, timeout=120)
    assert not at.error, [e.value for e in at.error]
    _press(at, "ovf.run.start")
    assert not at.error, [e.value for e in at.error]
    assert {m.label for m in at.metric} >= {"Train accuracy", "Validation accuracy", "Gap"}
    figures = _figures(at)
    curves = [f for f in figures if f["layout"]["title"]["text"].startswith("Accuracy: train")]
    assert curves and curves[0]["data"][1]["fill"] == "tonexty"  # the gap is shaded
    notes = [a["text"] for a in curves[0]["layout"].get("annotations", [])]
    assert any(n.startswith("best val loss: epoch") and "restored" in n for n in notes), notes
    assert any("stopped after 5 worse epochs" in n for n in notes), notes
    assert any(f["layout"]["title"]["text"].startswith("Weight norm") for f in figures)


def test_overfitting_grid_plots_the_gap_against_data():
    at = run_page(OVERFITTING, query_params={"ep": "3", "gn": "5,20", "gw": "16"}, timeout=120)
    _press(at, "ovf.grid.start")
    grid = [f for f in _figures(at) if f["layout"]["title"]["text"].startswith("The gap against")]
    assert grid and sorted(grid[0]["data"][0]["x"]) == [50, 200]  # 5 and 20 images of 10 classes
    assert len(at.dataframe) == 1


def test_overfitting_page_survives_random_widgets():
    at = run_page(OVERFITTING, query_params={"ep": "2", "w": "16", "gn": "5", "gw": "4"}, timeout=120)
    slow = {"ovf.data", "ovf.epochs", "ovf.width", "ovf.grid_sizes", "ovf.grid_widths"}
    randomize_widgets(at, rounds=3, seed=4, timeout=180, skip_keys=SLOW_KEYS | slow, allowed_errors=())
    assert_no_exception(at)


def test_overfitting_page_caps_tiny_vgg_at_its_widest():
    at = run_page(OVERFITTING, query_params={"model": "tinyvgg", "w": "512"}, timeout=120)
    assert not at.error and at.select_slider(key="ovf.width").value == 256


def test_regularization_page_trains_every_regularizer_and_draws_weights_dropout_and_decay():
    at = run_page(REGULARIZATION, query_params={"ep": "3", "n": "10"}, timeout=120)
    assert any("dropout layer" in i.value for i in at.info)  # nothing trained yet
    _press(at, "reg.train.start")
    assert not at.error, [e.value for e in at.error]
    titles = [f["layout"]["title"]["text"] for f in _figures(at)]
    assert "Weights of each run" in titles and "Dropout on a real layer, one image" in titles
    assert "MC-dropout: averaging stochastic passes" in titles and "Mean weight under noise-only gradients" in titles
    histogram = next(f for f in _figures(at) if f["layout"]["title"]["text"] == "Weights of each run")
    assert len(histogram["data"]) == 6  # none, L1, L2, elastic, dropout, weight decay
    assert at.selectbox(key="regp.run").value.startswith("Dropout")  # the panel starts on the dropout run
    assert {m.label for m in at.metric} >= {"Eval pass (dropout off)", "Mean of 30 passes"}
    assert any("L2 vs `weight_decay` 0.0e+00" in c.value for c in at.caption)  # Adam: L2 = its weight_decay


def test_regularization_page_survives_random_widgets():
    at = run_page(REGULARIZATION, query_params={"ep": "2", "n": "5", "reg": "none,l1,dropout"}, timeout=120)
    randomize_widgets(at, rounds=4, seed=7, timeout=180,
                      skip_keys=SLOW_KEYS | {"reg.epochs", "reg.width", "reg.size", "regp.steps", "regp.passes"},
                      allowed_errors=())
    assert_no_exception(at)


def test_data_pitfalls_page_shows_imbalance_and_leakage():
    at = run_page(PITFALLS, query_params={"ep": "3"}, timeout=120)
    assert not at.warning and not at.error
    _press(at, "pit.imbalance.start")
    assert len(at.dataframe) == 1
    leak_button = next(b.key for b in at.button if b.key.startswith("pit.leakage."))
    _press(at, leak_button)
    bars = next(f for f in _figures(at) if f["layout"]["title"]["text"].startswith("Accuracy on each part"))
    assert [trace["name"] for trace in bars["data"]] == ["clean · 10/class", "leaky 50% · 10/class"]
    assert any(m.value.startswith("The leaky model reports") for m in at.markdown)


def test_data_pitfalls_empty_class_is_a_message_and_a_safe_default():
    at = run_page(PITFALLS, query_params={"preset": "empty_class"}, timeout=120)
    assert not at.error and any("would get no training image" in w.value for w in at.warning)
    counts = next(f for f in _figures(at) if f["layout"]["title"]["text"].startswith("Training images per class"))
    assert min(counts["data"][0]["y"]) == 1


def test_data_pitfalls_page_survives_random_widgets():
    at = run_page(PITFALLS, query_params={"ep": "2"}, timeout=120)
    randomize_widgets(at, rounds=3, seed=3, timeout=180, skip_keys=SLOW_KEYS | {"pit.data", "pit.epochs"},
                      allowed_errors=())
    assert_no_exception(at)


def test_lesson_deep_links_open_their_presets():
    lesson = lesson_by_slug("13_overfitting_regularization")
    links = [(path, query) for _, path, query in app_links(lesson.body) if "preset" in query]
    assert {path for path, _ in links} == {"overfitting", "regularization", "data_pitfalls"} and len(links) >= 10
    for path, query in links:
        at = run_page(page_file_for(path), query_params=query, timeout=120)
        expected = [w.value for w in at.warning if "would get no training image" in w.value or "only" in w.value]
        assert not at.error and [w.value for w in at.warning] == expected, (path, query)
        assert not any(w.value.startswith("Unknown preset") for w in at.warning)
