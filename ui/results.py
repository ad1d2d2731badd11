"""What a finished Run did: headline metrics, errors, layer table, templates, downloads, "Try it", run table,
the top-k bars of one prediction, and "train these now and remember them" for the pages that train on the spot.

Draws with Streamlit; all maths comes from the engine (`metrics`, `train.predict`, `models.summary`,
`export`). A user's model is theirs, so its evaluation is kept in `st.session_state`, never in a
cache shared between sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
import streamlit as st
from torch import Tensor

from engine.data.sets import Dataset
from engine.errors import UserInputError
from engine.models.export import model_source
from engine.data.images import to_model_input
from engine.training.metrics import Evaluation, evaluate_split, linear_templates, top_k
from engine.models import LayerSummary, summary
from engine.training.runs import Run, save_run
from engine.training.trainer import predict
from ui.figures import train as figures
from ui.images import signed_colour, signed_to_rgb, to_display
from ui.sidebar import presenter_mode
from ui.state import runs as stored_runs
from ui.train_panel import Job, curves_figure, train_panel_ui
from ui.uploads import drawing_ui, image_upload_ui

EVALUATIONS_KEY = "results.evaluations"
MAX_EVALUATIONS = 8  # runs whose test-split evaluation a session keeps
MISTAKES_SHOWN = 24
TOP_K = 5
THUMB_PX = 112  # width of gallery images on screen
INPUT_PX = 192  # the "what the model sees" image is upscaled to at least this


@dataclass
class _Results:
    """What results_ui shows for one Run on one split, computed once per run and epoch count."""

    evaluation: Evaluation
    layers: list[LayerSummary]


def _results(run: Run, dataset: Dataset) -> _Results:
    store: dict = st.session_state.setdefault(EVALUATIONS_KEY, {})
    # The model's id tells apart two runs given the same name (a retrain, an upload).
    key = (run.name, len(run.history.epoch), dataset.name, id(run.model))
    if key not in store:
        while len(store) >= MAX_EVALUATIONS:
            store.pop(next(iter(store)))  # oldest first: dicts keep insertion order
        mc = run.model_config
        store[key] = _Results(evaluate_split(run.model, dataset.test),
                              summary(run.model, (mc.in_channels, mc.image_size, mc.image_size)))
    return store[key]


def _mismatch(run: Run, dataset: Dataset) -> str | None:
    mc = run.model_config
    if (mc.in_channels, mc.image_size, mc.num_classes) != (dataset.channels, dataset.image_size,
                                                           len(dataset.class_names)):
        return (f"“{run.name}” was trained on {mc.in_channels}×{mc.image_size}×{mc.image_size} images with "
                f"{mc.num_classes} classes, but {dataset.title} has {dataset.channels}×{dataset.image_size}×"
                f"{dataset.image_size} images with {len(dataset.class_names)} classes; pick its own data set.")
    return None


def file_stem(name: str) -> str:
    """`name` made safe as a file name: characters other than letters, digits, space . _ - become '_'."""
    return re.sub(r"[^\w .-]", "_", name).strip(" .") or "run"


# ---------------------------------------------------------------- results_ui and its sections
def results_ui(run: Run, dataset: Dataset, *, key: str = "results") -> None:
    """Everything about a finished `run`, evaluated on `dataset`'s test split."""
    message = _mismatch(run, dataset)
    if message:
        st.error(message)
        return
    results = _results(run, dataset)
    key = f"{key}.{file_stem(run.name)}"
    headline_ui(run, results.evaluation)
    errors_ui(run, results.evaluation, key=key)
    mistakes_ui(run, dataset, results.evaluation)
    summary_ui(results.layers)
    if run.model_config.name == "linear":
        templates_ui(run)
    downloads_ui(run, key=key)


def accuracy_text(accuracy: float | None) -> str:
    """A run's test accuracy as shown: "—" where there is none (a cancelled run, or one without a test split)."""
    return "—" if accuracy is None else f"{accuracy:.1%}"


def headline_ui(run: Run, evaluation: Evaluation) -> None:
    history = run.history
    accuracy = history.test_acc if history.test_acc is not None else evaluation.accuracy
    columns = st.columns(5)
    columns[0].metric("Test accuracy", f"{accuracy:.1%}")
    columns[1].metric("Test loss", "—" if history.test_loss is None else f"{history.test_loss:.3f}")
    columns[2].metric("Epochs", len(history.epoch),
                      help=f"Best validation loss after epoch {history.best_epoch}." if history.best_epoch else None)
    columns[3].metric("Seconds", f"{history.total_seconds:.1f}")
    columns[4].metric("Images/s", f"{history.mean_images_per_s():,.0f}", help="Training images per second.")
    st.caption(f"Measured on the {len(evaluation.labels):,} test images of {run.dataset_title}: "
               "images the model never trained on and that were not used to pick the epoch.")
    if history.diverged_at is not None:
        st.warning(f"Training diverged at step {history.diverged_at}; the last weights that were still finite "
                   "are shown. A smaller learning rate usually helps.")
    elif history.stopped_reason:
        st.info(f"Training ended early ({history.stopped_reason}) after {len(history.epoch)} epochs.")


def errors_ui(run: Run, evaluation: Evaluation, *, key: str) -> None:
    presenter = presenter_mode()
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.confusion_matrix(evaluation.confusion_matrix(), run.class_names,
                                                 presenter=presenter), key=f"{key}.confusion")
        st.caption("Row = true class, column = predicted class; the diagonal is right, "
                   "everything else is a confusion. Colour = share of the row.")
    with right:
        st.plotly_chart(figures.per_class_accuracy(evaluation.per_class_accuracy(), run.class_names,
                                                   overall=evaluation.accuracy, presenter=presenter),
                        key=f"{key}.per_class")
        st.caption("Share of each class's test images classified correctly (its recall).")


def mistakes_ui(run: Run, dataset: Dataset, evaluation: Evaluation) -> None:
    st.subheader("Most confident mistakes")
    wrong = evaluation.mistakes(MISTAKES_SHOWN).tolist()
    if not wrong:
        st.success("No test image is misclassified.")
        return
    st.caption("Test images the model got wrong, the most confidently wrong first: "
               "true class → predicted class (probability it gave).")
    names, probs, predictions = run.class_names, evaluation.probabilities, evaluation.predictions
    images = [to_display(dataset.test.x[i]) for i in wrong]
    captions = [f"{names[int(evaluation.labels[i])]} → {names[int(predictions[i])]} "
                f"({float(probs[i, predictions[i]]):.0%})" for i in wrong]
    st.image(images, caption=captions, width=THUMB_PX)


def summary_table(layers: list[LayerSummary]) -> pd.DataFrame:
    """One row per layer plus a totals row, for st.dataframe and the tests."""
    rows = [{"layer": layer.name, "type": layer.kind,
             "output shape": " × ".join(str(d) for d in layer.output_shape),
             "parameters": layer.params, "MACs": layer.macs} for layer in layers]
    rows.append({"layer": "total", "type": "", "output shape": "",
                 "parameters": sum(layer.params for layer in layers), "MACs": sum(layer.macs for layer in layers)})
    return pd.DataFrame(rows)


def summary_ui(layers: list[LayerSummary]) -> None:
    st.subheader("Layers")
    st.dataframe(summary_table(layers), hide_index=True, column_config={
        "parameters": st.column_config.NumberColumn(format="localized"),
        "MACs": st.column_config.NumberColumn(format="localized")})
    st.caption("MACs = multiply-accumulates per image; FLOPs ≈ 2 × MACs.")


def template_images(templates: Tensor) -> list:
    """Class templates (K, C, H, W) → display images on one shared colour scale."""
    limit = float(templates.abs().max())
    if templates.shape[1] == 3:
        return [signed_colour(t, limit=limit, upscale_to=96) for t in templates]
    return [signed_to_rgb(t, limit=limit, upscale_to=96) for t in templates]


def templates_ui(run: Run) -> None:
    mc = run.model_config
    st.subheader("Class templates")
    templates = linear_templates(run.model, channels=mc.in_channels, image_size=mc.image_size)
    st.image(template_images(templates), caption=run.class_names, width=THUMB_PX)
    if mc.in_channels == 3:
        st.caption("Each class's weight row reshaped to an image (mid-gray = 0): a reddish template means red "
                   "pixels there raise that class's score. One colour scale for all classes.")
    else:
        st.caption("Each class's weight row reshaped to an image: red = a bright pixel there raises that "
                   "class's score, blue = lowers it, white = no effect. One colour scale for all classes.")


def downloads_ui(run: Run, *, key: str) -> None:
    st.subheader("Take it with you")
    source = model_source(run.model, run.model_config, train_config=run.config)
    left, right = st.columns(2)
    left.download_button("Download the run (.pt)", data=lambda: save_run(run),
                         file_name=f"{file_stem(run.name)}.pt", mime="application/octet-stream",
                         on_click="ignore", key=f"{key}.download_run", icon=":material/download:")
    right.download_button(f"Download {run.model_config.name}.py", data=source,
                          file_name=f"{run.model_config.name}.py", mime="text/x-python",
                          on_click="ignore", key=f"{key}.download_code", icon=":material/code:")
    st.caption("The run file holds weights, configuration and history; upload it later to continue. "
               "The .py file rebuilds the model in plain PyTorch and loads those weights.")
    with st.expander(f"PyTorch code for {run.model_config.name}"):
        st.code(source, language="python")


# ---------------------------------------------------------------- try_it_ui
@st.fragment
def try_it_ui(run: Run, dataset: Dataset | None = None, *, key: str = "try") -> None:
    """Classify a test image, an upload or a camera photo; show what the model sees and its top 5."""
    st.caption("Pick an image: the model sees it resized and converted the way its training images were.")
    sources = (["A test image"] if dataset is not None and len(dataset.test) else []) + ["Upload or camera", "Draw"]
    source = st.radio("Image", sources, horizontal=True, key=f"{key}.source.{len(sources)}",
                      label_visibility="collapsed")
    truth = None
    if source == "A test image":
        index = int(st.number_input(f"Test image (0 – {len(dataset.test) - 1})", min_value=0,
                                    max_value=len(dataset.test) - 1, value=0, step=1,
                                    key=f"{key}.index.{dataset.name}.{len(dataset.test)}"))
        image, truth = dataset.test.x[index], dataset.class_names[int(dataset.test.y[index])]
    elif source == "Draw":
        image = drawing_ui(f"{key}.drawing")
    else:
        image = image_upload_ui("Upload an image to classify", key=f"{key}.upload")
    if image is not None:
        prediction_ui(run, image, truth=truth, key=key)


def prediction_ui(run: Run, image: Tensor, *, truth: str | None = None, key: str = "try") -> None:
    """The preprocessed input beside the top-5 bar chart, for one image (C, H, W) in [0, 1]."""
    mc = run.model_config
    try:
        x = to_model_input(image, channels=mc.in_channels, image_size=mc.image_size)  # (1, C, S, S)
    except UserInputError as error:
        st.error(str(error))
        return
    probabilities = predict(run.model, x)[0]
    left, right = st.columns([1, 2])
    with left:
        st.image(to_display(x[0], upscale_to=INPUT_PX),
                 caption=f"What the model sees: {mc.in_channels}×{mc.image_size}×{mc.image_size}")
        notes = []
        if image.shape[0] == 3 and mc.in_channels == 1:
            notes.append("Converted to grayscale: this model expects 1 channel.")
        elif image.shape[0] == 1 and mc.in_channels == 3:
            notes.append("Gray repeated into 3 channels: this model expects colour.")
        if tuple(image.shape[1:]) != (mc.image_size, mc.image_size):
            notes.append(f"Resized from {image.shape[2]}×{image.shape[1]}: shorter side to {mc.image_size} px, "
                         "then centre-cropped.")
        if notes:
            st.caption(" ".join(notes))
    with right:
        best = top_k_ui(run.class_names, probabilities, key=f"{key}.top_k")
        if truth is not None:
            verdict = "right" if best == truth else "wrong"
            st.caption(f"True class: **{truth}** — the model's top guess is {verdict}.")


def top_k_ui(class_names: list[str], probabilities: Tensor, *, k: int = TOP_K, key: str) -> str:
    """The k most likely classes of one example's (K,) probabilities as bars; returns the top class name."""
    pairs = [(class_names[i], p) for i, p in top_k(probabilities, k)]
    st.plotly_chart(figures.top_k_bars(pairs, presenter=presenter_mode()), key=key)
    return pairs[0][0]


# ---------------------------------------------------------------- trained_runs_ui
def trained_runs_ui(jobs: list[Job], *, key: str, label: str = "Train") -> dict[str, Run]:
    """The Train button for `jobs`; returns the Runs of its last press, remembered across reruns (name → Run).

    Runs live in the session's Run store (ui.state), so other pages can pick them too; a run the
    user removed from the store is no longer returned.
    """
    trained = train_panel_ui(jobs, key=key, label=label)
    if trained:
        st.session_state[f"{key}.runs"] = trained
    store = stored_runs()
    return {name: store[name] for name in st.session_state.get(f"{key}.runs", []) if name in store}


# ---------------------------------------------------------------- runs_table_ui
def runs_table(runs: dict[str, Run]) -> pd.DataFrame:
    """One row per run: what it was and how it did."""
    return pd.DataFrame([{
        "name": name, "data set": run.dataset_title, "model": run.model_config.name,
        "optimizer": run.config.get("optimizer"), "lr": run.config.get("lr"),
        "batch size": run.config.get("batch_size"), "epochs": len(run.history.epoch),
        "test acc": run.history.test_acc, "seconds": round(run.history.total_seconds, 1),
    } for name, run in runs.items()])


def _selected_runs_ui(names: list[str], key: str) -> list[str]:
    """A multiselect that starts with every run and adds runs trained since, keeping the user's removals."""
    selected_key, known_key = f"{key}.selected", f"{key}.known"
    if selected_key not in st.session_state:
        st.session_state[selected_key] = list(names)
    else:
        known = set(st.session_state.get(known_key, []))
        kept = [n for n in st.session_state[selected_key] if n in names]
        st.session_state[selected_key] = kept + [n for n in names if n not in known and n not in kept]
    st.session_state[known_key] = list(names)
    return st.multiselect("Runs to compare", names, key=selected_key)


def runs_table_ui(runs: dict[str, Run], *, key: str = "runs") -> None:
    """The session's runs as a table with a CSV download, and the chosen runs' learning curves overlaid."""
    if not runs:
        st.info("No runs yet: train one, or upload a saved run.")
        return
    table = runs_table(runs)
    st.dataframe(table, hide_index=True, column_config={
        "test acc": st.column_config.NumberColumn(format="percent"),
        "lr": st.column_config.NumberColumn(format="%g"),
        "seconds": st.column_config.NumberColumn(format="%.1f")})
    st.download_button("Download the table (.csv)", data=table.to_csv(index=False).encode(),
                       file_name="runs.csv", mime="text/csv", on_click="ignore", key=f"{key}.csv",
                       icon=":material/download:")
    st.info("Runs live in this browser session only: they vanish when the page is refreshed, "
            "unless you download them.", icon=":material/info:")
    selected = _selected_runs_ui(list(runs), key)
    if not selected:
        st.caption("Pick runs above to compare their learning curves.")
        return
    histories = {name: runs[name].history for name in selected}
    left, right = st.columns(2)
    left.plotly_chart(curves_figure(histories, "loss"), key=f"{key}.loss")
    right.plotly_chart(curves_figure(histories, "acc"), key=f"{key}.acc")
    st.caption("Dashed = training, solid = validation. A widening gap between them is overfitting.")
