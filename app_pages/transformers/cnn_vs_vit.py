"""CNN vs ViT: the same data and training budget, curves side by side, and accuracy against data size."""

import dataclasses
import json

import pandas as pd
import streamlit as st

from engine import models
from engine.data.sets import Split
from engine.errors import UserInputError
from engine.limits import MAX_TRAIN_SECONDS
from engine.training.trainer import TrainConfig, Trainer
from ui.figures import attention as figs
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, choice, init_from_url, number, runs, show_problems, write_to_url
from ui.train_config import load_dataset
from ui.train_panel import Job, curves_ui, train_panel_ui

P = "cvv"
DATA = {"digits": None, "shapes": 16, "faces": None}  # name -> image size (None = native); shapes at 16 for speed
FRACTIONS = [0.05, 0.1, 0.25, 0.5, 1.0]
WIDTHS, DEPTHS = [16, 32, 64], [1, 2, 3, 4, 6]
RESULTS_KEY = f"{P}.data_results"  # {experiment key: {model label: {training images: test accuracy}}}


def _fractions(text: str) -> list[float]:
    return [float(v) for v in text.strip("[]").split(",") if v.strip()]


FIELDS = [
    choice(f"{P}.data", "data", "digits", list(DATA)),
    choice(f"{P}.cnn", "cnn", "tinyvgg", ["tinyvgg", "resnet_small"]),
    UrlField(f"{P}.width", "w", 32, int, lambda v: v in WIDTHS),
    UrlField(f"{P}.depth", "depth", 2, int, lambda v: v in DEPTHS),
    number(f"{P}.epochs", "ep", 8, 1, 50, int),
    UrlField(f"{P}.fractions", "fr", [0.1, 0.25, 0.5, 1.0], _fractions,
             lambda v: 1 <= len(v) <= 4 and all(f in FRACTIONS for f in v)),
]
PRESETS = {"shapes": {"data": "shapes", "ep": 6}, "small_data": {"data": "digits", "fr": [0.05, 0.1, 0.25, 1.0]}}


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
    rows = {}
    for config in configs:
        model = models.build(config.model, in_channels=dataset.channels, num_classes=dataset.num_classes,
                             image_size=dataset.image_size, **config.model_options)
        shape = (dataset.channels, dataset.image_size, dataset.image_size)
        macs = sum(r.macs for r in models.summary(model, shape)) + models.vit.attention_macs(model)
        rows[config.model] = {"parameters": models.count_params(model), "MACs per image": macs}
    left, right = st.columns([2, 3])
    left.dataframe(pd.DataFrame(rows).T.astype(int), width="stretch")
    left.caption("MACs = multiply-accumulates (FLOPs ≈ 2 × MACs), counting the ViT's QKᵀ and A·V products, "
                 "which grow with the square of the number of patches.")
    right.plotly_chart(figs.cost_bars(rows, presenter=presenter_mode()), width="stretch")


def render_side_by_side(configs, dataset) -> None:
    st.subheader("Trained side by side")
    jobs = [Job(f"{c.model} on {dataset.name} ({c.epochs} ep)", c, dataset) for c in configs]
    trained = train_panel_ui(jobs, key=f"{P}.train", label="Train both")
    if trained:
        st.session_state[f"{P}.pair"] = trained
    pair = [n for n in st.session_state.get(f"{P}.pair", []) if n in runs()]
    if pair:
        curves_ui({n: runs()[n].history for n in pair}, key=f"{P}.curves")
        st.dataframe(pd.DataFrame({n: {"test accuracy": f"{runs()[n].history.test_acc or 0:.1%}",
                                       "seconds": f"{runs()[n].history.total_seconds or 0:.1f}"} for n in pair}).T)


def _subset(dataset, fraction: float):
    """The first `fraction` of the training split; it is already in random order, so a random subset."""
    n = _n(dataset, fraction)
    return dataclasses.replace(dataset, train=Split(dataset.train.x[:n], dataset.train.y[:n]))


def render_data_size(configs, dataset) -> None:
    st.subheader("How much data does each need?")
    fractions = st.multiselect("Fractions of the training set", FRACTIONS, key=f"{P}.fractions", max_selections=4,
                               format_func=lambda f: f"{f:.0%} ({round(f * len(dataset.train))} images)",
                               help="Both models train on each subset with the same budget; test accuracy "
                                    "is measured on the full test set.")
    key = json.dumps([dataset.name, [c.to_dict() for c in configs]], sort_keys=True, default=str)
    results = st.session_state.setdefault(RESULTS_KEY, {}).setdefault(key, {c.model: {} for c in configs})
    todo = [(c, f) for f in sorted(fractions) for c in configs if _n(dataset, f) not in results[c.model]]
    try:
        full = _full_estimates(configs, dataset, key)
    except UserInputError as error:
        st.error(str(error))
        return
    estimate = sum(full[c.model] * f for c, f in todo)  # training time scales with the images
    st.caption(f"{len(todo)} trainings to run (results so far are kept): about **{estimate:.0f} s**.")
    if st.session_state.get(f"{P}.data_cancel"):
        st.info("Experiment cancelled; the finished points are kept.")
    if st.button("Run the data-size experiment", key=f"{P}.data_run", type="primary",
                 disabled=not todo or estimate > MAX_TRAIN_SECONDS):
        st.button("Cancel", key=f"{P}.data_cancel", help="Stop after the current training; points so far stay.")
        bar = st.progress(0.0, text="Starting…")
        for i, (config, fraction) in enumerate(todo):
            bar.progress(i / len(todo), text=f"{config.model} on {fraction:.0%} of the training set")
            n = _n(dataset, fraction)
            small = dataclasses.replace(config, batch_size=min(config.batch_size, n))  # 5 % of digits is 63 images
            results[config.model][n] = Trainer(small, _subset(dataset, fraction)).fit().history.test_acc
        bar.progress(1.0, text="Done.")
    if any(results.values()):
        st.plotly_chart(figs.accuracy_vs_data(results, presenter=presenter_mode()), width="stretch")
        st.caption("A CNN builds in locality and translation equivariance; a ViT must learn them from data, "
                   "so it usually trails on small training sets and narrows the gap as data grows.")


def _full_estimates(configs, dataset, key: str) -> dict[str, float]:
    """Seconds each model takes on the whole training set, measured once per experiment set-up."""
    cache = st.session_state.setdefault(f"{P}.estimates", {})
    if key not in cache:
        cache[key] = {c.model: Trainer(c, dataset).estimate_seconds() for c in configs}
    return cache[key]


def _n(dataset, fraction: float) -> int:
    return max(dataset.num_classes, round(fraction * len(dataset.train)))


def render() -> None:
    cnn_config, vit_config = setup_ui()
    try:
        dataset = load_dataset(cnn_config.data, cnn_config.image_size, seed())
        configs = [cnn_config, vit_config]
        render_costs(configs, dataset)
    except UserInputError as error:
        st.error(str(error))
        return
    render_side_by_side(configs, dataset)
    render_data_size(configs, dataset)


st.title("CNN vs ViT")
lesson_link_ui("app_pages/transformers/cnn_vs_vit.py")
st.markdown("The same data, optimizer (AdamW, η = 0.003, batch 64) and number of epochs for a CNN and a "
            "Vision Transformer. Compare their size and cost, their learning curves, and how their test "
            "accuracy grows with the amount of training data.")
show_problems(init_from_url(FIELDS, PRESETS))
render()
write_to_url(FIELDS)
