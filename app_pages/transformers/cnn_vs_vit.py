"""CNN vs ViT: the same data and training budget, curves side by side, and accuracy against data size."""

import json

import pandas as pd
import streamlit as st

from engine.errors import UserInputError
from engine.training import compare
from engine.training.config import TrainConfig
from ui import jobs
from ui.figures import attention as figs
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.results import accuracy_text, trained_runs_ui
from ui.state import UrlField, choice, items, number, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job, curves_ui

P = "cvv"
DATA = {"digits": None, "shapes": 16, "faces": None}  # name -> image size (None = native); shapes at 16 for speed
FRACTIONS = [0.05, 0.1, 0.25, 0.5, 1.0]
WIDTHS, DEPTHS = [16, 32, 64], [1, 2, 3, 4, 6]
RESULTS_KEY = f"{P}.data_results"  # {experiment key: {model label: {training images: test accuracy}}}


FIELDS = [
    choice(f"{P}.data", "data", "digits", list(DATA)),
    choice(f"{P}.cnn", "cnn", "tinyvgg", ["tinyvgg", "resnet_small"]),
    UrlField(f"{P}.width", "w", 32, int, lambda v: v in WIDTHS),
    UrlField(f"{P}.depth", "depth", 2, int, lambda v: v in DEPTHS),
    number(f"{P}.epochs", "ep", 8, 1, 50, int),
    items(f"{P}.fractions", "fr", [0.1, 0.25, 0.5, 1.0], FRACTIONS, kind=float, most=4),
]
PRESETS = {"shapes": {"data": "shapes", "ep": 6, "fr": [0.1, 0.25, 0.5]},  # all of shapes: over the experiment limit
           "small_data": {"data": "digits", "fr": [0.05, 0.1, 0.25, 1.0]}}


def setup_ui() -> tuple[TrainConfig, TrainConfig]:
    a, b, c, d, e = st.columns(5)
    name = a.selectbox("Data set", list(DATA), key=f"{P}.data", help="Bundled sets; shapes resized to 16×16.")
    cnn = b.selectbox("CNN", ["tinyvgg", "resnet_small"], key=f"{P}.cnn", help="The convolutional contender.")
    width = c.select_slider("ViT width D", WIDTHS, key=f"{P}.width", help="Numbers per token; 4 heads.")
    depth = d.select_slider("ViT depth", DEPTHS, key=f"{P}.depth", help="Transformer encoder blocks.")
    epochs = e.number_input("Epochs", 1, 50, key=f"{P}.epochs", help="The same budget for both models.")
    common = dict(data=name, image_size=DATA[name], optimizer="adamw", lr=3e-3, batch_size=64,
                  epochs=int(epochs), seed=seed())
    return (TrainConfig(model=cnn, **common),
            TrainConfig(model="vit_tiny", model_options=dict(width=width, depth=depth, heads=4), **common))


def render_costs(configs, dataset) -> None:
    rows = {name: {"parameters": cost.params, "MACs per image": cost.macs}
            for name, cost in compare.model_costs(configs, dataset).items()}
    left, right = st.columns([2, 3])
    left.dataframe(pd.DataFrame(rows).T.astype(int), width="stretch")
    left.caption("MACs = multiply-accumulates (FLOPs ≈ 2 × MACs), counting the ViT's QKᵀ and A·V products, "
                 "which grow with the square of the number of patches.")
    right.plotly_chart(figs.cost_bars(rows, presenter=presenter_mode()), width="stretch")


def render_side_by_side(configs, dataset) -> None:
    st.subheader("Trained side by side")
    to_train = [Job(f"{c.model} on {dataset.name} ({c.epochs} ep)", c, dataset) for c in configs]
    pair = trained_runs_ui(to_train, key=f"{P}.train", label="Train both")
    if pair:
        curves_ui({n: run.history for n, run in pair.items()}, key=f"{P}.curves")
        st.dataframe(pd.DataFrame({n: {"test accuracy": accuracy_text(run.history.test_acc),
                                       "seconds": f"{run.history.total_seconds or 0:.1f}"} for n, run in pair.items()}).T)


def _full_estimates(configs, dataset, key: str) -> dict[str, float]:
    """Seconds each model takes on the whole training set, measured once per experiment set-up."""
    cache = st.session_state.setdefault(f"{P}.estimates", {})
    if key not in cache:
        cache[key] = compare.full_estimates(configs, dataset)
    return cache[key]


def _experiment_ui(results: dict):
    """The job's live view: each finished point is stored at once, so Cancel keeps it."""
    def keep(event) -> None:
        if isinstance(event, compare.SizeResult):
            results[event.model][event.images] = event.test_acc
    return jobs.progress_live(f"{P}.data", keep)


def render_data_size(configs, dataset) -> None:
    st.subheader("How much data does each need?")
    fractions = st.multiselect("Fractions of the training set", FRACTIONS, key=f"{P}.fractions", max_selections=4,
                               format_func=lambda f: f"{f:.0%} ({compare.subset_size(dataset, f)} images)",
                               help="Both models train on each subset with the same budget; test accuracy "
                                    "is measured on the full test set.")
    key = json.dumps([dataset.name, [c.to_dict() for c in configs]], sort_keys=True, default=str)
    results = st.session_state.setdefault(RESULTS_KEY, {}).setdefault(key, {c.model: {} for c in configs})
    done = [(model, images) for model, points in results.items() for images in points]
    plan = compare.plan_data_size(configs, dataset, fractions=fractions, done=done,
                                  full_seconds=_full_estimates(configs, dataset, key))
    st.caption(f"{len(plan.trainings)} trainings to run (results so far are kept): about **{plan.seconds:.0f} s**.")
    try:
        compare.check_plan(plan)
        refused = False
    except UserInputError as error:
        st.warning(str(error))
        refused = True
    if not jobs.follow(f"{P}.data", _experiment_ui(results)):
        jobs.outcome_ui(f"{P}.data")
        if jobs.start_button_ui("Run the data-size experiment", key=f"{P}.data_run", type="primary",
                                disabled=not plan.trainings or refused):
            st.session_state.pop(f"{P}.data.progress", None)
            jobs.start(f"{P}.data", compare.data_size_experiment, label="The data-size experiment",
                       estimate_s=plan.seconds, plan=plan, dataset=dataset)
            jobs.follow(f"{P}.data", _experiment_ui(results))
    if any(results.values()):
        st.plotly_chart(figs.accuracy_vs_data(results, presenter=presenter_mode()), width="stretch")
        st.caption("A CNN builds in locality and translation equivariance; a ViT must learn them from data, "
                   "so it usually trails on small training sets and narrows the gap as data grows.")


def render() -> None:
    cnn_config, vit_config = setup_ui()
    configs = [cnn_config, vit_config]
    try:
        dataset = load_dataset(cnn_config.data, cnn_config.image_size, seed())
        render_costs(configs, dataset)
        render_side_by_side(configs, dataset)
        render_data_size(configs, dataset)
    except UserInputError as error:
        st.error(str(error))


st.title("CNN vs ViT")
lesson_link_ui("app_pages/transformers/cnn_vs_vit.py")
st.markdown("The same data, optimizer (AdamW, η = 0.003, batch 64) and number of epochs for a CNN and a "
            "Vision Transformer. Compare their size and cost, their learning curves, and how their test "
            "accuracy grows with the amount of training data.")
with url_state(FIELDS, PRESETS):
    render()
