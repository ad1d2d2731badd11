"""The hyperparameter-search page's panels: the search job (progress, Cancel, live history), the results,
k-fold cross-validation of the best configuration, and the link that opens it in Train Lab.

The search is one engine job (engine.training.tuning.search); its trial records are kept in the
session as they arrive, so Cancel keeps every finished trial.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from engine.errors import UserInputError
from engine.training import crossval, search_space, tuning
from engine.training.config import TrainConfig
from ui import jobs
from ui.figures import tuning as figs
from ui.sidebar import presenter_mode
from ui.state import store_run, unique_run_name

LOG = {"lr", "weight_decay"}  # drawn on log axes


def train_lab_query(config: TrainConfig) -> dict[str, str]:
    """Train Lab's URL parameters (ui/train_config.py FIELDS) that open `config` there."""
    options = config.model_options
    query = {"data": config.data, "model": config.model, "opt": config.optimizer, "lr": f"{config.lr:.4g}",
             "bs": str(config.batch_size), "ep": str(config.epochs), "sched": config.schedule,
             "wd": f"{config.weight_decay:.4g}", "aug": str(config.augmentation)}
    if "dropout" in options:
        query["drop"] = f"{options['dropout']:.4g}"
    if "width" in options:
        query["width"] = str(options["width"])
    if "hidden" in options:
        query["hidden"] = ",".join(map(str, options["hidden"]))
    return query


def _live(results: dict):
    """The job's live view: trial records stored as they arrive, a progress bar, the history so far."""
    def live(job, events) -> None:
        for event in events:
            if isinstance(event, tuning.TrialResult):
                results["trials"].append(event.to_dict())
            elif isinstance(event, tuning.TrialEpoch):
                results["epoch"] = event
            elif isinstance(event, tuning.SearchDone):
                results["done"] = event
                if event.run is not None:
                    event.run.name = unique_run_name(event.run.name)
                    store_run(event.run, results["dataset"])
        last, planned = results.get("epoch"), results["plan"].trials
        if not job.finished_state and last is not None:
            where = "retraining the best" if last.retrain else f"trial {last.number + 1} of {planned}"
            st.progress(min(1.0, (len(results["trials"]) + last.epoch / last.epochs) / (planned + 1)),
                        text=f"{where}, epoch {last.epoch}/{last.epochs}")
        if results["trials"]:
            st.plotly_chart(figs.optimization_history(results["trials"], presenter=presenter_mode()),
                            key="tuning.live_history", width="stretch")
    return live


def search_ui(key: str, plan: tuning.SearchPlan, dataset) -> dict | None:
    """The plan's estimate, the Search button or the running search; the last search's results (or None)."""
    (st.warning if plan.note else st.caption)(
        f"{plan.trials} trials, one after another on the CPU, then the best retrained: about "
        f"{max(1, round(plan.estimate_s))} s at most ({plan.trial_seconds:.1f} s a trial before pruning)"
        + (f". {plan.note[0].upper()}{plan.note[1:]}." if plan.note else "."))
    results = st.session_state.get(f"{key}.results")
    if not jobs.follow(key, _live(results or {})):
        jobs.outcome_ui(key)
        if jobs.start_button_ui("Search", key=f"{key}.run", type="primary", icon=":material/manage_search:"):
            results = {"trials": [], "plan": plan, "dataset": dataset, "done": None}
            st.session_state[f"{key}.results"] = results
            jobs.start(key, tuning.search, label="The hyperparameter search", estimate_s=plan.estimate_s,
                       plan=plan, dataset=dataset)
            jobs.follow(key, _live(results))
    return results


def trials_ui(results: dict) -> None:
    """The sortable trial table, parallel coordinates (a validation curve for one parameter), history, importances."""
    trials, names, done = results["trials"], list(results["plan"].space), results["done"]
    titles = {n: search_space.hyperparameter_info(n).title for n in names}
    presenter, score = presenter_mode(), st.column_config.NumberColumn(format="%.3f")
    rows = [{"trial": t["number"], **t["params"], "val acc": t["val_acc"], "train acc": t["train_acc"],
             "state": t["state"], "epochs": t["epochs"]} for t in trials]
    st.dataframe(pd.DataFrame(rows).set_index("trial"), width="stretch",
                 column_config={"val acc": score, "train acc": score})
    st.caption("Click a column header to sort. A pruned trial's score is its last epoch's, before it was stopped.")
    if len(names) == 1:
        st.plotly_chart(figs.validation_curve(trials, names[0], log=names[0] in LOG, title=titles[names[0]],
                                              presenter=presenter), width="stretch")
    elif any(t["val_acc"] is not None for t in trials):
        st.plotly_chart(figs.parallel_coordinates(trials, names, log=list(LOG), titles=titles, presenter=presenter),
                        width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(figs.optimization_history(trials, presenter=presenter), width="stretch")
    if done is not None and done.importances:
        right.plotly_chart(figs.importances(done.importances, titles=titles, presenter=presenter), width="stretch")
    elif done is not None:
        right.caption(f"Parameter importances need at least {tuning.MIN_IMPORTANCE_TRIALS} complete trials "
                      "and two parameters that vary.")


def cross_validation_ui(key: str, config: TrainConfig, dataset, *, folds: int, trial_seconds: float) -> None:
    """k-fold cross-validation of `config` as a job; the folds' accuracies with their mean and spread."""
    try:
        crossval.check_folds(dataset, folds)
    except UserInputError as error:
        st.info(str(error))
        return
    store = st.session_state.setdefault(f"{key}.results", {})
    setup = json.dumps([config.to_dict(), folds, dataset.name], sort_keys=True, default=str)

    def live(job, events) -> None:
        started_for = store.setdefault(st.session_state[f"{key}.for"], [])  # the set-up the running job has
        started_for.extend(events)
        if not job.finished_state:
            finished = sum(e.kind == "fold" for e in started_for)
            st.progress(finished / folds, text=f"fold {min(finished + 1, folds)} of {folds}")

    following = jobs.follow(key, live)
    summary = next((e for e in store.get(setup, []) if isinstance(e, crossval.CrossValidated)), None)
    if not following and (summary is None or summary.cancelled):
        jobs.outcome_ui(key)
        if jobs.start_button_ui(f"Cross-validate the best ({folds} folds)", key=f"{key}.run",
                                icon=":material/view_week:"):
            store[setup], st.session_state[f"{key}.for"] = [], setup
            jobs.start(key, crossval.cross_validate, label="Cross-validation", estimate_s=trial_seconds * folds,
                       dataset=dataset, config=config, folds=folds)
            jobs.follow(key, live)
    if summary is not None and summary.accuracies:
        st.plotly_chart(figs.fold_accuracies(summary.accuracies, presenter=presenter_mode()), width="stretch")
        st.latex(rf"\bar a = \tfrac1k \textstyle\sum_{{i=1}}^k a_i = {summary.mean:.3f}, \qquad "
                 rf"s = \sqrt{{\tfrac{{1}}{{k-1}}\textstyle\sum_i (a_i - \bar a)^2}} = {summary.std or 0:.3f}")
