"""AppTests for the transfer pages: probes, feature space and strategy with a source run of the session;
fine-tuning and the few-shot curve; no source yet; random widgets and buttons; the lesson's links."""

import pytest

from tests.apptest_helpers import assert_no_exception, finish_jobs, randomize_widgets, run_page
from ui.topics import page_file_for

TRANSFER, FINE = "app_pages/architectures/transfer.py", "app_pages/architectures/fine_tuning.py"
SKIPPED = {"transfer.train.start", "transfer.download", "global.seed"}  # 12,000 shapes; the network


@pytest.fixture(scope="module")
def source_run():
    from engine import data
    from engine.training.config import TrainConfig
    from engine.training.trainer import Trainer

    shapes = data.load("shapes", seed=0, num_images=800, image_size=16)
    config = TrainConfig.for_data("shapes", image_size=16, model_options={"norm": "batch", "width": 8}, epochs=2)
    return Trainer(config, shapes).fit()


def _state(run):
    return {"runs": {run.name: run}}


def test_transfer_page_probes_pictures_and_runs_a_recipe(source_run):
    at = run_page(TRANSFER, session_state=_state(source_run), query_params={"k": "5"}, timeout=120)
    finish_jobs(at, timeout=120)  # the probes and the PCA pictures start at once
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 3  # probe bars, feature space, strategy table
    assert any("gray repeated into 3 channels" in c.value for c in at.caption)
    assert any("Chosen on validation" in c.value for c in at.caption)
    at.toggle(key="tl.similar").set_value(True)
    at.toggle(key="tl.much").set_value(True).run(timeout=120)
    assert any("Fine-tune a few layers" in m.value for m in at.markdown)
    at.button(key="tl.recipe.run").click().run(timeout=120)
    finish_jobs(at, timeout=120)
    assert_no_exception(at)
    assert [m.label for m in at.metric] == ["pixels + linear", "fine-tuned"]


def test_transfer_page_without_a_source_offers_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    at = run_page(TRANSFER, timeout=120)
    assert any(b.label == "Train a source here" for b in at.button)
    assert any("Estimated time" in c.value for c in at.caption)
    at.radio(key="transfer.kind").set_value("pretrained").run(timeout=120)
    assert any("resnet18-f37072fd.pth" in w.value for w in at.warning)  # the registry's offline message
    at.button(key="transfer.offer").click().run(timeout=120)
    assert at.radio(key="transfer.kind").value == "train"


def test_transfer_page_reads_a_cached_pretrained_network(tmp_path, monkeypatch):
    from tests.test_pretrained import _write_random_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _write_random_weights("resnet18")
    at = run_page(TRANSFER, query_params={"src": "pretrained", "size": "32", "k": "2"}, timeout=120)
    finish_jobs(at, timeout=120)
    assert not at.error, [e.value for e in at.error]
    assert any("GMACs per image at 32×32" in c.value for c in at.caption)
    assert any("Chosen on validation: **" in c.value for c in at.caption)  # which layer wins on random weights varies
    assert len(at.get("plotly_chart")) == 3


def test_transfer_page_survives_random_widgets(source_run):
    at = run_page(TRANSFER, session_state=_state(source_run), timeout=120)
    finish_jobs(at, timeout=120)
    randomize_widgets(at, rounds=3, seed=4, timeout=180, skip_keys=SKIPPED | {"transfer.target"})
    assert_no_exception(at)


def test_fine_tuning_page_trains_and_measures_batchnorm(source_run):
    at = run_page(FINE, session_state=_state(source_run), query_params={"preset": "bn_train_mode"}, timeout=120)
    assert not at.error and not at.warning, [w.value for w in at.warning]
    assert not at.toggle(key="ft.bn_eval").value and at.slider(key="ft.unfreeze").value == 0
    at.button(key="ft.tune.run").click().run(timeout=120)
    finish_jobs(at, timeout=120)
    assert_no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Frozen BatchNorm moved"].split()[0]) > 0  # train mode: the "frozen" statistics drift
    assert len(at.session_state["runs"]) == 2  # the fine-tuned run joins the session's runs
    at.toggle(key="ft.bn_eval").set_value(True).run(timeout=120)
    at.button(key="ft.tune.run").click().run(timeout=120)
    finish_jobs(at, timeout=120)
    assert {m.label: m.value for m in at.metric}["Frozen BatchNorm moved"] == "0.00 σ"


def test_fine_tuning_page_refuses_a_run_where_nothing_learns(source_run):
    at = run_page(FINE, session_state=_state(source_run), query_params={"head": "false", "unfreeze": "0"})
    assert any("nothing would learn" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "ft.tune.run"]  # the frame ends the page at the message


def test_fine_tuning_page_draws_the_few_shot_curve(source_run):
    at = run_page(FINE, session_state=_state(source_run), query_params={"shots": "2,5", "cep": "1"}, timeout=120)
    at.button(key="ft.curve.run").click().run(timeout=120)
    finish_jobs(at, timeout=120)
    assert_no_exception(at)
    (points,) = at.session_state["ft.curves"].values()
    assert set(points) >= {"pixels_linear", "features_linear", "fine_tuned", "scratch"}
    assert all(set(p) == {2, 5} for p in points.values())
    assert len(at.get("plotly_chart")) == 1


def test_fine_tuning_page_survives_random_widgets(source_run):
    at = run_page(FINE, session_state=_state(source_run), query_params={"ep": "1", "cep": "1", "shots": "2"},
                  timeout=120)
    randomize_widgets(at, rounds=3, seed=6, timeout=180,
                      skip_keys=SKIPPED | {"transfer.target", "ft.epochs", "ft.curve_epochs", "ft.shots"},
                      allowed_errors=["nothing would learn"])
    assert_no_exception(at)


def test_lesson_deep_links_open_their_presets_without_warnings(source_run):
    from ui.lessons import app_links, lesson_by_slug

    links = [(path, query) for _, path, query in app_links(lesson_by_slug("11_transfer_learning").body)]
    assert len(links) >= 8 and {path for path, _ in links} == {"transfer_learning", "fine_tuning"}
    for path, query in links:
        at = run_page(page_file_for(path), session_state=_state(source_run), query_params=query, timeout=120)
        assert not at.warning and not at.error, (path, query, [w.value for w in at.warning])
