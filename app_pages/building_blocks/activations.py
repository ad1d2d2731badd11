"""Activation functions: curves and derivatives, dead ReLUs at a high learning rate, and activations trained side by side."""

import streamlit as st

from engine import data
from engine.layers import activations
from engine.training import gradient_flow as gflow
from engine.training.config import TrainConfig
from ui.figures.activations import activation_curves, dead_units
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.results import trained_runs_ui
from ui.state import choice, items, number, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job, curves_ui

MODELS = ["mlp", "tinyvgg", "lenet5"]
HIDDEN = (100, 100)  # the dead-unit MLP: 64-100-100-10 on digits


FIELDS = [
    items("act.show", "show", ["sigmoid", "tanh", "relu", "leaky_relu"], activations.names()),
    number("act.range", "range", 5.0, 1.0, 20.0),
    number("act.lr_normal", "lr_lo", 0.003, 1e-5, 1.0), number("act.lr_high", "lr_hi", 0.05, 1e-5, 1.0),
    number("act.dead_epochs", "dead_ep", 5, 1, 30, int),
    items("act.race", "race", ["sigmoid", "relu", "gelu"], activations.names(), most=4),
    choice("act.model", "model", "mlp", MODELS),
    choice("act.data", "data", "digits", data.names()), number("act.lr", "lr", 0.003, 1e-5, 1.0),
    number("act.epochs", "ep", 8, 1, 50, int),
]
PRESETS = {"dead_relu": {"lr_hi": 0.05, "dead_ep": 5},
           "smooth": {"show": ["relu", "gelu", "silu", "softplus"]},
           "saturating": {"show": ["sigmoid", "tanh"], "range": 10.0},
           "race_cnn": {"race": ["sigmoid", "tanh", "relu", "gelu"], "model": "tinyvgg", "ep": 6}}


def render_curves() -> None:
    left, right = st.columns([3, 1])
    chosen = left.multiselect("Activations", activations.names(), key="act.show",
                              format_func=lambda n: activations.info(n).title,
                              help="Each is drawn with its derivative, computed by autograd.")
    span = right.slider("x range ±", 1.0, 20.0, step=1.0, key="act.range",
                        help="How far to either side of 0 to draw: saturation shows far out.")
    if not chosen:
        st.info("Pick at least one activation.")
        return
    curves = {activations.info(name).title: activations.sample(name, span=span) for name in chosen}
    plot, formulas = st.columns([5, 4])
    plot.plotly_chart(activation_curves(curves, presenter=presenter_mode()), width="stretch")
    with formulas:
        for name in chosen:
            entry = activations.info(name)
            st.markdown(f"**{entry.title}** — {entry.note}")
            st.latex(rf"\begin{{aligned}} f(x) &= {entry.formula} \\ f'(x) &= {entry.derivative_formula} \end{{aligned}}")


def render_dead_relu() -> None:
    st.markdown("The same MLP (64-100-100-10, Adam) on digits, three ways. A large step can push a ReLU's "
                "weights so that its input is negative for **every** image: it outputs 0, its gradient is 0, "
                "and it never recovers. Leaky ReLU keeps a slope of 0.01 there.")
    a, b, c = st.columns(3)
    low = a.number_input("Normal learning rate", 1e-5, 1.0, format="%.4g", key="act.lr_normal",
                         help="Adam's usual 0.001–0.003.")
    high = b.number_input("High learning rate", 1e-5, 1.0, format="%.4g", key="act.lr_high",
                          help="About 20× the normal one kills many ReLUs.")
    epochs = c.number_input("Epochs", 1, 30, key="act.dead_epochs", help="Passes over the training images.")
    dataset = load_dataset("digits", None, seed())
    jobs = [Job(f"{title} · lr {lr:g}", TrainConfig(data="digits", model="mlp", optimizer="adam", lr=float(lr),
                                                     epochs=int(epochs), batch_size=32, seed=seed(), snapshots=True,
                                                     model_options={"hidden": HIDDEN, "activation": act}), dataset)
            for title, act, lr in (("ReLU", "relu", low), ("ReLU", "relu", high), ("Leaky ReLU", "leaky_relu", high))]
    shown = trained_runs_ui(jobs, key="act.dead", label="Train the three")
    if not shown:
        return
    dead = {n: gflow.dead_fraction_history(r.model, r.history.snapshots, dataset.train.x)
            for n, r in shown.items()}
    st.plotly_chart(dead_units(dead, presenter=presenter_mode()), width="stretch", key="act.dead_plot")
    st.caption("Dead = the unit outputs exactly 0 on all training images, so no gradient reaches its weights.")
    curves_ui({n: r.history for n, r in shown.items()}, key="act.dead_curves")


def render_race() -> None:
    left, mid, right = st.columns(3)
    chosen = left.multiselect("Activations to compare (2–4)", activations.names(), key="act.race", max_selections=4,
                              format_func=lambda n: activations.info(n).title,
                              help="Same model, data, seed and optimizer; only the activation changes.")
    model = mid.selectbox("Model", MODELS, key="act.model", help="An MLP or a small CNN.")
    name = right.selectbox("Data set", data.names(), key="act.data", format_func=lambda n: data.info(n).title,
                           help="Bundled sets work offline.")
    a, b = st.columns(2)
    lr = a.number_input("Learning rate (Adam)", 1e-5, 1.0, format="%.4g", key="act.lr", help="Shared by all runs.")
    epochs = b.number_input("Epochs", 1, 50, key="act.epochs", help="Passes over the training images.")
    if len(chosen) < 2:
        st.info("Pick 2 to 4 activations to compare.")
        return
    dataset = load_dataset(name, None, seed())
    jobs = [Job(f"{model} · {activations.info(act).title}",
                TrainConfig(data=name, model=model, optimizer="adam", lr=float(lr), epochs=int(epochs), seed=seed(),
                            model_options={"activation": act}), dataset) for act in chosen]
    trained = trained_runs_ui(jobs, key="act.race", label=f"Train {len(jobs)} side by side")
    shown = {n: r.history for n, r in trained.items()}
    if shown:
        curves_ui(shown, key="act.race_curves")
        st.dataframe({"run": list(shown), "test accuracy": [h.test_acc for h in shown.values()]}, hide_index=True)


st.title("Activation functions")
lesson_link_ui("app_pages/building_blocks/activations.py")
st.markdown("Without a non-linearity, stacked layers collapse into one linear map. Which one you pick decides "
            "how gradients flow back: its **derivative** multiplies every gradient that passes through it.")
with url_state(FIELDS, PRESETS):
    render_curves()
    st.header("Dead ReLUs")
    render_dead_relu()
    st.header("Side by side")
    render_race()
