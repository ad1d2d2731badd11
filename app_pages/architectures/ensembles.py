"""Ensembles: k networks on one data split, their soft and hard votes, accuracy against k, where they disagree."""

import json

import streamlit as st
import torch

from engine.data.subsample import subsample
from engine.training import ensembles
from engine.training.config import TrainConfig
from ui.experiment import experiment_ui
from ui.figures import ensembles as figs
from ui.images import to_display
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, items, number, url_state
from ui.train_config import load_dataset

P = "ens"
DATA = {"digits": None, "shapes": 16, "faces": None}  # name -> image size (None = native); shapes at 16 for speed
MODELS = ["tinyvgg", "lenet5", "mlp", "linear", "resnet_small"]
PER_CLASS = ["5", "10", "20", "50", "all"]
RESULTS_KEY = f"{P}.results"  # {set-up key: {member name: MemberResult}}
GALLERY = 24  # images shown where the members disagree
KEPT_SETUPS = 8  # set-ups whose trained members a session keeps

FIELDS = [
    choice(f"{P}.data", "data", "digits", list(DATA)),
    items(f"{P}.models", "models", ["tinyvgg"], MODELS, most=3),
    number(f"{P}.members", "k", 5, 2, 10, int),
    number(f"{P}.epochs", "ep", 4, 1, 30, int),
    choice(f"{P}.per_class", "pc", "all", PER_CLASS),
]
PRESETS = {"seeds": {"data": "digits", "models": ["tinyvgg"], "k": 5, "ep": 4},
           "small_data": {"data": "digits", "models": ["tinyvgg"], "k": 8, "ep": 10, "pc": "10"},
           "architectures": {"data": "digits", "models": ["tinyvgg", "mlp", "lenet5"], "k": 6, "ep": 6},
           "shapes": {"data": "shapes", "models": ["tinyvgg"], "k": 4, "ep": 3, "pc": "50"}}


def setup_ui():
    a, b, c, d, e = st.columns([1, 2, 1, 1, 1])
    name = a.selectbox("Data set", list(DATA), key=f"{P}.data", help="Bundled sets; shapes resized to 16×16.")
    names = b.multiselect("Member architectures", MODELS, key=f"{P}.models", max_selections=3,
                          help="One: members differ only by their seed. Several: members cycle through them.")
    k = c.slider("Members k", 2, 10, key=f"{P}.members", help="Member m trains with seed S + m (S: the sidebar seed).")
    epochs = d.number_input("Epochs", 1, 30, key=f"{P}.epochs", help="Each member's training budget.")
    per_class = e.select_slider("Images per class", PER_CLASS, key=f"{P}.per_class",
                                help="Training images per class; fewer images, more disagreement.")
    if not names:
        st.info("Pick at least one architecture.")
        return None
    dataset = load_dataset(name, DATA[name], seed())
    if per_class != "all":
        dataset = subsample(dataset, per_class=int(per_class), seed=seed())
    recipe = TrainConfig.for_data(name)
    config = TrainConfig.for_data(name, image_size=DATA[name], model=names[0], epochs=int(epochs), seed=seed(),
                                  batch_size=min(recipe.batch_size, len(dataset.train)))
    return ensembles.plan_members(config, model_names=names, members=int(k)), dataset


def render_training(members, dataset) -> list:
    """The Train button or the job; returns the finished members of this set-up, in member order."""
    key = json.dumps([dataset.name, len(dataset.train), [m.config.to_dict() for m in members]], sort_keys=True,
                     default=str)
    store = st.session_state.setdefault(RESULTS_KEY, {})
    while len(store) >= KEPT_SETUPS and key not in store:
        store.pop(next(iter(store)))  # the oldest set-up first
    done = store.setdefault(key, {})
    missing = [m for m in members if m.name not in done]

    def keep(plan_key: str, event) -> None:
        if isinstance(event, ensembles.MemberResult):
            store.setdefault(plan_key, {})[event.name] = event

    experiment_ui(f"{P}.job", ensembles.train_ensemble, label=f"Training {len(missing)} members", needed=bool(missing),
                  button=f"Train {len(missing)} member{'s' if len(missing) > 1 else ''}", plan_key=key,
                  estimate=lambda: ensembles.estimate_seconds(missing, dataset), keep=keep,
                  members=missing, dataset=dataset)
    return [done[m.name] for m in members if m.name in done]


def render_votes(results, dataset):
    summary = ensembles.summarize(torch.stack([r.probs for r in results]), dataset.test.y)
    mean = sum(summary.member_acc) / len(summary.member_acc)
    cols = st.columns(4)
    cols[0].metric("Mean member", f"{mean:.1%}")
    cols[1].metric("Best member", f"{max(summary.member_acc):.1%}")
    cols[2].metric("Soft vote", f"{summary.soft_vote:.1%}", f"{summary.soft_vote - mean:+.1%} vs mean")
    cols[3].metric("Hard vote", f"{summary.hard_vote:.1%}", f"{summary.hard_vote - mean:+.1%} vs mean")
    left, right = st.columns(2)
    presenter = presenter_mode()
    left.plotly_chart(figs.vote_bars({r.name: a for r, a in zip(results, summary.member_acc)}, summary.soft_vote,
                                     summary.hard_vote, presenter=presenter), width="stretch")
    left.latex(r"\bar p(c \mid x) = \frac{1}{M} \sum_{m=1}^{M} p_m(c \mid x)")  # two lines: one is too wide
    left.latex(r"\hat y_{\text{soft}} = \arg\max_c \bar p(c \mid x)")
    left.caption("Soft voting averages the members' probabilities; a confident member counts for more.")
    right.plotly_chart(figs.accuracy_vs_k(summary.vs_k, summary.member_acc, presenter=presenter), width="stretch")
    right.latex(r"\hat y_{\text{hard}} = \arg\max_c \sum_{m=1}^{M} [\hat y_m = c]")
    right.caption("Hard voting counts each member's top class; a tie goes to the tied class the soft vote "
                  "prefers. The gain flattens as k grows: members trained on the same data share most mistakes.")
    return summary


def render_gallery(summary, dataset) -> None:
    st.subheader("Where the members disagree and the ensemble is right")
    shown = summary.disagreements[:GALLERY]
    if not shown:
        st.success("The members agree on every test image (or disagree only where the ensemble is wrong too).")
        return
    st.caption(f"{len(summary.disagreements)} test images; the most outvoted mistakes first. Each caption: "
               "true class · every member's vote · the soft and hard vote.")
    names = dataset.class_names
    captions = [f"true {names[int(dataset.test.y[i])]} · members "
                + " ".join(names[int(v)] for v in summary.member_votes[:, i])
                + f" · soft {names[int(summary.soft_pred[i])]}, hard {names[int(summary.hard_pred[i])]}" for i in shown]
    st.image([to_display(dataset.test.x[i]) for i in shown], caption=captions, width=150)


def render() -> None:
    setup = setup_ui()
    if setup is None:
        return
    members, dataset = setup
    results = render_training(members, dataset)
    if not results:
        st.info("The members and their votes appear here once trained, one member after another. Members trained "
                "for these settings are kept, also after a Cancel.")
        return
    if len(results) < len(members):
        st.caption(f"{len(results)} of {len(members)} members trained so far; the votes use those.")
    summary = render_votes(results, dataset)
    render_gallery(summary, dataset)


st.title("Ensembles")
lesson_link_ui("app_pages/architectures/ensembles.py")
st.markdown("Train **k** networks on the same data split, each from its own seed (or with another "
            "architecture), and let them vote. Members make partly different mistakes, so their average is "
            "usually better than any one of them: often a point or two of accuracy, bought with k times the compute.")
with url_state(FIELDS, PRESETS):
    render()
