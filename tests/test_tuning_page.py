"""AppTests of the hyperparameter-search page: a search runs as a job and shows its trials, the best is
retrained, tested, cross-validated and opens in Train Lab; random widgets and buttons never break it."""

import pytest

from engine.training import search_space
from engine.training.config import TrainConfig
from tests.apptest_helpers import assert_no_exception, finish_jobs, randomize_widgets, run_page
from ui.tuning_panel import train_lab_query

PAGE = "app_pages/regularization/tuning.py"
QUICK = {"trials": "4", "ep": "1"}
# rules the page explains when the widgets pick a space with no valid point
EXPLAINED = ["has no dropout option", "has no width option", "choices must be a non-empty list",
             "the search space is empty", "batch sizes up to", "every batch size in the space is above"]


def _search(at):
    at.button(key="tune.search.run").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at)
    return at


def test_page_opens_with_a_plan_and_a_search_button():
    at = run_page(PAGE)
    assert not at.error, [e.value for e in at.error]
    assert any("trials, one after another on the CPU" in c.value for c in at.caption)
    assert at.button(key="tune.search.run")


def test_search_shows_trials_retrains_the_best_and_cross_validates_it():
    at = _search(run_page(PAGE, query_params=QUICK, timeout=120))
    results = at.session_state["tune.search.results"]
    assert len(results["trials"]) == 4 and results["done"].test_acc is not None
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 4
    assert len(at.get("plotly_chart")) >= 2  # parallel coordinates, history
    metrics = [m.value for m in at.metric]
    assert metrics[0] == f"{results['done'].best.val_acc:.1%}" and metrics[1] == f"{results['done'].test_acc:.1%}"
    assert any(name.startswith("best of bayesian") for name in at.session_state["runs"])
    at.button(key="tune.cv.run").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at)
    assert any(r"\bar a" in latex.value for latex in at.latex)


def test_lambda_sweep_preset_draws_a_validation_curve():
    at = _search(run_page(PAGE, query_params={"preset": "lambda_sweep", "ep": "1"}, timeout=120))
    assert not at.warning, [w.value for w in at.warning]
    assert list(at.session_state["tune.search.results"]["plan"].space) == ["weight_decay"]
    titles = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert any("Validation curve" in spec for spec in titles)


def test_the_train_lab_link_opens_the_same_configuration():
    config = search_space.configure(TrainConfig.for_data("digits", model="mlp", epochs=4),
                                    {"lr": 0.0123, "dropout": 0.35, "batch_size": 64, "width": 32})
    query = train_lab_query(config)
    at = run_page("app_pages/start/train_lab.py", query_params=query)
    assert not at.warning, [w.value for w in at.warning]
    state = at.session_state
    assert (state["train.model"], state["train.lr"], state["train.batch_size"], state["train.dropout"],
            state["train.hidden"], state["train.epochs"]) == ("mlp", 0.0123, 64, 0.35, "32", 4)


@pytest.mark.parametrize("seed", [1, 3])  # seed 3 once drew a first-step divergence in the time probe
def test_page_survives_random_widgets_and_buttons(seed):
    at = run_page(PAGE, query_params=QUICK, timeout=120)
    randomize_widgets(at, rounds=4, seed=seed, timeout=180, allowed_errors=EXPLAINED,
                      skip_keys={"tune.trials", "tune.epochs", "tune.data", "global.seed"})
    assert_no_exception(at)


def test_lesson_deep_links_open_their_presets_without_warnings():
    from ui.lessons import app_links, lesson_by_slug

    links = app_links(lesson_by_slug("15_tuning").body)
    assert len(links) >= 4
    for _, path, query in links:
        assert path == "tuning"
        at = run_page(PAGE, query_params=query)
        assert not at.warning and not at.error, (query, [w.value for w in at.warning], [e.value for e in at.error])
