"""Regularization: one model and data set with none / L1 / L2 / elastic / dropout / weight decay, side by side."""

import pandas as pd
import streamlit as st

from engine.training import capacity
from engine.training import regularizers as reg
from engine.training.config import TrainConfig
from ui import regularization_panels as panels
from ui.figures import regularization as figs
from ui.lessons import lesson_link_ui
from ui.results import trained_runs_ui
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, choice, items, number, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job, curves_ui

P = "reg"
MODELS = ["tinyvgg", "mlp"]
WIDTHS = [8, 16, 32, 64, 128, 256]
SIZES = [5, 10, 15, 30, 60, 0]  # training images per class; 0 = all
STRENGTHS = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 1.0, 3.0]
DROPOUTS = [0.1, 0.2, 0.3, 0.5, 0.7]
TUNED = [n for n in reg.regularizer_names() if n != "none"]  # the ones with a strength control

FIELDS = [
    choice(f"{P}.model", "model", "tinyvgg", MODELS),
    UrlField(f"{P}.width", "w", 32, int, lambda v: v in WIDTHS),
    UrlField(f"{P}.size", "n", 15, int, lambda v: v in SIZES),
    number(f"{P}.epochs", "ep", 30, 1, 100, int),
    items(f"{P}.chosen", "reg", reg.regularizer_names(), reg.regularizer_names()),
    *[UrlField(f"{P}.{n}", n, reg.regularizer_info(n).default, float,
               lambda v, n=n: v in (DROPOUTS if n == "dropout" else STRENGTHS)) for n in TUNED],
    *panels.FIELDS,
]
PRESETS = {
    "small_data": {"n": 15, "ep": 30},
    "sparse_l1": {"reg": ["none", "l1"], "l1": 0.3, "model": "mlp", "w": 128},
    "adamw_vs_l2": {"reg": ["none", "l2", "weight_decay"], "dopt": "adam"},
    "dropout": {"reg": ["none", "dropout"], "dropout": 0.5, "passes": 50},
}


def setup_ui() -> tuple[TrainConfig, int, int | None, dict[str, float | None]]:
    a, b, c, d = st.columns(4)
    model = a.selectbox("Model", MODELS, key=f"{P}.model", help="The same model for every run.")
    width = b.select_slider("Width", WIDTHS, key=f"{P}.width", help="Channels of Tiny VGG, hidden units of the MLP.")
    size = c.select_slider("Training images per class", SIZES, key=f"{P}.size",
                           format_func=lambda n: "all" if n == 0 else str(n),
                           help="Few images make over-fitting, and so regularization, visible.")
    epochs = d.number_input("Epochs", 1, 100, key=f"{P}.epochs", help="The same budget for every run.")
    chosen = st.multiselect("Regularizers to compare", reg.regularizer_names(), key=f"{P}.chosen",
                            format_func=lambda n: reg.regularizer_info(n).title,
                            help="One run each, same initialization and batches.")
    strengths: dict[str, float | None] = {n: None for n in chosen}
    for column, name in zip(st.columns(len(TUNED)), TUNED):
        entry = reg.regularizer_info(name)
        value = column.select_slider(f"{entry.title}: {entry.strength}", DROPOUTS if name == "dropout" else STRENGTHS,
                                     key=f"{P}.{name}", disabled=name not in chosen,
                                     help=f"The strength {entry.strength} of {entry.title} (formula below).")
        if name in chosen:
            strengths[name] = value
    base = TrainConfig(data="digits", model=model, epochs=int(epochs), lr=3e-3, seed=seed())
    return base, width, (size or None), strengths


def _title(name: str, strength: float | None) -> str:
    return reg.regularizer_info(name).title + ("" if strength is None else f" ({strength:g})")


def render_training(base: TrainConfig, width: int, per_class: int | None, chosen: dict[str, float | None]) -> dict:
    if not chosen:
        st.info("Pick at least one regularizer.")
        return {}
    dataset = load_dataset("digits", None, seed())
    (_, config, data), = capacity.capacity_grid(base, dataset, per_class=[per_class], widths=[width])
    jobs = [Job(_title(n, s), reg.regularized(config, n, s), data) for n, s in chosen.items()]
    with st.expander("What each regularizer adds"):
        for n in chosen:
            st.markdown(f"**{reg.regularizer_info(n).title}**")
            st.latex(reg.regularizer_info(n).formula)
    trained = trained_runs_ui(jobs, key=f"{P}.train", label=f"Train {len(jobs)} runs")
    if not trained:
        st.info("Press the button: every run trains as one job, their curves grow together.")
        return {}
    curves_ui({n: r.history for n, r in trained.items()}, key=f"{P}.curves")
    rows = [{"run": n, "best val acc": max(r.history.val_acc), "test acc": r.history.test_acc,
             "gap": capacity.gap_at(r.history).gap, "‖w‖₂": r.history.weight_norm[-1],
             "zeros": r.history.zero_fraction[-1]} for n, r in trained.items() if r.history.epoch]
    st.dataframe(pd.DataFrame(rows).style.format({"best val acc": "{:.1%}", "test acc": "{:.1%}", "gap": "{:+.1%}",
                                                  "‖w‖₂": "{:.2f}", "zeros": "{:.1%}"}),
                 hide_index=True, width="stretch")
    st.caption("Gap = train − validation accuracy at the best validation epoch; ‖w‖₂ and zeros "
               "(|w| < 10⁻⁶) count the weights the penalties act on (not biases or normalization parameters).")
    return trained


def render_histograms(trained: dict) -> None:
    histograms = reg.weight_histograms({n: r.model for n, r in trained.items()})
    st.plotly_chart(figs.weight_histograms(histograms, presenter=presenter_mode()), width="stretch")
    st.caption("One range for all runs. L2 pulls every weight towards 0 in proportion to its size, so the "
               "distribution narrows; the proximal L1 step sets small weights to exactly 0 (the spike) and leaves "
               "a sparse model. With Adam, a penalty in the loss is rescaled per weight by √v̂: a small elastic-net "
               "α can already crush a CNN's weights (and kill its ReLUs).")


def render() -> None:
    base, width, per_class, chosen = setup_ui()
    trained = render_training(base, width, per_class, chosen)
    if trained:
        render_histograms(trained)
    st.header("Dropout on a real layer")
    panels.dropout_ui()
    st.header("L2 in the loss vs decoupled weight decay")
    panels.decay_ui()


st.title("Regularization")
lesson_link_ui("app_pages/regularization/regularization.py")
st.markdown("The same model on the same few images, trained with each regularizer: explicit ones add a term to "
            "the loss (L1, L2, elastic net) or shrink the weights (weight decay); dropout adds noise to the "
            "network itself. Compare the curves, the weights, and what dropout does on a real layer.")
with url_state(FIELDS, PRESETS):
    render()
