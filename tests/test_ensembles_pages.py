"""AppTests of the Ensembles and Multi-task learning pages: train, check what they show, random widgets and buttons."""

import ast
from pathlib import Path

import pytest
import torch

from engine.training import multitask
from engine.training.config import TrainConfig
from tests.apptest_helpers import assert_no_exception, chart_text, finish_jobs, randomize_widgets, run_page

ROOT = Path(__file__).resolve().parents[1]
ENSEMBLES, MULTITASK = "app_pages/architectures/ensembles.py", "app_pages/architectures/multitask.py"
ENS_QUICK = {"data": "digits", "k": "3", "ep": "1", "pc": "5"}  # what a pressed Train button trains stays quick
MTL_QUICK = {"task": "size", "ep": "1", "pc": "25", "w": "8"}



def _presets(page: str) -> list[str]:
    tree = ast.parse((ROOT / page).read_text())  # the page's own preset table, without running the page
    presets = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", "") == "PRESETS")
    return [key.value for key in presets.keys]


# ----------------------------------------------------------------------------- ensembles
def test_ensembles_page_trains_members_and_shows_the_votes_of_their_probabilities():
    at = run_page(ENSEMBLES, query_params=ENS_QUICK, timeout=120)
    assert not at.error, [e.value for e in at.error]
    assert at.button(key="ens.job.start").label == "Train 3 members"
    at.button(key="ens.job.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at, "after Train")
    (results,) = at.session_state["ens.results"].values()
    assert sorted(results) == ["tinyvgg, seed 1", "tinyvgg, seed 2", "tinyvgg, seed 3"]  # sidebar seed 0 → S+1…S+3
    probs = torch.stack([r.probs for r in results.values()])
    assert torch.allclose(probs.sum(2), torch.ones(probs.shape[:2]), atol=1e-5)
    metrics = {m.label: m.value for m in at.metric}
    assert {"Mean member", "Best member", "Soft vote", "Hard vote"} <= set(metrics)
    # the soft vote shown is the accuracy of the mean probabilities, recomputed here from the members' own
    labels = _test_labels(at)
    soft = float((probs.mean(0).argmax(1) == labels).float().mean())
    assert metrics["Soft vote"] == f"{soft:.1%}"
    titles = chart_text(at)
    assert "Test accuracy: members and their votes" in titles and "Accuracy against the number of members k" in titles
    assert all(b.key != "ens.job.start" for b in at.button)  # every member trained: nothing left to start


def _test_labels(at) -> torch.Tensor:
    """The test labels of the page's data set, loaded as the page loads it (digits, seed 0)."""
    from ui.train_config import load_dataset

    return load_dataset("digits", None, 0).test.y


def test_ensembles_page_without_architectures_says_so():
    at = run_page(ENSEMBLES, query_params=ENS_QUICK)
    at.multiselect(key="ens.models").set_value([]).run()
    assert_no_exception(at)
    assert any("at least one architecture" in i.value for i in at.info)
    assert all(b.key != "ens.job.start" for b in at.button)


@pytest.mark.parametrize("page", [ENSEMBLES, MULTITASK])
def test_every_preset_opens_without_errors_or_warnings(page):
    names = _presets(page)
    assert len(names) >= 4
    for name in names:
        at = run_page(page, query_params={"preset": name}, timeout=120)
        assert not at.error and not at.warning, (name, [e.value for e in at.error], [w.value for w in at.warning])


def test_ensembles_page_survives_random_widgets_and_button_presses():
    at = run_page(ENSEMBLES, query_params=ENS_QUICK, timeout=120)
    randomize_widgets(at, rounds=4, seed=2, timeout=300, skip_keys={"global.seed"},
                      narrow={"ens.members": (2, 3), "ens.epochs": (1, 2), "ens.per_class": ["5", "10"]})
    assert_no_exception(at)


# ----------------------------------------------------------------------------- multi-task
def test_multitask_page_trains_three_nets_and_compares_both_tasks():
    at = run_page(MULTITASK, query_params=MTL_QUICK, timeout=120)
    assert not at.error, [e.value for e in at.error]
    assert any(r"\lambda_1" in latex.value for latex in at.latex)
    at.button(key="mtl.job.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at, "after Train")
    table = at.dataframe[-1].value.set_index("network")
    assert list(table.index) == ["multi-task", "shape only", "size only"]
    assert all(table.loc["multi-task", ["shape test acc", "size test acc"]].str.endswith("%"))
    assert table["shape test acc"].tolist()[2] == "—" and table["size test acc"].tolist()[1] == "—"  # one head
    assert table["shape test acc"].tolist()[1].endswith("%")
    # one base for two tasks: fewer parameters than the two single-task nets together
    assert table.loc["multi-task", "parameters"] < table.loc["shape only", "parameters"] + table.loc["size only",
                                                                                                       "parameters"]
    titles = chart_text(at)
    assert "validation accuracy" in titles and "What the multi-task net minimizes" in titles
    assert "Task “shape”" in titles and "Task “size”" in titles


def test_multitask_page_survives_random_widgets_and_button_presses():
    at = run_page(MULTITASK, query_params=MTL_QUICK, timeout=120)
    randomize_widgets(at, rounds=4, seed=1, timeout=300, skip_keys={"global.seed"},
                      narrow={"mtl.epochs": (1, 2), "mtl.per_class": ["25", "50"], "mtl.width": ["8"]})
    assert_no_exception(at)


def test_lesson_deep_links_open_their_presets():
    from ui.lessons import app_links, lesson_by_slug
    from ui.topics import page_file_for

    links = [(path, query) for _, path, query in app_links(lesson_by_slug("12_ensembles_multitask").body)]
    assert {path for path, _ in links} >= {"ensembles", "multitask"}
    for path, query in links:
        if path in ("ensembles", "multitask"):
            at = run_page(page_file_for(path), query_params=query, timeout=120)
            assert not at.error and not at.warning, (path, query)


def test_lesson_head_question_counts_the_multitask_pages_colour_head():
    """The lesson's numeric answer is what the Multi-task page's table shows: multi-task minus shape-only parameters."""
    from engine import data, models
    from engine.training.trainer import Trainer
    from ui.lessons import lesson_by_slug

    (question,) = [q for q in lesson_by_slug("12_ensembles_multitask").quiz if "colour families" in q.prompt]
    shapes = data.load("shapes", seed=0, num_images=800, image_size=16)
    config = TrainConfig.for_data("shapes", image_size=16, model_options={"width": 16})
    multi, shape_only, _ = multitask.plan(config, shapes, labels="colour", main_task="shape")
    counts = [models.count_params(Trainer(net.config, net.dataset).model) for net in (multi, shape_only)]
    assert counts[0] - counts[1] == question.answer == 256 * 3 + 3


def test_multitask_page_with_both_weights_zero_says_why_instead_of_failing():
    """Random use found it: both sliders allow 0, and the Trainer refuses a loss with every weight 0."""
    at = run_page(MULTITASK, query_params={**MTL_QUICK, "l1": "0.0", "l2": "0.0"})
    assert_no_exception(at)
    assert not at.error and any("nothing would train" in i.value for i in at.info), [e.value for e in at.error]
    assert all(b.key != "mtl.job.start" for b in at.button)
    at.slider(key="mtl.l2").set_value(0.5).run()
    assert not at.error and at.button(key="mtl.job.start")


def test_vote_bars_name_the_mean_member_in_the_legend_behind_the_bars():
    """Seen in a screenshot: the mean's label inside the plot sat on a member bar's own label."""
    from ui.figures.ensembles import vote_bars

    fig = vote_bars({"tinyvgg, seed 1": 0.98, "tinyvgg, seed 2": 0.94}, 0.981, 0.981)
    line, bars = fig.data
    assert line.name == "mean member (96.0%)" and list(line.y) == pytest.approx([0.96, 0.96]) and not fig.layout.annotations
    order = ["tinyvgg, seed 1", "tinyvgg, seed 2", "soft vote", "hard vote"]
    assert list(bars.x) == order and not bars.showlegend
    assert list(fig.layout.xaxis.categoryarray) == order  # the line's two ends must not reorder the categories
