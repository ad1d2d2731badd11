"""The transfer pages' shared controls: the source network (a run, one trained here, or a cached ImageNet
network) and the target data (bundled or uploaded), kept under one set of keys so both pages agree.

A source for the engine is an `engine.training.sources.Source`; one built from a run of this session
is kept in the session (the run is the user's), a pretrained one in `st.cache_resource` (read-only
weights shared by everyone).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import streamlit as st

from engine import data, models
from engine.data.sets import Dataset
from engine.errors import UserInputError
from engine.models import pretrained
from engine.training import sources
from engine.training.sources import ALL, Source
from engine.training.transfer import source_recipe
from ui import jobs
from ui.long_work import remembered
from ui.sidebar import seed
from ui.state import UrlField, choice, runs
from ui.train_config import load_dataset
from ui.train_panel import Job, train_panel_ui
from ui.uploads import zip_upload_ui

K = "transfer"
KINDS = {"run": "A run of this session", "train": "Train a source here", "pretrained": "Pretrained (ImageNet)"}
UPLOAD = "upload"
TARGETS = data.names()  # the bundled sets first; the downloads need a connection once
SHOTS = [1, 2, 5, 10, 20, 50, ALL]
SOURCE_RUN = "tinyvgg + BatchNorm on shapes (source)"


def shots_label(k: int) -> str:
    return "all" if k == ALL else str(k)


FIELDS = [
    choice(f"{K}.kind", "src", "run", list(KINDS)),
    choice(f"{K}.net", "net", pretrained.DEFAULT, pretrained.names()),
    UrlField(f"{K}.size", "size", 64, int, lambda v: v in sources.PRETRAINED_SIZES),
    choice(f"{K}.target", "target", "faces", TARGETS + [UPLOAD]),
    UrlField(f"{K}.per_class", "k", 5, int, lambda v: v in SHOTS),
]


def _eligible(run) -> bool:
    return models.info(run.model_config.name).family != "linear"


def _run_source(name: str) -> Source:
    run = runs()[name]
    store = st.session_state.setdefault(f"{K}.sources", {})
    key = (name, id(run.model), len(run.history.epoch))
    if key not in store:
        store.clear()  # one source per session: the newest choice
        store[key] = sources.from_run(run)
    return store[key]


@st.cache_resource(max_entries=2, show_spinner="Loading pretrained weights…")
def _pretrained_source(name: str, size: int) -> Source:
    return sources.from_pretrained(name, image_size=size)


def _train_ui() -> None:
    """One click: Tiny VGG with BatchNorm on the 12,000 shapes; the run becomes the source."""
    config = source_recipe(seed())
    st.caption(f"Trains Tiny VGG with BatchNorm on the procedural shapes ({config.epochs} epochs, the shapes "
               "recipe); it then appears under “A run of this session”.")
    trained = train_panel_ui([Job(SOURCE_RUN, config, load_dataset("shapes", None, seed()))], key=f"{K}.train",
                             label="Train a source here")
    if trained:
        st.session_state[f"{K}.pending"] = trained[-1]
        st.rerun()


def _use_training() -> None:
    st.session_state[f"{K}.kind"] = "train"


def _downloaded_ui(name: str) -> bool:
    """The weights are missing: say so; offer to download them, or to train a source here instead."""
    notice = st.empty()  # one message: what is missing, or why the download failed
    notice.warning(pretrained.missing_message(name))
    left, right = st.columns(2)
    right.button("Train a source here instead", on_click=_use_training, key=f"{K}.offer",
                 help="Tiny VGG on the shapes, trained on this machine: works offline.")
    if not left.button("Try to download", key=f"{K}.download", help="Fetch the weights once (needs internet)."):
        return False
    bar = st.progress(0.0, text="Connecting…")
    try:
        pretrained.download(name, progress=lambda f, m: bar.progress(f, text=m))
    except UserInputError as error:
        notice.error(str(error))
        return False
    finally:
        bar.empty()
    return True


def _pretrained_ui() -> Source | None:
    left, right = st.columns([3, 1])
    name = left.selectbox("Pretrained network", pretrained.names(), key=f"{K}.net",
                          format_func=lambda n: pretrained.info(n).title, help="torchvision's ImageNet weights.")
    allowed = sources.pretrained_sizes(name)
    if st.session_state.get(f"{K}.size") not in allowed:
        st.session_state[f"{K}.size"] = allowed[min(2, len(allowed) - 1)]
    size = right.selectbox("Input size", allowed, key=f"{K}.size", format_func=lambda s: f"{s}×{s}",
                           help="Smaller inputs cost quadratically less; the net was trained at 224.")
    if not pretrained.is_cached(name) and not _downloaded_ui(name):
        return None
    source = _pretrained_source(name, size)
    macs, seconds = remembered(f"{K}.cost", source.key, lambda: (sources.macs_per_image(source),
                                                                 sources.forward_seconds(source, 1000)))
    st.caption(f"{macs / 1e9:.2f} GMACs per image at {size}×{size}: features of 1,000 images take about "
               f"{seconds:.0f} s here.")
    return source


def source_ui() -> Source | None:
    """Choose the source network; None (after saying why, or offering to train one) until one is ready."""
    pending = st.session_state.pop(f"{K}.pending", None)
    if pending is not None:
        st.session_state[f"{K}.kind"], st.session_state[f"{K}.run"] = "run", pending
    kind = st.radio("Source network", list(KINDS), format_func=KINDS.get, horizontal=True, key=f"{K}.kind",
                    help="The network whose layers are reused: trained here, or on ImageNet.")
    if kind == "pretrained":
        return _pretrained_ui()
    available = [name for name, run in runs().items() if _eligible(run)]
    if kind == "train" or not available:
        if kind == "run":
            st.info("No trained CNN or MLP in this session yet: train a source here (or any in the Train Lab).")
        _train_ui()
        return None
    if st.session_state.get(f"{K}.run") not in available:
        st.session_state[f"{K}.run"] = available[-1]
    name = st.selectbox("Run", available, key=f"{K}.run", help="A run of this session; its classifier is replaced.")
    source = _run_source(name)
    st.caption(f"Trained on {source.trained_on}; offers {', '.join(l.title for l in source.layers)}.")
    return source


def _uploaded() -> Dataset | None:
    content = zip_upload_ui(f"{K}.zip")
    if content is None:
        st.info("Upload a .zip with one folder per class (e.g. `cats/…`, `dogs/…`).")
        return None
    key = (hashlib.sha256(content).hexdigest(), seed())
    store = st.session_state.setdefault(f"{K}.uploaded", {})
    if key not in store:
        store.clear()  # one uploaded set per session: they can be large
        store[key] = data.load_folder(content, image_size=32, seed=seed())
    return store[key]


def target_ui() -> Dataset | None:
    """Choose the target data set; None (after saying why) when it cannot be had."""
    label = {n: data.info(n).title for n in data.names()} | {UPLOAD: "My own images (zip)"}
    name = st.selectbox("Target data", TARGETS + [UPLOAD], key=f"{K}.target", format_func=label.get,
                        help="The new task: its images are resized and converted to the source's input.")
    try:
        return _uploaded() if name == UPLOAD else load_dataset(name, None, seed())
    except UserInputError as error:
        st.error(str(error))
        return None


def source_and_target_ui() -> tuple[Source, Dataset] | None:
    """The source beside the target, as both transfer pages open; None until both are ready."""
    left, right = st.columns([3, 2])
    with left:
        source = source_ui()
    with right:
        target = target_ui()
    return None if source is None or target is None else (source, target)


def per_class_ui(help: str) -> int:
    return st.select_slider("Training images per class", SHOTS, key=f"{K}.per_class", format_func=shots_label,
                            help=help)


def data_key(dataset: Dataset) -> tuple:
    """What tells two target data sets apart in a result's key."""
    return dataset.name, len(dataset.train), dataset.image_size, seed()


def job_button_ui(key: str, live: Callable, label: str, *, help: str | None = None, disabled: bool = False) -> bool:
    """Follow the job under `key`; while none runs, how the last ended and the button (key `{key}.run`) that
    starts one: True when it was pressed (the caller then starts the job with `start`)."""
    if jobs.follow(key, live):
        return False
    jobs.outcome_ui(key)
    pressed = jobs.start_button_ui(label, key=f"{key}.run", type="primary", help=help, disabled=disabled)
    if pressed:
        st.session_state.pop(f"{key}.progress", None)
    return pressed


def start(key: str, live: Callable, function: Callable, *, label: str, estimate_s: float, **kwargs) -> None:
    """Start `function` as the job under `key` and draw it at once."""
    jobs.start(key, function, label=label, estimate_s=estimate_s, **kwargs)
    jobs.follow(key, live)
