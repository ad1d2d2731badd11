"""Data pitfalls: class imbalance (per-class and balanced accuracy, class weights) and test images leaking in."""

import dataclasses
import hashlib
import json

import pandas as pd
import streamlit as st

from engine.training import capacity, pitfalls
from engine.training.config import TrainConfig
from ui.figures import regularization as figs
from ui.lessons import lesson_link_ui
from ui.results import trained_runs_ui
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, choice, number, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job

P = "pit"
DATA = {"digits": None, "shapes": 16}  # name -> image size (None = native)
RATIOS = [1, 2, 5, 10, 20, 50, 100, 1000]
TOPS = [10, 20, 50, 100, 200, 500]  # training images of the largest class
SIZES = [5, 10, 20, 50, 0]  # training images per class before the leak; 0 = all

FIELDS = [
    choice(f"{P}.data", "data", "digits", list(DATA)),
    UrlField(f"{P}.ratio", "ratio", 20, int, lambda v: v in RATIOS),
    UrlField(f"{P}.top", "top", 100, int, lambda v: v in TOPS),
    number(f"{P}.epochs", "ep", 15, 1, 60, int),
    number(f"{P}.leak", "leak", 0.5, 0.1, 0.9),
    UrlField(f"{P}.size", "n", 10, int, lambda v: v in SIZES),
]
PRESETS = {"long_tail": {"ratio": 50, "top": 100}, "balanced": {"ratio": 1, "top": 100},
           "empty_class": {"ratio": 1000, "top": 500}, "leak": {"leak": 0.5, "n": 10}}


def _percent(frame: pd.DataFrame, columns: list[str]):
    return frame.style.format({c: "{:.1%}" for c in columns})


def render_imbalance(config: TrainConfig, dataset) -> None:
    st.header("Class imbalance")
    a, b = st.columns(2)
    ratio = a.select_slider("Imbalance ratio (first ÷ last class)", RATIOS, key=f"{P}.ratio",
                            help="Class c keeps n·r^(−c/(K−1)) training images: a long tail.")
    top = b.select_slider("Images of the largest class", TOPS, key=f"{P}.top",
                          help="The first class keeps this many; the others fewer.")
    plan = pitfalls.imbalance_plan(dataset, per_class=top, ratio=ratio)
    for note in plan.notes:
        st.warning(note)
    presenter = presenter_mode()
    st.plotly_chart(figs.class_bars({"training images": plan.counts}, dataset.class_names, percent=False,
                                    title=f"Training images per class ({sum(plan.counts)} in all)",
                                    presenter=presenter), width="stretch")
    left, right = st.columns(2)
    left.latex(r"w_c = \frac{n}{K\, n_c} \quad\text{(class weights in the loss)}")
    right.latex(r"\text{balanced accuracy} = \frac{1}{K}\sum_c \frac{\text{correct}_c}{n_c}")
    runs = pitfalls.imbalance_runs(config, dataset, plan)
    trained = trained_runs_ui([Job(*run) for run in runs], key=f"{P}.imbalance", label="Train without and with "
                              "class weights")
    if not trained:
        return
    scores = {name: pitfalls.class_scores(run.model, dataset.test, dataset.num_classes)
              for name, run in trained.items()}
    table = pd.DataFrame([{"run": n, "accuracy": s.accuracy, "balanced accuracy": s.balanced_accuracy,
                           "worst class": min(s.per_class)} for n, s in scores.items()])
    st.dataframe(_percent(table, ["accuracy", "balanced accuracy", "worst class"]), hide_index=True, width="stretch")
    st.plotly_chart(figs.class_bars({n: s.per_class for n, s in scores.items()}, dataset.class_names,
                                    title="Test accuracy per class (recall)", presenter=presenter), width="stretch")
    st.caption("The test split keeps every class (stratified), so the rare classes' misses show. On a test set "
               "as skewed as the training set, plain accuracy would hide them: the balanced accuracy would not. "
               "Class weights make each class count the same in the loss; more images of the rare classes (or "
               "augmenting them) helps more.")


def render_leakage(config: TrainConfig, dataset) -> None:
    st.header("Data leakage")
    a, b = st.columns(2)
    fraction = a.slider("Share of the test images leaked into training", 0.1, 0.9, step=0.1, key=f"{P}.leak",
                        help="Copied into the training split; the rest of the test split stays clean.")
    size = b.select_slider("Training images per class (before the leak)", SIZES, key=f"{P}.size",
                           format_func=lambda n: "all" if n == 0 else str(n),
                           help="A small training set makes memorized test images count for more.")
    leak = pitfalls.leakage(capacity.sized(dataset, size or None, seed=config.seed), fraction=fraction,
                            seed=config.seed)
    st.caption(f"{len(leak.clean.train)} clean training images; {len(leak.leaked)} test images leaked; "
               f"{len(leak.held_out)} held-out test images that no model sees.")
    setup = json.dumps([dataset.name, size, fraction, config.seed])  # the leaked images depend on these
    key = f"{P}.leakage.{hashlib.sha256(setup.encode()).hexdigest()[:8]}"
    config = dataclasses.replace(config, batch_size=min(config.batch_size, len(leak.clean.train)))
    jobs = [Job(f"clean · {size or 'all'}/class", config, leak.clean),
            Job(f"leaky {fraction:.0%} · {size or 'all'}/class", config, leak.leaky)]
    trained = trained_runs_ui(jobs, key=key, label="Train with and without the leak")
    if not trained:
        return
    parts = {"leaked test images": leak.leaked, "held-out test images (honest)": leak.held_out,
             "whole test split (as reported)": leak.test}
    scores = {name: {part: pitfalls.class_scores(run.model, split, dataset.num_classes).accuracy
                     for part, split in parts.items()} for name, run in trained.items()}
    st.plotly_chart(figs.leakage_bars(scores, presenter=presenter_mode()), width="stretch")
    leaky = list(scores.values())[-1]
    st.markdown(f"The leaky model reports **{leaky['whole test split (as reported)']:.1%}** on the test split, "
                f"but on images it never saw it scores **{leaky['held-out test images (honest)']:.1%}**. "
                "Only a part of the data that no step of training, tuning or model selection has touched gives "
                "an honest estimate — and near-duplicates (the same patient, the same scene) must go to the "
                "same split.")


def render() -> None:
    left, right, _ = st.columns(3)
    name = left.selectbox("Data set", list(DATA), key=f"{P}.data", help="Bundled sets; shapes resized to 16×16.")
    epochs = right.number_input("Epochs", 1, 60, key=f"{P}.epochs", help="For every run on this page.")
    config = TrainConfig.for_data(name, image_size=DATA[name], epochs=int(epochs), seed=seed())
    dataset = load_dataset(name, DATA[name], seed())
    render_imbalance(config, dataset)
    render_leakage(config, dataset)


st.title("Data pitfalls")
lesson_link_ui("app_pages/regularization/data_pitfalls.py")
st.markdown("Two ways a good-looking number can mislead: a class with few training images that the model "
            "quietly gives up on, and test images that leaked into training.")
with url_state(FIELDS, PRESETS):
    render()
