"""Pick what to look inside: a Run of this session, a small CNN trained on the spot, or a pretrained
ImageNet model whose weights are on this machine — and the image to feed it.

A `Subject` hides the difference from the pages: a model that takes pixels in [0, 1], its class
names, how an image becomes its input, and the per-model glue (Grad-CAM layer, ViT token reshape).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from torch import Tensor, nn

from engine import data, models
from engine.data.images import to_model_input
from engine.data.sets import Dataset
from engine.errors import UserInputError
from engine.models import pretrained
from engine.training.config import TrainConfig
from ui.sidebar import seed
from ui.state import UrlField, choice, run_dataset, runs
from ui.train_config import load_dataset
from ui.train_panel import Job, train_panel_ui
from ui.uploads import image_upload_ui

SOURCES = {"run": "A run of this session", "train": "Train a small CNN now", "pretrained": "Pretrained (ImageNet)"}
IMAGE_SOURCES = {"sample": "Data-set sample", "photo": "Photo", "upload": "Upload or camera"}
QUICK_CONFIG = TrainConfig(data="digits", model="tinyvgg", epochs=6, lr=0.01, seed=0)  # ≈ 1 s on 2 cores, ~97 % test acc


@dataclass
class Subject:
    """A model to look inside, with what the pages need around it."""

    label: str
    model: nn.Module
    class_names: list[str]
    channels: int
    image_size: int
    family: str  # "cnn" | "vit" | "mlp" | "linear"
    gradcam_layer: str | None
    reshape: Callable[[Tensor], Tensor] | None
    dataset: Dataset | None  # the data it was trained on, when at hand
    preprocess: Callable[[Tensor], Tensor]  # (C, H, W) in [0, 1] -> (1, channels, S, S)

    def __repr__(self) -> str:
        return f"Subject({self.label!r}, {self.family}, {self.channels}×{self.image_size}², {len(self.class_names)} classes)"


def subject_from_run(name: str) -> Subject:
    run = runs()[name]
    mc = run.model_config
    entry = models.info(mc.name)
    return Subject(name, run.model, list(run.class_names), mc.in_channels, mc.image_size, entry.family,
                   entry.gradcam_layer, None, run_dataset(name),
                   lambda image: to_model_input(image, channels=mc.in_channels, image_size=mc.image_size))


@st.cache_resource(max_entries=2, show_spinner="Loading pretrained weights…")
def _load_pretrained(name: str) -> pretrained.Pretrained:
    """Shared read-only by every session (eval mode; nothing on the pages trains it)."""
    return pretrained.load(name, download_missing=False)


def subject_from_pretrained(name: str) -> Subject:
    loaded = _load_pretrained(name)
    return Subject(loaded.info.title, loaded.model, loaded.class_names, 3, loaded.crop_size, loaded.info.family,
                   loaded.info.gradcam_layer, loaded.info.reshape, None, loaded.preprocess)


def _pretrained_ui(key: str) -> Subject | None:
    name = st.selectbox("Pretrained model", pretrained.names(), key=f"{key}.pretrained",
                        format_func=lambda n: f"{pretrained.info(n).title} ({pretrained.info(n).num_params / 1e6:.1f} M)",
                        help="torchvision's ImageNet weights: 1000 classes, 224×224 colour input.")
    if not pretrained.is_cached(name):
        notice = st.empty()  # one message: what is missing, or why the download failed
        notice.warning(pretrained.missing_message(name))
        if not st.button("Try to download", key=f"{key}.download",
                         help="Fetch the weights file once into the torch hub cache (needs internet)."):
            return None
        bar = st.progress(0.0, text="Connecting…")
        try:
            pretrained.download(name, progress=lambda f, m: bar.progress(f, text=m))
        except UserInputError as error:
            bar.empty()
            notice.error(str(error))
            return None
        bar.empty()
    try:
        return subject_from_pretrained(name)
    except UserInputError as error:
        st.error(str(error))
        return None


def _train_now_ui(key: str) -> None:
    st.caption(f"Trains a Tiny VGG on the 8×8 digits for {QUICK_CONFIG.epochs} epochs (a few seconds); "
               "for other data or models use the Train Lab, then come back.")
    dataset = load_dataset(QUICK_CONFIG.data, None, seed())
    config = TrainConfig(**{**QUICK_CONFIG.to_dict(), "seed": seed()})
    trained = train_panel_ui([Job("tinyvgg on digits (inside)", config, dataset)], key=f"{key}.train",
                             label="Train a small CNN")
    if trained:
        st.session_state[f"{key}.pending"] = trained[-1]  # widgets' keys can only be set before they are drawn
        st.rerun()


def url_fields(key: str) -> list[UrlField]:
    """The picker's choices that round-trip through the URL (runs and uploads cannot)."""
    return [choice(f"{key}.source", "src", "run", list(SOURCES)),
            choice(f"{key}.pretrained", "net", pretrained.DEFAULT, pretrained.names()),
            choice(f"{key}.image_source", "img", "sample", list(IMAGE_SOURCES)),
            choice(f"{key}.photo", "photo", "chelsea", data.photo_names())]


def model_picker_ui(key: str) -> Subject | None:
    """Choose the model; returns None (after saying why) when none is ready yet."""
    pending = st.session_state.pop(f"{key}.pending", None)
    if pending is not None:
        st.session_state[f"{key}.source"], st.session_state[f"{key}.run"] = "run", pending
    source = st.radio("Model", list(SOURCES), format_func=SOURCES.get, horizontal=True, key=f"{key}.source",
                      help="Your own trained runs, a quick CNN trained here, or an ImageNet network.")
    if source == "pretrained":
        return _pretrained_ui(key)
    if source == "train" or not runs():
        if source == "run":
            st.info("No runs in this session yet: train a small CNN here, or one of your choice in the Train Lab.")
        _train_now_ui(key)
        return None
    names = list(runs())
    if st.session_state.get(f"{key}.run") not in names:
        st.session_state[f"{key}.run"] = names[-1]
    name = st.selectbox("Run", names, key=f"{key}.run", help="Any run trained or uploaded in this session.")
    return subject_from_run(name)


def image_picker_ui(subject: Subject, key: str) -> tuple[Tensor, str | None] | None:
    """An image (C, H, W) in [0, 1] and its true class name when known; None until one is chosen."""
    options = [s for s in IMAGE_SOURCES if s != "sample" or (subject.dataset is not None and len(subject.dataset.test))]
    if st.session_state.get(f"{key}.image_source") not in options:
        st.session_state[f"{key}.image_source"] = options[0]
    source = st.radio("Image", options, format_func=IMAGE_SOURCES.get, horizontal=True, key=f"{key}.image_source",
                      help="A test image the model never trained on, a bundled photo, or your own picture.")
    if source == "sample":
        test = subject.dataset.test
        index = int(st.number_input(f"Test image (0 – {len(test) - 1})", 0, len(test) - 1, 0, key=f"{key}.index",
                                    help="Index into the held-out test split."))
        return test.x[index], subject.class_names[int(test.y[index])]
    if source == "photo":
        photos = data.photo_names()
        name = st.selectbox("Photo", photos, key=f"{key}.photo",
                            help="Photos bundled with scikit-image and scikit-learn (work offline).")
        return data.load_photo(name), None
    image = image_upload_ui("Upload an image", key=f"{key}.upload")
    return (image, None) if image is not None else None


def model_input(subject: Subject, image: Tensor) -> Tensor | None:
    """The (1, C, S, S) batch the model sees, or None after showing why the image cannot be used."""
    try:
        return subject.preprocess(image)
    except UserInputError as error:
        st.error(str(error))
        return None


def subject_and_input_ui(key: str) -> tuple[Subject, Tensor, str | None] | None:
    """Model on the left, image on the right; returns (model, its input (1, C, H, W), true class or None)."""
    left, right = st.columns(2)
    with left:
        subject = model_picker_ui(key)
    if subject is None:
        return None
    with right:
        picked = image_picker_ui(subject, key)
    if picked is None or (x := model_input(subject, picked[0])) is None:
        return None
    return subject, x, picked[1]
