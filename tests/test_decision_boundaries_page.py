"""AppTest of the decision-boundaries page: Step trains the user's model, widgets fuzzed, the statement's numbers shown."""

import re

from engine.training import toy2d
from tests.apptest_helpers import assert_no_exception, chart_text, randomize_widgets, run_page

PAGE = "app_pages/start/decision_boundaries.py"


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _statement(at) -> str:
    return next(m.value for m in at.markdown if "logistic regression" in m.value)


def test_step_trains_and_the_statement_states_this_runs_numbers():
    at = run_page(PAGE, query_params={"data": "ring", "n": "200", "steps": "20"})
    assert _metric(at, "Steps") == "0"
    losses = [float(_metric(at, "Train loss"))]
    for _ in range(3):
        at.button(key="db.step").click().run()
        assert_no_exception(at, "after Step")
        losses.append(float(_metric(at, "Train loss")))
    assert _metric(at, "Steps") == "60"
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]
    # The page's logistic-regression figure is the engine's, on the same training split.
    x, y = toy2d.make("ring", n_points=200, noise=0.1, seed=0)
    data = toy2d.split(x, y, test_share=0.3, seed=0)
    linear = toy2d.linear_accuracy(data.x_train, data.y_train)
    text = _statement(at)
    assert f"**{linear:.1%}**" in text and "cannot separate" in text
    assert f"**{_metric(at, 'Train accuracy')}**" in text and "after 60 steps" in text
    assert "16 hidden units" in text
    assert "unit 8" in chart_text(at)  # one tile per first-layer unit
    at.button(key="db.reset").click().run()
    assert _metric(at, "Steps") == "0"


def test_settings_change_resets_and_linear_model_has_no_tiles():
    at = run_page(PAGE, query_params={"mlp": "false", "data": "moons"})
    at.button(key="db.step").click().run()
    assert _metric(at, "Steps") == "10"
    assert "The linear classifier" in _statement(at)
    assert "unit 1" not in chart_text(at)
    at.selectbox(key="db.data").set_value("spiral").run()
    assert _metric(at, "Steps") == "0"  # new data, new model
    at.select_slider(key="db.lr").set_value(0.1).run()
    assert dict(at.query_params) == {"mlp": "false", "data": "spiral", "lr": "0.1"}  # a shareable link


def test_diverging_learning_rate_is_stopped_and_said():
    at = run_page(PAGE, query_params={"lr": "3.0", "act": "relu", "layers": "4", "units": "16", "data": "spiral"})
    at.button(key="db.step").click().run()
    assert_no_exception(at, "large learning rate")
    assert any("loss exploded" in w.value for w in at.warning)
    assert re.fullmatch(r"\d+\.\d{4}", _metric(at, "Train loss"))  # the last good weights: a finite loss
    taken = _metric(at, "Steps")
    at.button(key="db.step").click().run()
    assert _metric(at, "Steps") == taken  # stopped until Reset


def test_random_widgets():
    at = run_page(PAGE, query_params={"n": "100"})
    randomize_widgets(at, rounds=4, seed=3, timeout=60)
    text = _statement(at)
    assert re.search(r"reaches \*\*\d+\.\d%\*\* training accuracy", text)


def _statement(at) -> str:
    return next(m.value for m in at.markdown if "logistic regression" in m.value)


def _with_rows(rows: list[dict]) -> str:
    at = run_page(PAGE, query_params={"data": "ring", "n": "100", "test": "0.0"})
    at.session_state["db.own"] = {"edited_rows": {}, "deleted_rows": [], "added_rows": rows}
    at.run()
    assert_no_exception(at, f"with own points {rows}")
    return _statement(at)


def test_own_points_join_the_training_set():
    """Points typed into the table (the editor's state, as the browser sends it) change what is trained on."""
    plain = _statement(run_page(PAGE, query_params={"data": "ring", "n": "100", "test": "0.0"}))
    cluster = [{"x": 4.5, "y": 4.5 - i / 10, "class": 1} for i in range(30)]
    grown = _with_rows(cluster)
    assert grown != plain  # 30 more class-1 points: the logistic regression's accuracy moves
    assert _with_rows([*cluster, {"x": -1.5, "y": 0.0}]) == grown  # a row without a class is left out
