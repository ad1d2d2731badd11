"""AppTests of the optimizer, landscape, losses and mini-batch pages: widgets fuzzed, buttons clicked."""

from tests.apptest_helpers import assert_no_exception, chart_text, finish_jobs, randomize_widgets, run_page



def test_optimizers_page_draws_paths_and_survives_random_widgets():
    at = run_page("app_pages/training/optimizers.py", query_params={"steps": "60"})
    assert "Contours" in at.tabs[0].label and "Loss per step" in chart_text(at)
    at.button(key="opt.preset.too_large").click().run()
    assert_no_exception(at, "too large preset")
    assert any("diverged at step" in w.value for w in at.warning)
    randomize_widgets(at, rounds=3, seed=2, timeout=60)


def test_optimizers_page_deep_link_sets_surface_and_learning_rates():
    at = run_page("app_pages/training/optimizers.py", query_params={"surf": "rosenbrock", "preset": "too_small", "steps": "30"})
    assert at.selectbox(key="opt.surface").value == "rosenbrock"
    assert at.number_input(key="opt.lr.sgd").value == 1e-4  # a tenth of what works on Rosenbrock


def test_landscape_page_trains_and_draws_line_plane_and_paths():
    at = run_page("app_pages/training/landscape.py", query_params={"res": "5", "n": "64"}, timeout=180)
    at.button(key="land.train.start").click().run(timeout=180)
    finish_jobs(at)
    assert_no_exception(at, "after training the demo")
    specs = chart_text(at)
    assert "accuracy" in specs and '"type":"contour"' in specs and '"type":"surface"' in specs
    at.radio(key="land.kind").set_value("pca").run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at, "PCA plane")
    assert "PC 1" in chart_text(at)
    refine = [b for b in at.button if b.key and b.key.endswith(".fine.start")]
    refine[0].click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at, "refine")
    randomize_widgets(at, rounds=2, seed=1, timeout=180, skip_keys={"land.res", "land.images", "land.depth"})


def test_landscape_page_bad_url_values_warn_instead_of_crashing():
    at = run_page("app_pages/training/landscape.py", query_params={"res": "99", "n": "abc"})
    assert any("Ignored ?res=99" in w.value for w in at.warning)


def test_losses_page_curves_and_random_widgets():
    at = run_page("app_pages/training/losses.py", query_params={"ep": "1"})
    specs = chart_text(at)
    assert "Loss of one example" in specs and "Gradient dL" in specs and "label smoothing" in specs
    randomize_widgets(at, rounds=3, seed=0, timeout=120, skip_keys={"loss.chosen", "loss.epochs"})


def test_losses_page_trains_two_losses():
    at = run_page("app_pages/training/losses.py", query_params={"ep": "1", "model": "linear"}, timeout=120)
    at.multiselect(key="loss.chosen").set_value(["cross_entropy", "multiclass_hinge"]).run()
    at.button(key="loss.train.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at, "after training")
    assert len(at.session_state["loss.train.runs"]) == 2 and "Accuracy" in chart_text(at)


def test_minibatch_page_noise_schedules_and_range_test():
    at = run_page("app_pages/training/minibatch.py", query_params={"reps": "5", "steps": "30", "model": "linear"}, timeout=120)
    specs = chart_text(at)
    assert "Error of the mini-batch gradient" in specs and "Cosine annealing" in specs
    at.button(key="mb.range.start").click().run(timeout=120)
    finish_jobs(at)
    assert_no_exception(at, "range test")
    assert at.success and "falls fastest" in at.success[0].value
    randomize_widgets(at, rounds=2, seed=3, timeout=120, skip_keys={"mb.repeats", "mb.model"})


def test_landscape_page_shows_one_run_in_two_sections():
    """Pick one of the with/without-skips pair as "your run": its plane shows in both tabs, under distinct keys."""
    at = run_page("app_pages/training/landscape.py", query_params={"res": "5", "n": "64", "depth": "8"}, timeout=180)
    at.button(key="land.skip.start").click().run(timeout=180)
    finish_jobs(at)
    pair = [name for name in at.session_state["runs"] if "skips" in name]
    assert len(pair) == 2, list(at.session_state["runs"])
    at.selectbox(key="land.run").set_value(pair[0]).run(timeout=180)
    finish_jobs(at)
    assert_no_exception(at, "the same run in two sections")
    refine = [b for b in at.button if b.key and b.key.endswith(".fine.start") and pair[0] in b.key]
    assert len(refine) == 2  # one grid, two sections: each with its own button
    refine[0].click().run(timeout=180)
    finish_jobs(at)
    assert_no_exception(at, "refined in one section")
    left = [b.key for b in at.button if b.key and b.key.endswith(".fine.start") and pair[0] in b.key]
    assert left == [refine[1].key]  # the refined section shows its fine grid; the other keeps its button
