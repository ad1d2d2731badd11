"""Hyperparameter search: the test split stays unseen, the best trial is returned and reproduced, TPE keeps
up with a grid, pruning and Cancel work, bad spaces are refused; k-fold cross-validation; the CLI."""

import dataclasses
import io
import json
import os
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch

from engine.__main__ import main
from engine.cli.tune import space_entry
from engine.data.sets import Split
from engine.errors import UserInputError
from engine.training import crossval, search_space, tuning
from engine.training.config import TrainConfig
from engine.training.losses import build as build_loss
from engine.training.trainer import evaluate

LR = {"lr": {"low": 1e-4, "high": 1e-1, "log": True}}
LONG = os.environ.get("VISIONEXPLORER_LONG_TESTS") == "1"


class Unreadable:
    """Stands in for the test split's tensors: any use at all raises."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read during the search (.{name})")

    def __len__(self):
        raise AssertionError("the test split was read during the search (len)")

    def __getitem__(self, index):
        raise AssertionError("the test split was read during the search ([])")


def _linear(epochs: int = 2, **overrides) -> TrainConfig:
    return TrainConfig(data="digits", model="linear", epochs=epochs, **{"seed": 0, **overrides})


def _events(plan, dataset, should_stop=lambda: False) -> list:
    return list(tuning.search(should_stop, plan=plan, dataset=dataset))


def _done(events) -> tuning.SearchDone:
    (done,) = [e for e in events if isinstance(e, tuning.SearchDone)]
    return done


def test_search_never_reads_the_test_split_and_returns_and_reproduces_its_best_trial(digits):
    guarded = dataclasses.replace(digits, test=Split(Unreadable(), Unreadable()))
    plan = tuning.plan_search(guarded, _linear(), LR | {"batch_size": {"choices": [32, 128]}}, method="grid",
                              trials=6, seed=0, prune=False)
    assert plan.trials == 6 and len(plan.grid) == 6
    results = []
    for event in tuning.search(lambda: False, plan=plan, dataset=guarded):
        if isinstance(event, tuning.TrialResult):
            results.append(event)
            if len(results) == plan.trials:
                guarded.test = digits.test  # only the final retraining may read it
        elif isinstance(event, tuning.SearchDone):
            done = event
    assert len(results) == 6 and all(r.state == "complete" for r in results)
    assert sorted(tuple(r.params.items()) for r in results) == sorted(tuple(p.items()) for p in plan.grid)
    assert done.best.val_acc == max(r.val_acc for r in results)
    assert done.best in results
    # the retrained best is the same training (same seed): the same validation accuracy, then one test
    assert done.retrained_val_acc == pytest.approx(done.best.val_acc)
    assert done.test_acc == pytest.approx(evaluate(done.run.model, digits.test, build_loss("cross_entropy"))[1])
    assert done.run.config["lr"] == done.best.params["lr"] and done.run.config["batch_size"] == done.best.params[
        "batch_size"]


def _best(dataset, method: str, space: dict, *, trials: int, seed: int, epochs: int = 3) -> float:
    plan = tuning.plan_search(dataset, _linear(epochs, seed=seed), space, method=method, trials=trials, seed=seed,
                              prune=False)
    return _done(_events(plan, dataset)).best.val_acc


def test_seeded_tpe_is_within_one_point_of_the_grid_with_the_same_budget(digits):
    grid, tpe = _best(digits, "grid", LR, trials=20, seed=0), _best(digits, "tpe", LR, trials=20, seed=0)
    assert grid > 0.9  # a real search: the grid's 20 learning rates include good ones
    assert tpe >= grid - 0.01, (tpe, grid)


@pytest.mark.skipif(not LONG, reason="set VISIONEXPLORER_LONG_TESTS=1")
@pytest.mark.parametrize("space", [LR, LR | {"batch_size": {"choices": [32, 64, 128]}}], ids=["lr", "lr_bs"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seeded_tpe_is_within_one_point_of_the_grid_long(digits, space, seed):
    grid, tpe = _best(digits, "grid", space, trials=20, seed=seed), _best(digits, "tpe", space, trials=20, seed=seed)
    assert tpe >= grid - 0.01, (tpe, grid)


def test_median_pruner_stops_hopeless_trials_and_keeps_their_last_score(digits):
    space = {"lr": {"low": 1e-5, "high": 1.0, "log": True}}
    plan = tuning.plan_search(digits, _linear(4), space, method="random", trials=10, seed=0)
    trials = [e for e in _events(plan, digits) if isinstance(e, tuning.TrialResult)]
    pruned = [t for t in trials if t.state == "pruned"]
    assert pruned, [(t.params, t.curve) for t in trials]
    for t in pruned:
        assert 2 <= len(t.curve) < 4 and t.val_acc == t.curve[-1]  # never before its second epoch
    assert all(len(t.curve) == 4 for t in trials if t.state == "complete")
    unpruned = dataclasses.replace(plan, prune=False)
    assert all(e.state == "complete" for e in _events(unpruned, digits) if isinstance(e, tuning.TrialResult))


def test_cancel_stops_within_a_second_keeps_finished_trials_and_retrains_nothing(digits):
    config = TrainConfig(data="digits", model="tinyvgg", model_options={"width": 8}, epochs=4, seed=0)
    plan = tuning.plan_search(digits, config, LR, method="random", trials=5, seed=0, prune=False)
    cancelled_at, events = None, []
    stop = lambda: cancelled_at is not None  # noqa: E731
    for event in tuning.search(stop, plan=plan, dataset=digits):
        events.append(event)
        if isinstance(event, tuning.TrialEpoch) and event.number == 1 and cancelled_at is None:
            cancelled_at = time.perf_counter()  # in the middle of the second trial
    assert time.perf_counter() - cancelled_at < 1.0
    done = _done(events)
    assert done.cancelled and done.test_acc is None and done.run is None
    assert [e.number for e in events if isinstance(e, tuning.TrialResult)] == [0]  # the running one is dropped
    assert done.best.number == 0
    assert not any(isinstance(e, tuning.TrialEpoch) and e.retrain for e in events)


def test_grid_takes_as_many_values_per_range_as_the_budget_allows_and_trials_cap_it(digits):
    dims = search_space.parse_space(LR | {"batch_size": {"choices": [32, 64, 128]}}, model="linear",
                                    train_images=1000)
    points = search_space.grid_points(dims, 9)
    assert len(points) == 9
    assert sorted({p["lr"] for p in points}) == pytest.approx([1e-4, 10 ** -2.5, 1e-1])  # even in log
    three = LR | {"batch_size": {"choices": [32, 64, 128]}}
    plan = tuning.plan_search(digits, _linear(1), three, method="grid", trials=5, seed=0)
    assert plan.trials == 3 and plan.note == "the grid has 3 points"  # 3 × 2 > 5: one lr, the middle in log
    assert [p["lr"] for p in plan.grid] == pytest.approx([10 ** -2.5] * 3)
    plan = tuning.plan_search(digits, _linear(1), three, method="grid", trials=2, seed=0)
    assert plan.trials == 2 and plan.note == "the grid has 3 points; the first 2 in random order run"


def test_a_budget_over_the_limit_is_capped_and_says_so(digits, monkeypatch):
    monkeypatch.setattr(tuning, "_probe_seconds", lambda base, dataset: 10.0)
    monkeypatch.setattr(tuning.limits, "MAX_SEARCH_SECONDS", 100)
    plan = tuning.plan_search(digits, _linear(), LR, method="tpe", trials=50, seed=0)
    assert plan.trials == 9 and plan.estimate_s == 100  # 9 trials + the retraining
    assert "capped at 9 trials" in plan.note and "50 trials would take about 8 min" in plan.note
    monkeypatch.setattr(tuning.limits, "MAX_SEARCH_SECONDS", 15)
    with pytest.raises(UserInputError, match="one trial takes about 10 s"):
        tuning.plan_search(digits, _linear(), LR, method="tpe", trials=5, seed=0)


def test_probe_estimate_is_an_upper_bound_of_the_same_order_as_a_trial(digits):
    plan = tuning.plan_search(digits, _linear(3), {"lr": {"choices": [0.01]}}, method="random", trials=1, seed=0)
    started = time.perf_counter()
    _events(plan, digits)
    spent = (time.perf_counter() - started) / 2  # the trial and the retraining
    assert spent / 20 < plan.trial_seconds < spent * 20


@pytest.mark.parametrize("space, fragment", [
    ({"dropout": {"low": 0.0, "high": 0.5}}, "model 'linear' has no dropout option"),
    ({"width": {"choices": [8, 16]}}, "model 'linear' has no width option"),
])
def test_options_the_model_lacks_are_refused(digits, space, fragment):
    with pytest.raises(UserInputError, match=fragment):
        tuning.plan_search(digits, _linear(), space, method="random", trials=3)


@pytest.mark.parametrize("space, fragment", [
    ({}, "the search space is empty"),
    ({"lr": {"low": 0.1, "high": 0.001}}, "lr range is empty"),
    ({"lr": {"low": 0, "high": 0.1, "log": True}}, "lr must lie in"),
    ({"weight_decay": {"low": 0.0, "high": 0.1, "log": True}}, "a log range needs low > 0"),
    ({"dropout": {"low": 0.95, "high": 1.5}}, "dropout must lie in [0, 0.9]"),
    ({"momentum": {"low": 0.5, "high": 0.9}}, "unknown hyperparameter 'momentum'; choose one of: lr,"),
    ({"batch_size": {"choices": [4096, 2048]}}, "every batch size in the space is above the 1259 training images"),
    ({"batch_size": {"choices": [32.5]}}, "batch_size takes whole numbers"),
    ({"batch_size": {"choices": []}}, "choices must be a non-empty list"),
    ({"lr": {"low": "a", "high": 0.1}}, "lr low must be a number"),
    ({"lr": {"low": 0.001}}, "needs both low and high"),
    ({"lr": {"low": 0.001, "high": 0.1, "step": 2}}, "unknown key(s) step"),
    ({"lr": {"choices": [0.1], "low": 0.01}}, "either choices or low/high"),
    ({"augmentation": {"low": 0, "high": 1}}, "augmentation takes a list of choices"),
    ({"augmentation": {"choices": ["none", "sideways"]}}, "unknown augmentation 'sideways'"),
    ({"lr": 0.01}, "must be a range or a list of choices"),
])
def test_bad_spaces_are_refused_with_the_rule(digits, space, fragment):
    with pytest.raises(UserInputError) as error:
        tuning.plan_search(digits, TrainConfig(model="mlp", epochs=1), space, method="random", trials=3)
    assert fragment in str(error.value)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(method="bayes", trials=3), "unknown search method 'bayes'; choose one of: grid, random, tpe"),
    (dict(method="tpe", trials=0), "trials must be between 1 and"),
])
def test_bad_methods_and_budgets_are_refused(digits, kwargs, fragment):
    with pytest.raises(UserInputError, match=fragment):
        tuning.plan_search(digits, _linear(), LR, **kwargs)


def test_configure_puts_values_where_each_model_takes_them():
    mlp = search_space.configure(TrainConfig(model="mlp"), {"lr": 0.01, "width": 32, "dropout": 0.25},
                                 evaluate_test=False)
    assert mlp.lr == 0.01 and mlp.model_options == {"hidden": (32,), "dropout": 0.25} and not mlp.evaluate_test
    cnn = search_space.configure(TrainConfig(model="tinyvgg"), {"width": 8, "batch_size": 64})
    assert cnn.model_options == {"width": 8} and cnn.batch_size == 64


def test_importances_name_the_learning_rate_when_it_is_what_matters(digits):
    plan = tuning.plan_search(digits, _linear(2), LR | {"batch_size": {"choices": [32, 64, 128]}}, method="grid",
                              trials=9, seed=0, prune=False)
    importances = _done(_events(plan, digits)).importances
    assert set(importances) == {"lr", "batch_size"} and sum(importances.values()) == pytest.approx(1)
    assert max(importances, key=importances.get) == "lr"


# ---- k-fold cross-validation ---------------------------------------------------------------------------
def test_folds_partition_train_and_val_by_class_and_each_normalizes_with_its_own_statistics(digits):
    parts = crossval.fold_datasets(digits, 5, seed=0)
    pooled = len(digits.train) + len(digits.val)
    held_out = torch.cat([p.val.x for p in parts])
    assert len(held_out) == pooled and all(len(p.train) + len(p.val) == pooled for p in parts)
    assert len(torch.unique(held_out.flatten(1), dim=0)) == len(torch.unique(
        torch.cat([digits.train.x, digits.val.x]).flatten(1), dim=0))  # every image held out once
    sizes = [len(p.val) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    for p in parts:
        counts = torch.bincount(p.val.y, minlength=10)
        assert counts.max() - counts.min() <= 3  # stratified: every class in every fold
        assert p.mean[0] == pytest.approx(float(p.train.x.mean()), abs=1e-5)
        assert p.test is digits.test


def test_cross_validation_never_reads_the_test_split_and_averages_the_folds(digits):
    guarded = dataclasses.replace(digits, test=Split(Unreadable(), Unreadable()))
    events = list(crossval.cross_validate(lambda: False, dataset=guarded, config=_linear(2, lr=0.05), folds=3))
    folds, (summary,) = events[:-1], events[-1:]
    assert [f.fold for f in folds] == [1, 2, 3] and sum(f.images for f in folds) == 1438
    assert summary.mean == pytest.approx(sum(f.val_acc for f in folds) / 3) and summary.mean > 0.85
    assert summary.std > 0 and not summary.cancelled


@pytest.mark.parametrize("folds, fragment", [(1, "folds must be between 2 and 10"), (11, "between 2 and 10")])
def test_cross_validation_refuses_a_bad_k(digits, folds, fragment):
    with pytest.raises(UserInputError, match=fragment):
        crossval.fold_datasets(digits, folds, seed=0)


def test_cross_validation_refuses_a_large_set(small_shapes, monkeypatch):
    monkeypatch.setattr(crossval.limits, "MAX_CROSS_VALIDATION_IMAGES", 100)
    with pytest.raises(UserInputError, match="k-fold cross-validation is for small sets"):
        crossval.check_folds(small_shapes, 5)


# ---- the CLI --------------------------------------------------------------------------------------------
def _cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["tune", *argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_prints_trials_best_and_test_accuracy_as_json():
    code, out, _ = _cli("--data", "digits", "--model", "linear", "--method", "random", "--trials", "4",
                        "--epochs", "2", "--seed", "0", "--space", "lr=1e-3:1e-1:log", "--space",
                        "batch_size=32,64", "--folds", "3", "--json")
    assert code == 0
    report = json.loads(out.strip().splitlines()[-1])
    assert len(report["trials"]) == 4 and {t["state"] for t in report["trials"]} <= {"complete", "pruned", "failed"}
    complete = [t for t in report["trials"] if t["state"] == "complete"]
    assert report["best"]["val_acc"] == max(t["val_acc"] for t in complete)
    assert report["best"]["params"] in [t["params"] for t in complete]
    assert 0.5 < report["test_acc"] <= 1 and report["seconds"] > 0 and len(report["cv"]["accuracies"]) == 3
    assert all(1e-3 <= t["params"]["lr"] <= 1e-1 and t["params"]["batch_size"] in (32, 64) for t in report["trials"])


@pytest.mark.parametrize("argv, fragment", [
    (["--space", "lr=0.1:0.001"], "lr range is empty"),
    (["--space", "lr"], "--space must look like name=low:high"),
    (["--space", "lr=1e-3:1e-1:ln"], "a range is low:high or low:high:log"),
    (["--model", "linear", "--space", "dropout=0:0.5"], "model 'linear' has no dropout option"),
    (["--folds", "1"], "folds must be between 2 and 10"),
])
def test_cli_bad_arguments_print_one_line_and_exit_2(argv, fragment):
    code, _, err = _cli("--trials", "2", "--epochs", "1", *argv)
    assert code == 2
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_cli_unknown_method_exits_2():
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_, redirect_stderr(err):
        main(["tune", "--method", "bayes"])
    assert exit_.value.code == 2 and "invalid choice: 'bayes'" in err.getvalue()


def test_space_entries_parse_ranges_log_ranges_and_choices():
    assert space_entry("lr=1e-4:1e-1:log") == ("lr", {"low": 1e-4, "high": 0.1, "log": True})
    assert space_entry("dropout=0:0.5") == ("dropout", {"low": 0, "high": 0.5, "log": False})
    assert space_entry("batch_size=32,64") == ("batch_size", {"choices": [32, 64]})
    assert space_entry("augmentation=none,shift") == ("augmentation", {"choices": ["none", "shift"]})
