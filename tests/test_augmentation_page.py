"""AppTests for the augmentation page: transforms and their torchvision lines, presets, mixed labels, training
with vs without the pipeline, and random widgets with button presses."""

from tests.apptest_helpers import assert_no_exception, finish_jobs, randomize_widgets, run_page

PAGE = "app_pages/regularization/augmentation.py"
QUICK = {"n": "5", "ep": "2"}  # what the Train button trains stays small


def test_page_shows_every_transform_with_its_torchvision_line():
    at = run_page(PAGE, query_params=QUICK, timeout=120)
    assert not at.error, [e.value for e in at.error]
    assert len(at.image) >= 11  # one row of variants per transform, and the pipeline's grid
    code = " ".join(c.value for c in at.code)
    for line in ("v2.RandomHorizontalFlip", "v2.RandomResizedCrop(32", "v2.ColorJitter", "v2.RandomErasing",
                 "not bit-identical"):
        assert line in code, line
    assert any("Train Lab" in m.value and "augs=flip" in m.value for m in at.markdown)


def test_flipped_digits_preset_warns_and_mixup_preset_shows_mixed_labels():
    at = run_page(PAGE, query_params={"preset": "flipped_digits"}, timeout=120)
    assert any("mirrored digits" in w.value for w in at.warning)
    assert any("(digits_safe)" in i.value for i in at.info)  # and what to use instead
    at = run_page(PAGE, query_params={"preset": "mixup"}, timeout=120)
    assert not at.error, [e.value for e in at.error]
    assert any("v2.MixUp" in c.value for c in at.code) and len(at.get("plotly_chart")) == 1


def test_bad_url_value_is_ignored_with_a_message():
    at = run_page(PAGE, query_params={"erase.scale": "1", **QUICK}, timeout=120)
    assert_no_exception(at)
    assert any("erase.scale" in w.value for w in at.warning)


def test_training_with_and_without_shows_curves_and_accuracy():
    at = run_page(PAGE, query_params={"preset": "digits"}, timeout=120)
    at.number_input(key="aug.n").set_value(5)
    at.number_input(key="aug.epochs").set_value(2).run(timeout=120)
    at.button(key="aug.train.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at)
    runs = at.session_state["runs"]
    assert len(runs) == 2 and any("no augmentation" in name for name in runs)
    assert any(run.config["augmentation"] != "none" for run in runs.values())
    assert len(at.get("plotly_chart")) >= 3  # loss, accuracy, final accuracy bars


def test_page_survives_random_widgets_and_buttons():
    at = run_page(PAGE, query_params=QUICK, timeout=120)
    randomize_widgets(at, rounds=4, seed=2, skip_keys={"aug.n", "aug.epochs"}, timeout=120)
    assert_no_exception(at)


def test_the_pages_train_lab_link_trains_that_pipeline_there():
    from urllib.parse import parse_qsl, urlsplit

    at = run_page(PAGE, query_params={"preset": "digits"}, timeout=120)
    link = next(m.value for m in at.markdown if "Train Lab" in m.value).split("](")[1].rstrip(")")
    at = run_page("app_pages/start/train_lab.py", query_params={**dict(parse_qsl(urlsplit(link).query)), "ep": "1"})
    assert not at.error, [e.value for e in at.error]
    assert at.text_input(key="train.aug_steps").value == "crop:scale=0.7;rotate:degrees=10"
    at.button(key="train.start").click().run()
    finish_jobs(at)
    (run,) = at.session_state["runs"].values()
    assert [step["name"] for step in run.config["augmentation"]] == ["crop", "rotate"]


def test_train_lab_explains_bad_custom_steps():
    at = run_page("app_pages/start/train_lab.py", query_params={"aug": "custom"})
    at.text_input(key="train.aug_steps").set_value("flip;mixup:alpha=0").run()
    assert any("needs α > 0" in e.value for e in at.error)
    assert_no_exception(at)


def test_figures_show_the_mixed_labels_and_final_accuracies():
    from types import SimpleNamespace

    import numpy as np

    from ui.figures import augmentation as figs

    targets = np.array([[0.7, 0.3, 0.0], [0.0, 0.001, 0.999]])
    fig = figs.mixed_labels(np.random.rand(2, 3, 8, 8), targets, ["a", "b", "c"], title="MixUp")
    bars = [t for t in fig.data if t.type == "bar"]
    assert [list(b.x) for b in bars] == [["a", "b"], ["c"]]  # shares under 0.5 % are left out
    assert list(bars[0].y) == [0.7, 0.3]
    history = SimpleNamespace(train_acc=[0.5, 1.0], val_acc=[0.4, 0.6], test_acc=0.55)
    fig = figs.accuracy_bars({"run": history, "empty": SimpleNamespace(train_acc=[], val_acc=[], test_acc=None)})
    assert [list(t.y) for t in fig.data] == [[1.0, None], [0.6, None], [0.55, None]]
