"""Hyperparameter search on a validation split: grid, random and Bayesian (TPE) search, with pruning.

A search space is plain data (engine.training.search_space): a range `{"low": 1e-4, "high": 1e-1,
"log": True}` or a list `{"choices": [32, 64, 128]}` per hyperparameter. Every trial is one Trainer
run with `evaluate_test=False`, so the test split is never read while searching; its score is the
last validation accuracy it reached. Optuna samples the trials (ask-and-tell, so the search is one
generator of events a job can run and cancel) and a median pruner stops a trial whose validation
accuracy after an epoch is below the median of earlier trials at that epoch. At the end the best
configuration is trained again on the training split and tested once. Trials run one after another
(one job, one CPU slot); running them in parallel is future work.

References:
    Bergstra & Bengio 2012, "Random Search for Hyper-Parameter Optimization", JMLR 13:281–305.
    Bergstra, Bardenet, Bengio & Kégl 2011, "Algorithms for Hyper-Parameter Optimization" (TPE), NeurIPS.
    Akiba et al. 2019, "Optuna: A Next-generation Hyperparameter Optimization Framework", KDD.
    Watanabe, Bansal & Hutter 2023, "PED-ANOVA: Efficiently Quantifying Hyperparameter Importance in
        Arbitrary Subspaces", IJCAI (Optuna's default importance evaluator).
"""

from __future__ import annotations

import dataclasses
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import optuna

from engine import limits
from engine.data.sets import Dataset, Split
from engine.errors import UserInputError
from engine.registry import Registry
from engine.training.config import TrainConfig
from engine.training.events import Diverged, EpochEnd, Stopped
from engine.training.runs import Run
from engine.training.search_space import configure, grid_points, parse_space
from engine.training.trainer import Trainer

optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial would flood the CLI and the server log

COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"
PRUNE_AFTER_TRIALS = 5  # the median pruner waits for this many finished trials (Optuna's default)
PRUNE_FROM_EPOCH = 2  # and never prunes a trial after its first epoch (steps are epochs, from 1)
PROBE_IMAGES = 512  # training images of the probe epoch that times a trial
MIN_TRIAL_SECONDS = 0.01  # no estimate below this: a timer's resolution, and no division by zero
MIN_IMPORTANCE_TRIALS = 4  # complete trials before parameter importances mean anything


# ---------------------------------------------------------------------------- methods and the plan
@dataclass(frozen=True)
class Method:
    title: str
    description: str


METHODS: Registry[Method] = Registry("search method")
METHODS.add("grid", Method("Grid search", "every combination of a few values per parameter, in random order; "
                                          "the cost grows as values^parameters"))
METHODS.add("random", Method("Random search", "independent draws from the whole space: with the same budget "
                                              "it tries more values of the parameters that matter "
                                              "(Bergstra & Bengio 2012)"))
METHODS.add("tpe", Method("Bayesian (TPE)", "after a few random trials, models where good and bad trials lie and "
                                            "samples where good ones are dense (Bergstra et al. 2011)"))


def method_names() -> list[str]:
    return METHODS.names()


def method_info(name: str) -> Method:
    return METHODS.get(name)


@dataclass(frozen=True)
class SearchPlan:
    """A checked search, with its time estimate; what the `search` job runs."""

    base: TrainConfig
    space: dict  # plain data, as given
    method: str
    trials: int  # after the grid and the time limit
    seed: int
    prune: bool
    grid: tuple[dict, ...] | None  # the grid's points in the order they run
    trial_seconds: float  # the probe's estimate of one trial, at the costliest point
    estimate_s: float  # all trials and the retraining, pruning not counted
    note: str  # what the plan did to the request, for the page and the CLI


def _probe_seconds(base: TrainConfig, dataset: Dataset) -> float:
    """Seconds of one trial: a warm probe epoch on up to PROBE_IMAGES images, scaled to the data and the epochs."""
    n = min(len(dataset.train), PROBE_IMAGES)
    small = dataclasses.replace(dataset, train=Split(dataset.train.x[:n], dataset.train.y[:n]))
    probe = dataclasses.replace(base, epochs=2, batch_size=min(base.batch_size, n), patience=0, snapshots=False)
    stamps = [time.perf_counter()]
    for event in Trainer(probe, small).run():
        if isinstance(event, EpochEnd):
            stamps.append(time.perf_counter())
    # the faster epoch (the first one warms up); a probe that diverged in its first epoch counts as one
    epoch = min(np.diff(stamps)) if len(stamps) > 1 else time.perf_counter() - stamps[0]
    return max(MIN_TRIAL_SECONDS, float(epoch) * len(dataset.train) / n * base.epochs)


def plan_search(dataset: Dataset, base: TrainConfig, space: Mapping[str, object], *, method: str, trials: int,
                seed: int = 0, prune: bool = True) -> SearchPlan:
    """Check the space and the method, time a probe epoch and cap the trials at the time limit.

    The time limit is engine.limits.MAX_SEARCH_SECONDS; the plan's `note` says when it cut the trials.
    """
    method_info(method)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= limits.MAX_TRIALS:
        raise UserInputError(f"trials must be between 1 and {limits.MAX_TRIALS}; got {trials}")
    dimensions = parse_space(space, model=base.model, train_images=len(dataset.train))
    asked, notes, grid = trials, [], None
    if method == "grid":
        points = grid_points(dimensions, trials)
        random.Random(seed).shuffle(points)  # a grid cut short still spreads over the space
        if len(points) > trials:
            notes.append(f"the grid has {len(points)} points; the first {trials} in random order run")
        trials = min(trials, len(points))
        grid = tuple(points[:trials])
    probe_point = {name: d.costliest() for name, d in dimensions.items()}
    per_trial = _probe_seconds(configure(base, probe_point, evaluate_test=False), dataset)
    affordable = int(limits.MAX_SEARCH_SECONDS // per_trial) - 1  # one more training retrains the best
    if affordable < 1:
        raise UserInputError(f"one trial takes about {per_trial:.0f} s here, and a search needs at least two "
                             f"trainings within {limits.MAX_SEARCH_SECONDS // 60} min: use fewer epochs, a "
                             f"smaller model or a smaller data set")
    if trials > affordable:
        notes.append(f"{trials} trials would take about {per_trial * (trials + 1) / 60:.0f} min here, over the "
                     f"{limits.MAX_SEARCH_SECONDS // 60}-min limit: capped at {affordable} trials")
        trials = affordable
        grid = grid[:trials] if grid is not None else None
    if trials < asked and method == "grid" and not notes:
        notes.append(f"the grid has {trials} points")
    return SearchPlan(base, dict(space), method, trials, seed, prune, grid, per_trial, per_trial * (trials + 1),
                      "; ".join(notes))


# ---------------------------------------------------------------------------- events
@dataclass
class TrialStarted:
    number: int
    params: dict
    kind: str = "trial_started"


@dataclass
class TrialEpoch:
    """After each epoch of a trial (or of the final retraining, `retrain` True)."""

    number: int
    epoch: int
    epochs: int
    val_acc: float
    retrain: bool = False
    kind: str = "trial_epoch"


@dataclass
class TrialResult:
    """A finished trial: `val_acc` is the last validation accuracy it reported (None if it failed)."""

    number: int
    params: dict
    state: str  # complete | pruned | failed
    val_acc: float | None
    train_acc: float | None
    curve: list[float] = field(default_factory=list)  # validation accuracy per epoch
    seconds: float = 0.0
    message: str = ""  # why it failed
    kind: str = "trial"

    def to_dict(self) -> dict:
        return {"number": self.number, "params": self.params, "val_acc": self.val_acc, "state": self.state,
                "train_acc": self.train_acc, "epochs": len(self.curve), "message": self.message}


@dataclass
class SearchDone:
    """The end: the best complete trial, retrained and tested (unless cancelled), and parameter importances."""

    best: TrialResult | None
    test_acc: float | None
    retrained_val_acc: float | None
    importances: dict[str, float]
    seconds: float
    cancelled: bool
    run: Run | None = field(default=None, repr=False)  # the retrained best, for the session's Run store
    kind: str = "search_done"


def best_trial(trials: list[TrialResult]) -> TrialResult | None:
    """The complete trial with the highest validation accuracy (the earliest among equals)."""
    complete = [t for t in trials if t.state == COMPLETE]
    return max(complete, key=lambda t: (t.val_acc, -t.number)) if complete else None


# ---------------------------------------------------------------------------- the search job
def _study(plan: SearchPlan) -> optuna.Study:
    if plan.method == "tpe":
        # Optuna's default of 10 random start-up trials would leave little for TPE in a classroom budget.
        sampler = optuna.samplers.TPESampler(seed=plan.seed, n_startup_trials=min(10, max(3, plan.trials // 3)))
    else:
        sampler = optuna.samplers.RandomSampler(seed=plan.seed)  # grid: every trial is enqueued, never sampled
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS, n_warmup_steps=PRUNE_FROM_EPOCH)
              if plan.prune else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    for point in plan.grid or ():
        study.enqueue_trial(point)
    return study


def _trial(study: optuna.Study, trial: optuna.Trial, params: dict, plan: SearchPlan, dataset: Dataset,
           should_stop: Callable[[], bool]) -> Iterator[TrialEpoch | TrialResult]:
    """Train one trial, report each epoch to the pruner and tell the study how it ended; None if cancelled."""
    started, curve, train_acc, message = time.perf_counter(), [], None, ""
    state = COMPLETE
    try:
        trainer = Trainer(configure(plan.base, params, evaluate_test=False), dataset)
    except UserInputError as error:  # e.g. options this model cannot take together
        state, message = FAILED, str(error)
    else:
        events = trainer.run(should_stop)
        try:
            for event in events:
                if isinstance(event, EpochEnd):
                    curve.append(event.val_acc)
                    train_acc = event.train_acc
                    yield TrialEpoch(trial.number, event.epoch, event.epochs, event.val_acc)
                    trial.report(event.val_acc, event.epoch)
                    if trial.should_prune():
                        state = PRUNED
                        break
                elif isinstance(event, Diverged):
                    state, message = FAILED, event.message
                elif isinstance(event, Stopped) and event.reason == "cancelled":
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    return None
        finally:
            events.close()
    if state == COMPLETE and not curve:
        state, message = FAILED, "no epoch finished"
    if state == COMPLETE:
        study.tell(trial, curve[-1])
    else:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED if state == PRUNED else optuna.trial.TrialState.FAIL)
    return TrialResult(trial.number, params, state, curve[-1] if curve and state != FAILED else None, train_acc,
                       curve, time.perf_counter() - started, message)


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Each searched parameter's share of the variation in validation accuracy (PED-ANOVA); {} with too few
    trials or fewer than two varied parameters."""
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    varied = [name for name in (complete[0].params if complete else {})
              if len({t.params[name] for t in complete}) > 1]
    if len(complete) < MIN_IMPORTANCE_TRIALS or len(varied) < 2:  # one parameter always gets 100 %
        return {}
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importances = dict(optuna.importance.get_param_importances(study, evaluator=evaluator, params=varied))
    # too few trials: the top 10 % are all of them, and PED-ANOVA says every parameter matters equally
    return {} if any("select the same set of trials" in str(w.message) for w in caught) else importances


def search(should_stop: Callable[[], bool], *, plan: SearchPlan, dataset: Dataset) -> Iterator:
    """The whole search as one job: trials one after another, then the best retrained and tested once.

    Yields TrialStarted, TrialEpoch and TrialResult per trial, TrialEpoch(retrain=True) while the best
    configuration retrains, and one SearchDone. Cancel ends it within a batch: finished trials are kept,
    the running one is dropped and nothing is retrained.
    """
    started = time.perf_counter()
    dimensions = parse_space(plan.space, model=plan.base.model, train_images=len(dataset.train))
    study = _study(plan)
    results: list[TrialResult] = []
    for _ in range(plan.trials):
        if should_stop():
            break
        trial = study.ask()
        params = {name: d.suggest(trial) for name, d in dimensions.items()}
        yield TrialStarted(trial.number, params)
        result = yield from _trial(study, trial, params, plan, dataset, should_stop)
        if result is None:
            break
        results.append(result)
        yield result
    best, cancelled = best_trial(results), should_stop()
    importances = param_importances(study)
    run = test_acc = retrained_val = None
    if best is not None and not cancelled:
        trainer = Trainer(configure(plan.base, best.params, evaluate_test=True), dataset)
        for event in trainer.run(should_stop):
            if isinstance(event, EpochEnd):
                yield TrialEpoch(best.number, event.epoch, event.epochs, event.val_acc, retrain=True)
        cancelled = should_stop()
        if not cancelled:
            test_acc = trainer.history.test_acc
            retrained_val = trainer.history.val_acc[-1] if trainer.history.val_acc else None
            run = trainer.to_run(f"best of {method_info(plan.method).title.lower()}: {plan.base.model} "
                                 f"on {dataset.name}")
    yield SearchDone(best, test_acc, retrained_val, importances, time.perf_counter() - started, cancelled, run)
