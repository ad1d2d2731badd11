"""AppTests for the Residual learning page: it trains plain vs residual nets, runs the lesion study, and
survives random widgets and button presses."""

import pytest

from tests.apptest_helpers import assert_no_exception, finish_jobs, randomize_widgets, run_page

PAGE = "app_pages/architectures/residual.py"
TINY = {"depths": "8,14", "ep": "1"}  # what a pressed Train button trains stays a few seconds


def test_residual_page_opens_with_the_path_histogram():
    at = run_page(PAGE)
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 1  # the paths need no training
    assert at.button(key="res.train.start")
    assert any("F(x)" in latex.value for latex in at.latex)


def test_residual_page_trains_both_nets_then_lesions_them():
    at = run_page(PAGE, query_params=TINY, timeout=120)
    at.button(key="res.train.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at)
    names = sorted(at.session_state["res.train.runs"])
    assert names == ["plain-14 on digits", "plain-8 on digits", "residual-14 on digits", "residual-8 on digits"]
    assert len(at.get("plotly_chart")) == 3  # training curves, final loss by depth, paths
    assert at.selectbox(key="res.lesion_depth").value == 14
    at.button(key="res.lesion.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 5  # + lesion bars and the remove-k curve
    lesions = at.session_state["res.lesion.result"][1]
    assert set(lesions) == {"residual", "plain"}
    assert [r.block for r in lesions["plain"].not_removable] == ["stage2.0", "stage3.0"]
    assert len(lesions["residual"].removed) == 6 and not lesions["residual"].not_removable
    randomize_widgets(at, rounds=3, seed=4, timeout=180, skip_keys={"res.depths", "res.epochs", "res.data",
                                                                    "global.seed"})
    assert_no_exception(at)


def test_residual_page_survives_random_widgets():
    at = run_page(PAGE, query_params=TINY, timeout=120)
    # depths, epochs and data stay tiny so a pressed Train button stays quick; the rest is random
    randomize_widgets(at, rounds=4, seed=1, timeout=180, skip_keys={"res.depths", "res.epochs", "res.data",
                                                                    "global.seed"})
    assert_no_exception(at)


def test_one_depth_is_a_message_and_the_lessons_links_open_without_warnings():
    for depths in ("20", ""):  # the multiselect allows one depth and none: a hint, not an error
        at = run_page(PAGE, query_params={"depths": depths})
        assert not at.error and any("at least 2 depths" in i.value for i in at.info), [e.value for e in at.error]
        assert all(b.key != "res.train.start" for b in at.button)
        assert len(at.get("plotly_chart")) == 1  # the paths still show
    from ui.lessons import app_links, lesson_by_slug

    links = [query for _, path, query in app_links(lesson_by_slug("10_residual_learning").body)]
    assert {q.get("preset") for q in links} == {"degradation", "quick", "very_deep", "paths"}  # every preset
    for query in links:
        at = run_page(PAGE, query_params=query)
        assert not at.warning and not at.error, (query, [w.value for w in at.warning])


def test_lesion_charts_name_chance_in_the_legend_not_over_the_data():
    """Seen in a screenshot: the 'chance' label inside the plot sat on the last bars and on the plain curve."""
    from engine.training.residual import Lesion, NotRemovable, RandomK, Removal
    from ui.figures import residual as figs

    lesions = {"residual": Lesion(0.98, 0.1, [Removal("stage1.0", 0.5), Removal("stage2.0", 0.9)], [],
                                  [RandomK(1, 0.7, 0.2), RandomK(2, 0.3, 0.1)]),
               "plain": Lesion(0.6, 0.1, [Removal("stage1.0", 0.1)], [NotRemovable("stage2.0", "shape")],
                               [RandomK(1, 0.1, 0.0)])}
    for fig, span in ((figs.lesion_bars(lesions), ["stage1.0", "stage2.0"]), (figs.random_k_curve(lesions), [0, 2])):
        (chance,) = [t for t in fig.data if t.name == "chance (10%)"]
        assert list(chance.y) == [0.1, 0.1] and list(chance.x) == span
        assert not fig.layout.annotations


def test_random_k_error_bars_stop_at_0_and_100_percent():
    """Seen on the page: mean 0.9 ± 0.2 drew a bar up to 110 %."""
    from engine.training.residual import Lesion, RandomK
    from ui.figures import residual as figs

    lesion = Lesion(1.0, 0.1, [], [], [RandomK(1, 0.9, 0.2), RandomK(2, 0.05, 0.2), RandomK(3, 0.5, 0.1)])
    (curve,) = [t for t in figs.random_k_curve({"residual": lesion}).data if t.name == "residual"]
    assert list(curve.error_y.array) == pytest.approx([0.0, 0.1, 0.2, 0.1])
    assert list(curve.error_y.arrayminus) == pytest.approx([0.0, 0.2, 0.05, 0.1])
