"""Train Lab: train a linear model, an MLP or a CNN on real images, watch it learn, inspect and try it."""

import streamlit as st

from ui.images import tile
from ui.lessons import lesson_link_ui
from ui.results import results_ui, runs_table_ui, trained_runs_ui, try_it_ui
from ui.state import run_dataset, runs, store_run, unique_run_name, url_state
from ui.train_config import FIELDS, PRESETS, recipe_from_link, train_config_ui
from ui.train_panel import Job, curves_ui
from ui.uploads import run_upload_ui

SAMPLES_PER_CLASS = 6


def samples_ui(dataset) -> None:
    """A few training images of every class, so users see what the network sees."""
    with st.expander(f"Samples — {dataset.title}: {len(dataset.train)} train, {len(dataset.val)} "
                     f"validation, {len(dataset.test)} test images, {dataset.channels}×{dataset.image_size}"
                     f"×{dataset.image_size}", expanded=False):
        for index, name in enumerate(dataset.class_names[:12]):
            images = dataset.train.x[dataset.train.y == index][:SAMPLES_PER_CLASS]
            if len(images):
                st.image(tile(images, SAMPLES_PER_CLASS), caption=name, width=min(600, 100 * len(images)))


def render_training() -> None:
    setup = train_config_ui()
    if setup is None:
        return
    config, dataset = setup
    samples_ui(dataset)
    name = f"{config.model} on {dataset.name} (lr {config.lr:g})"
    trained_runs_ui([Job(name, config, dataset)], key="train")


def render_results() -> None:
    store = runs()
    if not store:
        st.info("No runs yet: press **Train** above. A digits CNN takes a few seconds.")
        return
    names = list(store)
    selected = (st.session_state.get("train.runs") or [None])[-1]  # the run trained last here
    index = names.index(selected) if selected in names else len(names) - 1
    run = store[st.selectbox("Run", names, index=index, help="Any run of this session.")]
    dataset = run_dataset(run.name)
    results_tab, try_tab = st.tabs(["Results", "Try it"])
    with results_tab:
        curves_ui({run.name: run.history}, key="results.curves")
        if dataset is not None:
            results_ui(run, dataset)
        else:
            st.info("This run was loaded from a file, so its data set is not at hand here: its test "
                    "accuracy is in the table below, and you can try it on your own image.")
    with try_tab:
        try_it_ui(run, dataset)


def render_runs() -> None:
    runs_table_ui(runs())
    uploaded = run_upload_ui("train.run_upload")
    if uploaded is not None and all(kept is not uploaded for kept in runs().values()):
        saved_as = uploaded.name
        uploaded.name = unique_run_name(saved_as)  # re-uploading your own download is the usual case
        store_run(uploaded)
        st.success(f"Loaded run **{uploaded.name}**" + (f" (a run named {saved_as} is already here)."
                                                        if uploaded.name != saved_as else "."))


st.title("Train Lab")
lesson_link_ui("app_pages/start/train_lab.py")
st.markdown("Choose data, a model and how to train it; press **Train** and watch the learning curves. "
            "Training, validation and test sets are separate: the test set is only used at the end.")
recipe_from_link()
with url_state(FIELDS, PRESETS):
    render_training()
    st.header("Results")
    render_results()
    st.header("Your runs")
    render_runs()
