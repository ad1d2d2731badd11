"""Overfitting: train vs validation curves and their gap, against capacity, data and epochs; early stopping."""

import pandas as pd
import streamlit as st

from engine.training import capacity
from engine.training.config import TrainConfig
from ui.figures import regularization as figs
from ui.lessons import lesson_link_ui
from ui.results import accuracy_text, trained_runs_ui
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, choice, items, number, run_dataset, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job

P = "ovf"
DATA = {"digits": None, "shapes": 16}  # name -> image size (None = native); shapes at 16×16 for speed
MODELS = ["mlp", "tinyvgg"]
WIDTHS = [2, 4, 8, 16, 32, 64, 128, 256, 512]
MAX_CNN_WIDTH = 256  # tinyvgg's limit
ALL = 0  # the size choice meaning "every training image"
SIZES = [5, 10, 20, 50, 100, ALL]  # training images per class
GRID_WIDTHS = [4, 16, 64, 256]

FIELDS = [
    choice(f"{P}.data", "data", "digits", list(DATA)),
    choice(f"{P}.model", "model", "mlp", MODELS),
    UrlField(f"{P}.width", "w", 512, int, lambda v: v in WIDTHS),
    UrlField(f"{P}.size", "n", 5, int, lambda v: v in SIZES),
    number(f"{P}.epochs", "ep", 60, 1, 100, int),
    number(f"{P}.patience", "pat", 0, 0, 20, int),
    items(f"{P}.grid_sizes", "gn", [5, 20, ALL], SIZES, kind=int, most=3),
    items(f"{P}.grid_widths", "gw", [16, 256], GRID_WIDTHS, kind=int, most=3),
]
PRESETS = {
    "underfit": {"model": "mlp", "w": 4, "n": ALL, "ep": 20, "pat": 0},
    "good": {"model": "tinyvgg", "w": 16, "n": ALL, "ep": 30, "pat": 5},
    "overfit": {"model": "mlp", "w": 512, "n": 5, "ep": 60, "pat": 0},
    "early_stopping": {"model": "tinyvgg", "w": 32, "n": 10, "ep": 60, "pat": 5},
}


def _size_label(n: int) -> str:
    return "all" if n == ALL else f"{n} per class"


def setup_ui() -> tuple[TrainConfig, int, int | None]:
    a, b, c, d, e, f = st.columns(6)
    name = a.selectbox("Data set", list(DATA), key=f"{P}.data", help="Bundled sets; shapes resized to 16×16.")
    model = b.selectbox("Model", MODELS, key=f"{P}.model", help="An MLP (one hidden layer) or Tiny VGG.")
    widths = WIDTHS if model == "mlp" else [w for w in WIDTHS if w <= MAX_CNN_WIDTH]
    if st.session_state[f"{P}.width"] not in widths:
        st.session_state[f"{P}.width"] = widths[-1]  # Tiny VGG stops at 256 channels per layer
    width = c.select_slider("Capacity (width)", widths, key=f"{P}.width",
                            help="Hidden units of the MLP, channels of each Tiny VGG conv layer.")
    size = d.select_slider("Training images", SIZES, key=f"{P}.size", format_func=_size_label,
                           help="Per class; validation and test stay whole.")
    epochs = e.number_input("Epochs", 1, 100, key=f"{P}.epochs", help="More epochs: more time to memorize.")
    patience = f.number_input("Early stopping", 0, 20, key=f"{P}.patience",
                              help="Stop after this many epochs without a better validation loss and restore the "
                                   "best weights; 0 = off.")
    config = TrainConfig.for_data(name, image_size=DATA[name], model=model, epochs=int(epochs),
                                  patience=int(patience), seed=seed())  # shapes' recipe warms up
    return config, width, (size or None)


def render_run(base: TrainConfig, width: int, per_class: int | None, dataset) -> None:
    (name, config, data), = capacity.capacity_grid(base, dataset, per_class=[per_class], widths=[width])
    trained = trained_runs_ui([Job(name, config, data)], key=f"{P}.run", label="Train")
    if not trained:
        st.info("Press **Train**: one run with these settings. The lesson's links open the presets "
                "`?preset=underfit`, `good`, `overfit` and `early_stopping`.")
        return
    name, run = next(iter(trained.items()))
    history = run.history
    gap = capacity.gap_at(history)
    cols = st.columns(4)
    cols[0].metric("Train accuracy", f"{gap.train_acc:.1%}", help=f"At epoch {gap.epoch}, the best validation loss.")
    cols[1].metric("Validation accuracy", f"{gap.val_acc:.1%}")
    cols[2].metric("Gap", f"{gap.gap:+.1%}", help="Train minus validation accuracy.")
    cols[3].metric("Test accuracy", accuracy_text(history.test_acc), help="Measured once, at the end.")
    st.markdown(f"**{name}** — {gap.verdict}.")
    presenter = presenter_mode()
    left, right = st.columns(2)
    patience = run.config.get("patience", 0)
    left.plotly_chart(figs.gap_curves(history, "acc", patience=patience, presenter=presenter), width="stretch")
    right.plotly_chart(figs.gap_curves(history, "loss", patience=patience, presenter=presenter), width="stretch")
    st.caption("Over-fitting shows first in the loss: the validation loss turns up while the training loss goes on "
               "down. Early stopping keeps the weights of the best validation epoch — validation data picks the "
               "epoch, so only the test set, touched once, measures the result.")
    st.plotly_chart(figs.weight_norms({name: history}, presenter=presenter), width="stretch")
    st.caption("Without a penalty, the weights keep growing as the model fits its training images ever more "
               "confidently: larger weights, sharper (more over-confident) scores.")


def render_grid(base: TrainConfig, dataset) -> None:
    st.header("Capacity and data, side by side")
    left, right = st.columns(2)
    sizes = left.multiselect("Training images per class", SIZES, key=f"{P}.grid_sizes", max_selections=3,
                             format_func=_size_label, help="Each size is trained at each width.")
    widths = right.multiselect("Widths", GRID_WIDTHS, key=f"{P}.grid_widths", max_selections=3,
                               help="Capacity of the same model.")
    if not sizes or not widths:
        st.info("Pick at least one size and one width.")
        return
    grid = capacity.capacity_grid(base, dataset, per_class=[n or None for n in sizes], widths=widths)
    trained = trained_runs_ui([Job(*run) for run in grid], key=f"{P}.grid", label=f"Train {len(grid)} runs")
    if not trained:
        return
    points: dict[str, dict[int, tuple[float, float]]] = {}
    rows = []
    for name, run in trained.items():
        gap, config = capacity.gap_at(run.history), TrainConfig.from_dict(run.config)
        images = len(run_dataset(name).train)
        points.setdefault(f"{config.model} w{capacity.width_of(config)}", {})[images] = (gap.train_acc, gap.val_acc)
        rows.append({"run": name, "train images": images, "train acc": gap.train_acc, "val acc": gap.val_acc,
                     "gap": gap.gap})
    st.plotly_chart(figs.gap_grid(points, presenter=presenter_mode()), width="stretch")
    st.dataframe(pd.DataFrame(rows).style.format({c: "{:.1%}" for c in ("train acc", "val acc", "gap")}),
                 hide_index=True, width="stretch")
    st.caption("More data closes the gap. More capacity fits the training images sooner (train accuracy → 100 %), "
               "but a wider network does not always generalize worse — over-parametrized networks often do "
               "better than their size suggests (Zhang et al. 2017). Accuracies at each run's best validation loss.")


def render() -> None:
    config, width, per_class = setup_ui()
    dataset = load_dataset(config.data, config.image_size, seed())
    render_run(config, width, per_class, dataset)
    render_grid(config, dataset)


st.title("Overfitting")
lesson_link_ui("app_pages/regularization/overfitting.py")
st.markdown("A model fits its training images; what counts is how it does on images it has not seen. Watch the "
            "**gap** between the training and validation curves as you change the model's capacity, the "
            "amount of training data and the number of epochs.")
with url_state(FIELDS, PRESETS):
    render()
