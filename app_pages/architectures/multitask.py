"""Multi-task learning: one shared base with two heads on shapes (shape + colour or size), against two single-task nets."""

import json

import pandas as pd
import streamlit as st

from engine.data.subsample import subsample
from engine.training import multitask
from engine.training.config import TrainConfig
from ui.experiment import experiment_ui
from ui.figures import ensembles as figs
from ui.lessons import lesson_link_ui
from ui.results import accuracy_text
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, choice, number, url_state
from ui.train_config import load_dataset

P = "mtl"
IMAGE_SIZE = 16  # shapes at 16×16: three networks train in seconds
MAIN_TASK = "shape"
TASKS = {"size": "size: small or large", "colour": "colour: the shape's red, green or blue family"}
PER_CLASS, WIDTHS = [25, 50, 100, 200, 400], [8, 16, 32]
RESULTS_KEY = f"{P}.results"  # {set-up key: multitask.Record}
KEPT_SETUPS = 8

FIELDS = [
    choice(f"{P}.task", "task", "size", list(TASKS)),
    number(f"{P}.l1", "l1", 1.0, 0.0, 2.0),
    number(f"{P}.l2", "l2", 1.0, 0.0, 2.0),
    number(f"{P}.epochs", "ep", 6, 1, 20, int),
    UrlField(f"{P}.per_class", "pc", 200, int, lambda v: v in PER_CLASS),
    UrlField(f"{P}.width", "w", 16, int, lambda v: v in WIDTHS),
]
PRESETS = {"size": {"task": "size"}, "colour": {"task": "colour"}, "colour_light": {"task": "colour", "l2": 0.2},
           "small_data": {"task": "size", "pc": 50, "ep": 8}, "second_only": {"task": "size", "l1": 0.0}}


def setup_ui():
    a, b, c, d, e, f = st.columns([2, 1, 1, 1, 1, 1])
    task = a.selectbox("Second task", list(TASKS), key=f"{P}.task", format_func=TASKS.get,
                       help="A second label of every shape, drawn independently of the shape.")
    l1 = b.slider("λ₁ (shape)", 0.0, 2.0, step=0.1, key=f"{P}.l1", help="Weight of the shape head's loss.")
    l2 = c.slider(f"λ₂ ({task})", 0.0, 2.0, step=0.1, key=f"{P}.l2", help="Weight of the second head's loss.")
    epochs = d.number_input("Epochs", 1, 20, key=f"{P}.epochs", help="The same budget for all three networks.")
    per_class = e.select_slider("Images per shape", PER_CLASS, key=f"{P}.per_class",
                                help="Training images per shape class (8 classes).")
    width = f.select_slider("Base width", WIDTHS, key=f"{P}.width", help="Channels of tinyvgg's two conv blocks.")
    if l1 == 0 and l2 == 0:
        st.info("Both weights are 0, so L = 0 and nothing would train: give λ₁ or λ₂ a weight above 0.")
        return None
    dataset = subsample(load_dataset("shapes", IMAGE_SIZE, seed()), per_class=int(per_class), seed=seed())
    config = TrainConfig.for_data("shapes", image_size=IMAGE_SIZE, epochs=int(epochs), seed=seed(),
                                  model_options={"width": int(width)})
    nets = multitask.plan(config, dataset, labels=task, main_weight=float(l1), head_weight=float(l2),
                          main_task=MAIN_TASK)
    return nets, task


def render_training(nets) -> multitask.Record:
    key = json.dumps([[n.name, n.config.to_dict(), len(n.dataset.train)] for n in nets], sort_keys=True, default=str)
    store = st.session_state.setdefault(RESULTS_KEY, {})
    while len(store) >= KEPT_SETUPS and key not in store:
        store.pop(next(iter(store)))
    record = store.setdefault(key, multitask.Record())

    def keep(plan_key: str, event) -> None:
        store.setdefault(plan_key, multitask.Record()).add(event)

    experiment_ui(f"{P}.job", multitask.train_multitask, label="Training the three networks",
                  button="Train the three networks", needed=not record.test_acc, plan_key=key,
                  estimate=lambda: multitask.estimate_seconds(nets), keep=keep, nets=nets)
    return record


def render_loss(record: multitask.Record, task: str) -> None:
    left, right = st.columns([3, 2])
    with right:
        st.latex(rf"L = \lambda_1\, L_{{\text{{{MAIN_TASK}}}}} + \lambda_2\, L_{{\text{{{task}}}}}")
        st.latex(r"L_t = -\frac{1}{B}\sum_{i=1}^{B} \log p_t(y_{t,i} \mid x_i)")
        st.caption("Both heads read the same features of the shared base; the gradient of L reaching the base is "
                   "λ₁ times the shape head's plus λ₂ times the second head's. λ₁ = 0 makes the net a single-task "
                   f"{task} net with an untrained shape head.")
    weighted = record.weighted.get(multitask.MULTI)
    if weighted:
        names = {MAIN_TASK: f"λ₁ L_{MAIN_TASK}", task: f"λ₂ L_{task}"}
        left.plotly_chart(figs.loss_terms({names[t]: v for t, v in weighted.items()}, presenter=presenter_mode()),
                          width="stretch")


def render_results(record: multitask.Record, task: str) -> None:
    presenter = presenter_mode()
    columns = st.columns(2)
    for column, name in zip(columns, (MAIN_TASK, task)):
        if record.curves(name):
            column.plotly_chart(figs.task_curves(record.curves(name), task=name, presenter=presenter), width="stretch")
    if record.test_acc:
        table = pd.DataFrame([{"network": net, f"{MAIN_TASK} test acc": accuracy_text(accs.get(MAIN_TASK)),
                               f"{task} test acc": accuracy_text(accs.get(task)), "parameters": record.params[net],
                               "seconds": record.seconds[net]} for net, accs in record.test_acc.items()])
        st.dataframe(table, hide_index=True, column_config={
            "parameters": st.column_config.NumberColumn(format="localized"),
            "seconds": st.column_config.NumberColumn(format="%.1f")})
        st.caption("One multi-task net answers both questions with one base (about half the parameters and compute "
                   "of two single-task nets). Whether sharing helps a task depends on the tasks: colour wants "
                   "features a shape classifier learns to ignore, so the two compete for a small base.")


def render() -> None:
    setup = setup_ui()
    if setup is None:
        return
    nets, task = setup
    record = render_training(nets)
    render_loss(record, task)
    if record.val_acc:
        render_results(record, task)
    else:
        st.info("The curves appear here once the three networks are trained: the multi-task net and one "
                "single-task net per task, with the same architecture, seed and epochs.")


st.title("Multi-task learning")
lesson_link_ui("app_pages/architectures/multitask.py")
st.markdown("One network, two questions: a shared convolutional base feeds a **shape** head and a second head "
            "(the shape's **size** or **colour**), trained on the weighted sum of both losses. It is compared "
            "with two single-task networks of the same architecture, each trained on one question.")
with url_state(FIELDS, PRESETS):
    render()
