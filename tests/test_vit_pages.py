"""AppTests for the attention pages: they open, show what they promise, and survive random widgets."""

import pytest

from ui.topics import page_file_for
from tests.apptest_helpers import assert_no_exception, finish_jobs, randomize_widgets, run_page


@pytest.fixture(scope="module")
def vit_run(digits):
    from engine.training.config import TrainConfig
    from engine.training.trainer import Trainer

    config = TrainConfig(data="digits", model="vit_tiny", model_options=dict(width=16, depth=2, heads=2),
                         epochs=1, seed=0)
    return Trainer(config, digits).fit()


def _state(run, dataset):
    return {"runs": {run.name: run}, "run_datasets": {run.name: dataset}}


def test_attention_page_shows_the_steps_and_rows_sum_to_one():
    at = run_page("app_pages/transformers/attention.py")
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) >= 8  # X, Q, K, V, scores, weights, output, concat, out, PE


def test_attention_page_bad_heads_is_a_message_not_a_traceback():
    at = run_page("app_pages/transformers/attention.py", query_params={"d": "6", "h": "4"})
    assert any("must divide" in e.value for e in at.error)


def test_attention_page_survives_random_widgets():
    at = run_page("app_pages/transformers/attention.py")
    randomize_widgets(at, rounds=4, seed=3)
    assert_no_exception(at)


def test_vit_inside_page_shows_maps_of_a_run(vit_run, digits):
    at = run_page("app_pages/transformers/vit_inside.py", session_state=_state(vit_run, digits), timeout=90)
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) >= 4  # position similarity, heads, rollout, distance


def test_vit_inside_page_without_runs_offers_training():
    at = run_page("app_pages/transformers/vit_inside.py")
    assert not at.exception
    assert any(b.label.startswith("Train") for b in at.button)


def test_vit_inside_page_survives_random_widgets(vit_run, digits):
    at = run_page("app_pages/transformers/vit_inside.py", session_state=_state(vit_run, digits), timeout=90)
    randomize_widgets(at, rounds=2, seed=5, timeout=90)
    assert_no_exception(at)


def test_cnn_vs_vit_page_compares_costs_and_survives_random_widgets():
    small = {"ep": "1", "w": "16", "depth": "1", "fr": "0.05"}  # what the pressed buttons train stays quick
    at = run_page("app_pages/transformers/cnn_vs_vit.py", query_params=small, timeout=90)
    assert not at.error, [e.value for e in at.error]
    assert at.dataframe or at.table, "no cost comparison shown"
    randomize_widgets(at, rounds=2, seed=2, timeout=180, skip_keys={"cvv.epochs", "cvv.fractions", "cvv.width",
                                                                     "cvv.depth", "global.seed"})
    assert_no_exception(at)


def test_cnn_vs_vit_data_size_experiment_runs_and_is_cached():
    # 5 % of digits is 63 images, fewer than the batch size of 64: the experiment must shrink the batch.
    at = run_page("app_pages/transformers/cnn_vs_vit.py", query_params={"fr": "0.05", "ep": "1", "w": "16"}, timeout=120)
    at.button(key="cvv.data_run").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at)
    cached = at.session_state["cvv.data_results"]
    assert cached and all(len(points) == 1 for points in next(iter(cached.values())).values())
    assert len(at.get("plotly_chart")) >= 2


def test_lesson_deep_links_open_their_presets_without_warnings():
    from ui.lessons import app_links, lesson_by_slug

    lesson = lesson_by_slug("06_attention_vit")
    links = [(path, query) for _, path, query in app_links(lesson.body) if "preset" in query]
    assert len(links) >= 4  # the attention presets and the small-data experiment
    for path, query in links:
        at = run_page(page_file_for(path), query_params=query, timeout=90)
        assert not at.warning and not at.error, (path, query, [w.value for w in at.warning])


def test_train_lab_accepts_vit_tiny():
    at = run_page("app_pages/start/train_lab.py", query_params={"model": "vit_tiny", "ep": "1", "heads": "2"}, timeout=90)
    assert not at.error
    assert at.select_slider(key="train.heads").value == 2
    at.button(key="train.start").click().run()
    finish_jobs(at)
    assert not at.exception and not at.error
    assert any(m.label == "Test accuracy" for m in at.metric)


def test_cnn_vs_vit_keeps_finished_points_and_plans_only_new_ones():
    at = run_page("app_pages/transformers/cnn_vs_vit.py", query_params={"fr": "0.05", "ep": "1", "w": "16"}, timeout=120)
    at.button(key="cvv.data_run").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at)
    at.run(timeout=120)
    assert at.button(key="cvv.data_run").disabled  # every chosen point is done
    at.multiselect(key="cvv.fractions").select(0.1).run(timeout=120)
    assert any("2 trainings to run" in c.value for c in at.caption), [c.value for c in at.caption]
    points = next(iter(at.session_state["cvv.data_results"].values()))
    assert all(len(p) == 1 for p in points.values())  # the 5 % points are still there


def test_cnn_vs_vit_refuses_an_experiment_over_the_time_limit():
    from engine.limits import MAX_TRAIN_SECONDS

    # All 8,400 shapes, the largest ViT and 50 epochs: about ten times the limit on a laptop CPU.
    query = {"data": "shapes", "w": "64", "depth": "6", "ep": "50", "fr": "0.1,0.25,0.5,1.0"}
    at = run_page("app_pages/transformers/cnn_vs_vit.py", query_params=query, timeout=180)
    assert any(f"over the {MAX_TRAIN_SECONDS} s limit" in w.value for w in at.warning), [w.value for w in at.warning]
    assert at.button(key="cvv.data_run").disabled
