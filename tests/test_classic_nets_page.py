"""AppTests of "Classic nets, trained here": plan table, the vanishing-layer message before training, Train, results."""

import ast
from pathlib import Path

from tests.apptest_helpers import assert_no_exception, chart_text, finish_jobs, randomize_widgets, run_page

PAGE = "app_pages/architectures/classic_nets.py"
ROOT = Path(__file__).resolve().parents[1]
QUICK = {"ep": "1", "w": "4"}  # what a pressed Train button trains stays quick


def test_page_plans_trains_and_compares_the_chosen_nets():
    at = run_page(PAGE, query_params=QUICK | {"nets": "lenet5,vgg_mini,inception_mini"}, timeout=120)
    assert not at.error, [e.value for e in at.error]
    (plan,) = [d.value for d in at.dataframe]
    assert list(plan.index) == ["LeNet-5", "VGG (mini)", "GoogLeNet / Inception (mini)"]
    assert plan.loc["VGG (mini)", "map side"] == "8 → 4 → 2 → 1"  # digits: three halvings
    assert list(plan.columns) == ["parameters", "MACs per image", "map side"] and (plan["parameters"] > 0).all()
    at.button(key="cn.train.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at, "after Train")
    (table,) = [d.value for d in at.dataframe]  # one table: size, cost, map, and now accuracy and time
    assert list(table.columns) == ["test accuracy", "parameters", "MACs per image", "s per epoch", "epochs", "map side"]
    assert table[["parameters", "MACs per image", "map side"]].equals(plan[["parameters", "MACs per image", "map side"]])
    assert table["test accuracy"].notna().all() and (table["s per epoch"] > 0).all() and (table["epochs"] == 1).all()
    specs = chart_text(at)
    assert "Test accuracy against parameters" in specs and "Test accuracy against MACs per image" in specs
    assert len(at.session_state["runs"]) == 3
    at.number_input(key="cn.epochs").set_value(2).run()  # other settings: the trained columns empty again
    (table,) = [d.value for d in at.dataframe]
    assert "test accuracy" not in table.columns and at.button(key="cn.train.start")


def test_accuracy_vs_cost_puts_a_label_below_where_it_would_run_into_a_neighbours():
    """Seen in a screenshot: VGG (mini) and AlexNet (mini), close in MACs and accuracy, labelled over each other."""
    from ui.figures.classic_nets import accuracy_vs_cost

    points = {"LeNet-5": (66_600, 0.889), "AlexNet (mini)": (1_167_360, 0.880), "VGG (mini)": (683_520, 0.894),
              "GoogLeNet / Inception (mini)": (913_728, 0.992)}
    fig = accuracy_vs_cost(points, cost="MACs per image")
    positions = {trace.name: trace.textposition for trace in fig.data}
    assert positions["VGG (mini)"] == "top center" and positions["AlexNet (mini)"] == "bottom center"  # the higher up
    assert positions["GoogLeNet / Inception (mini)"] == "top center"  # far above the others
    alone = accuracy_vs_cost({"a": (1e4, 0.5), "b": (1.2e4, 0.9)}, cost="parameters")  # far apart in accuracy
    assert {trace.textposition for trace in alone.data} == {"top center"}


def test_a_net_that_pools_digits_away_is_named_before_training():
    at = run_page(PAGE, query_params={"preset": "vgg_too_deep"})
    messages = [e.value for e in at.error]
    assert len(messages) == 1 and "VGG (mini)" in messages[0]
    assert "does not fit 8×8 images: pool" in messages[0] and "at most 3 blocks" in messages[0]
    assert at.button(key="cn.train.start").label == "Train 1 net"  # LeNet-5 still trains
    assert list(at.dataframe[0].value.index) == ["LeNet-5"]


def test_every_preset_opens_without_warnings():
    tree = ast.parse((ROOT / PAGE).read_text())  # the page's own preset table, without running the page
    presets = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", "") == "PRESETS")
    names = [key.value for key in presets.keys]
    assert len(names) >= 4
    for name in names:
        at = run_page(PAGE, query_params={"preset": name}, timeout=120)
        assert not at.warning, (name, [w.value for w in at.warning])
        assert name == "vgg_too_deep" or not at.error, (name, [e.value for e in at.error])


def test_page_survives_random_widgets_and_button_presses():
    at = run_page(PAGE, query_params=QUICK, timeout=120)
    randomize_widgets(at, rounds=3, seed=4, timeout=300, skip_keys={"cn.epochs", "train.data", "train.size",
                                                                   "cn.width", "global.seed"},
                      allowed_errors=["does not fit"])
    assert_no_exception(at)


def test_history_lesson_deep_links_open_their_presets_without_warnings():
    from ui.lessons import app_links, lesson_by_slug
    from ui.topics import page_file_for

    links = [(path, query) for _, path, query in app_links(lesson_by_slug("09_cnn_history").body)]
    assert {q["preset"] for p, q in links if p == "classic_nets"} >= {"lenet_alexnet_vgg_shapes", "inception_aux",
                                                                      "vgg_too_deep"}
    for path, query in links:
        at = run_page(page_file_for(path), query_params=query, timeout=120)
        assert not at.warning, (path, query, [w.value for w in at.warning])
