"""Hyperparameter search: grid, random or Bayesian (TPE) trials on the validation split, then one test."""

import json

import streamlit as st

from engine.data import augment
from engine.data.sets import Dataset
from engine.training import search_space, tuning
from engine.training.config import TrainConfig
from ui.lessons import lesson_link_ui
from ui.sidebar import seed
from ui.state import UrlField, choice, flag, items, number, url_state
from ui.train_config import load_dataset
from ui.tuning_panel import cross_validation_ui, search_ui, train_lab_query, trials_ui

P = "tune"
DATA = {"digits": None, "faces": None, "shapes": 16}  # name -> image size (None = native); shapes small for speed
MODELS = ["linear", "mlp", "tinyvgg"]
LRS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
DECAYS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1]
BATCHES, WIDTHS, FOLDS = [16, 32, 64, 128, 256], [4, 8, 16, 32, 64], [3, 5, 10]
AUGMENTATIONS = [name for name in ("none", "shift", "digits_safe", "noise") if name in augment.names()]


def _range(key: str, param: str, default: tuple, valid) -> UrlField:
    """A range slider's (low, high), in the URL as `?param=low,high`."""
    return UrlField(key, param, default, lambda text: tuple(float(v) for v in text.split(",")),
                    lambda v: len(v) == 2 and v[0] <= v[1] and all(valid(x) for x in v))


FIELDS = [
    choice(f"{P}.data", "data", "digits", list(DATA)), choice(f"{P}.model", "model", "mlp", MODELS),
    choice(f"{P}.method", "method", "tpe", tuning.method_names()), number(f"{P}.trials", "trials", 12, 2, 60, int),
    number(f"{P}.epochs", "ep", 4, 1, 30, int), flag(f"{P}.prune", "prune", True),
    items(f"{P}.params", "params", ["lr", "dropout", "batch_size"], search_space.hyperparameter_names()),
    _range(f"{P}.lr", "lr", (1e-4, 0.1), LRS.__contains__),
    _range(f"{P}.wd", "wd", (1e-5, 1e-2), DECAYS.__contains__),
    _range(f"{P}.dropout", "drop", (0.0, 0.5), lambda x: 0 <= x <= 0.9),
    items(f"{P}.batch", "bs", [32, 64, 128], BATCHES, kind=int),
    items(f"{P}.width", "width", [8, 16, 32], WIDTHS, kind=int),
    items(f"{P}.aug", "aug", AUGMENTATIONS[:2], AUGMENTATIONS),
    UrlField(f"{P}.folds", "folds", 5, int, FOLDS.__contains__),
]
_SAME_BUDGET = {"trials": 16, "params": ["lr", "dropout"], "prune": False}  # grid vs random vs TPE, like for like
PRESETS = {"grid": {"method": "grid", **_SAME_BUDGET}, "random": {"method": "random", **_SAME_BUDGET},
           "tpe": {"method": "tpe", **_SAME_BUDGET},
           "lambda_sweep": {"method": "grid", "params": ["weight_decay"], "wd": (1e-6, 0.1), "trials": 6, "ep": 10,
                            "prune": False}}


def _log_range(label: str, options: list, key: str) -> dict:
    # value= only makes it a two-thumb slider: the frame's session-state value wins
    low, high = st.select_slider(label, options, value=(options[0], options[-1]), key=key,
                                 help="Searched on a log scale.")
    return {"low": low, "high": high, "log": True}


def space_ui() -> dict:
    """The searched hyperparameters and their ranges, as a plain-data space."""
    names = st.multiselect("Search over", search_space.hyperparameter_names(), key=f"{P}.params",
                           format_func=lambda n: search_space.hyperparameter_info(n).title,
                           help="The hyperparameters the search varies; the others keep the data set's recipe.")
    widgets = {
        "lr": lambda: _log_range("η range", LRS, f"{P}.lr"),
        "weight_decay": lambda: _log_range("λ range", DECAYS, f"{P}.wd"),
        "dropout": lambda: dict(zip(("low", "high"), st.slider("Dropout range", 0.0, 0.9, (0.0, 0.5), 0.05,
                                                               key=f"{P}.dropout", help="Share of units zeroed."))),
        "batch_size": lambda: {"choices": st.multiselect("Batch sizes", BATCHES, key=f"{P}.batch",
                                                         help="Images per step.")},
        "width": lambda: {"choices": st.multiselect("Widths", WIDTHS, key=f"{P}.width", help="Channels (MLP: units).")},
        "augmentation": lambda: {"choices": st.multiselect("Augmentations", AUGMENTATIONS, key=f"{P}.aug",
                                                           help="Named presets, from none to strong.")},
    }
    space = {}
    for name, column in zip(names, st.columns(max(1, len(names)))):
        with column:
            space[name] = widgets[name]()
    return space


def setup_ui() -> tuple[tuning.SearchPlan, Dataset]:
    a, b, c, d, e, f = st.columns([3, 3, 3, 2, 2, 2])
    name = a.selectbox("Data set", list(DATA), key=f"{P}.data", help="Bundled sets; shapes resized to 16×16.")
    model = b.selectbox("Model", MODELS, key=f"{P}.model", help="Small models keep a trial to a second or two.")
    method = c.selectbox("Method", tuning.method_names(), key=f"{P}.method",
                         format_func=lambda m: tuning.method_info(m).title, help="How the next trial is chosen.")
    trials = d.number_input("Trials", 2, 60, key=f"{P}.trials", help="The budget; for grid, the most grid points.")
    epochs = e.number_input("Epochs", 1, 30, key=f"{P}.epochs", help="Per trial.")
    prune = f.toggle("Prune", key=f"{P}.prune", help="Median pruner: stop a trial whose validation accuracy after an "
                     "epoch is below the median of earlier trials at that epoch (from epoch 2 on).")
    st.caption(f"**{tuning.method_info(method).title}**: {tuning.method_info(method).description}.")
    space = space_ui()
    dataset = load_dataset(name, DATA[name], seed())
    base = TrainConfig.for_data(name, image_size=DATA[name], model=model, epochs=int(epochs), seed=seed())
    key = json.dumps([base.to_dict(), space, method, int(trials), prune], sort_keys=True, default=str)
    plans = st.session_state.setdefault(f"{P}.plans", {})  # the last plan: its probe epoch takes a moment
    if key not in plans:
        with st.spinner("Timing a probe epoch…"):
            plan = tuning.plan_search(dataset, base, space, method=method, trials=int(trials), seed=seed(), prune=prune)
        plans.clear()
        plans[key] = plan
    return plans[key], dataset


def render_best(results: dict) -> None:
    done, plan = results["done"], results["plan"]
    if done is None or done.best is None:
        if done is not None:
            st.info("No trial completed, so there is nothing to retrain.")
        return
    st.subheader("The best configuration, retrained and tested once")
    a, b, c = st.columns(3)
    a.metric("Best validation accuracy", f"{done.best.val_acc:.1%}", help=f"Trial {done.best.number}.")
    b.metric("Test accuracy, retrained", "—" if done.test_acc is None else f"{done.test_acc:.1%}",
             help="The only time the test split is read: an unbiased estimate for the chosen configuration.")
    c.metric("Search time", f"{done.seconds:.0f} s")
    st.write(", ".join(f"**{search_space.hyperparameter_info(k).title}** = {f'{v:.4g}' if isinstance(v, float) else v}"
                       for k, v in done.best.params.items()))
    config = search_space.configure(plan.base, done.best.params)
    st.page_link("app_pages/start/train_lab.py", label="Open the best configuration in Train Lab",
                 icon=":material/model_training:", query_params=train_lab_query(config))
    st.subheader("How far can one validation split be trusted? k-fold cross-validation")
    folds = st.select_slider("Folds k", FOLDS, key=f"{P}.folds", help="Train k times, each fold held out once.")
    cross_validation_ui(f"{P}.cv", config, results["dataset"], folds=folds, trial_seconds=plan.trial_seconds)


st.title("Hyperparameter search")
lesson_link_ui("app_pages/regularization/tuning.py")
st.markdown("Each trial trains the model with one set of hyperparameters and is scored on the **validation** "
            "split; the test split is read once, by the best configuration retrained at the end. Trials run "
            "one after another on the CPU, as one job; running them in parallel needs more machines.")
with url_state(FIELDS, PRESETS):
    search_plan, data = setup_ui()
    found = search_ui(f"{P}.search", search_plan, data)
    if found and found["trials"]:
        trials_ui(found)
        render_best(found)
