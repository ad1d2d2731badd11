"""Losses: what each loss of the registry charges per example, how hard it pushes, and what it does to training."""

import numpy as np
import streamlit as st

from engine.training import losses, margins
from engine.training.config import TrainConfig
from ui.figures.optim import lines
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.results import trained_runs_ui
from ui.state import choice, items, number, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job, curves_ui

MODELS = ["mlp", "tinyvgg", "linear"]
DEFAULT_LOSSES = ["cross_entropy", "multiclass_hinge", "mse"]
FIELDS = [number("loss.k", "k", 3, 2, 100, int), number("loss.range", "m", 6.0, 1.0, 20.0),
          number("loss.ls", "ls", 0.1, 0.0, 0.9), number("loss.hm", "hm", 1.0, 0.1, 5.0),
          number("loss.delta", "hd", 1.0, 0.1, 5.0), choice("loss.model", "model", "mlp", MODELS),
          number("loss.epochs", "ep", 5, 1, 30, int), items("loss.chosen", "losses", DEFAULT_LOSSES, losses.names())]


@st.cache_data(max_entries=64)
def _profiles(k: int, span: float, smoothing: float, hinge_margin: float, delta: float) -> dict:
    m = np.linspace(-span, span, 241)
    options = {"cross_entropy": {}, "multiclass_hinge": {"margin": hinge_margin}, "huber": {"delta": delta}}
    out = {losses.info(n).title: margins.margin_profile(n, margins=m, num_classes=k, **options.get(n, {}))
           for n in losses.names()}
    out[f"Cross-entropy, label smoothing {smoothing:g}"] = margins.margin_profile(
        "cross_entropy", margins=m, num_classes=k, label_smoothing=smoothing)
    return out


def options_ui() -> tuple[int, float, float, float, float]:
    a, b, c, d, e = st.columns(5)
    k = a.number_input("Classes K", 2, 100, key="loss.k", help="Scores are (m, 0, …, 0): the correct class "
                       "leads every other by the margin m.")
    span = b.slider("Margin range", 1.0, 20.0, key="loss.range", step=1.0, help="The plot's x axis: −range … +range.")
    ls = c.slider("Label smoothing ε", 0.0, 0.9, key="loss.ls", step=0.05,
                  help="Cross-entropy against (1−ε) on the true class and ε spread over all K.")
    hm = d.slider("Hinge margin Δ", 0.1, 5.0, key="loss.hm", step=0.1,
                  help="The hinge loss is zero beyond this margin.")
    delta = e.slider("Huber δ", 0.1, 5.0, key="loss.delta", step=0.1, help="Where Huber turns from squared to linear.")
    return k, span, ls, hm, delta


def render_curves(k: int, span: float, ls: float, hm: float, delta: float) -> None:
    profiles = _profiles(k, span, ls, hm, delta)
    m = next(iter(profiles.values())).margins
    presenter = presenter_mode()
    left, right = st.columns(2)
    left.plotly_chart(lines(m, {n: p.loss for n, p in profiles.items()}, title="Loss of one example",
                            x_title="margin m = s_y − (largest other score)", y_title="loss", presenter=presenter),
                      width="stretch")
    right.plotly_chart(lines(m, {n: p.gradient for n, p in profiles.items()}, title="Gradient dL/ds_y",
                             x_title="margin m", y_title="dL/ds_y (negative = push s_y up)", presenter=presenter),
                       width="stretch")
    st.caption("MSE, L1 and Huber compare softmax probabilities with the one-hot target: their gradient vanishes "
               "when the example is badly wrong (m ≪ 0), which is why they learn slowly from confident mistakes. "
               "Cross-entropy keeps pushing with slope → −1; the hinge stops pushing once m ≥ Δ.")
    columns = st.columns(2)
    for i, name in enumerate(losses.names()):
        with columns[i % 2]:
            entry = losses.info(name)
            st.markdown(f"**{entry.title}** — last layer: {entry.last_layer}")
            st.latex(entry.formula)


def render_table() -> None:
    st.dataframe(margins.LAST_LAYER_TABLE, hide_index=True, width="stretch")
    st.caption("Softmax + cross-entropy are fused in PyTorch (`nn.CrossEntropyLoss` takes raw scores): the "
               "gradient is simply p − one-hot(y), and no exp overflows.")


def render_training() -> None:
    left, mid, right = st.columns([3, 1, 1])
    chosen = left.multiselect("Losses to compare", losses.names(), key="loss.chosen",
                              format_func=lambda n: losses.info(n).title, help="One training run per loss, "
                              "same model, same initialization, same batches.")
    model = mid.selectbox("Model", MODELS, key="loss.model", help="The same model is trained with every loss.")
    epochs = right.number_input("Epochs", 1, 30, key="loss.epochs", help="Epochs per run.")
    if not chosen:
        st.info("Pick at least one loss.")
        return
    dataset = load_dataset("digits", None, seed())
    jobs = [Job(f"{model} · {losses.info(n).title}", TrainConfig(data="digits", model=model, loss=n, epochs=epochs,
                optimizer="adam", lr=3e-3, seed=seed()), dataset) for n in chosen]
    trained = trained_runs_ui(jobs, key="loss.train", label="Train one model per loss")
    if trained:
        curves_ui({n: r.history for n, r in trained.items()}, key="loss.curves")
        st.caption("Compare the accuracy curves: loss values of different losses are on different scales.")


st.title("Losses")
lesson_link_ui("app_pages/training/losses.py")
st.markdown("A loss turns a network's scores into one number to minimize. Which one you pick decides which "
            "mistakes are expensive — and how strongly the gradient pushes on each of them.")
with url_state(FIELDS):
    settings = options_ui()
    st.header("Loss and gradient against the margin")
    render_curves(*settings)
    st.header("Which last layer goes with which loss")
    render_table()
    st.header("The same model, trained with different losses")
    render_training()
