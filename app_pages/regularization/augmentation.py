"""Data augmentation: one image through each transform, random variants of a pipeline, MixUp/CutMix labels,
and the pipeline's effect on training a small subset."""

from dataclasses import replace

import streamlit as st

from engine import data
from engine.data import augment
from engine.data.subsample import class_counts, subsample
from engine.device import generator
from engine.layers.conv import shrink
from engine.limits import MAX_AUGMENT_STEPS
from engine.training.config import TrainConfig
from engine.training.targets import MIXINGS, Mixer
from ui.figures import augmentation as figs
from ui.images import tile
from ui.lessons import lesson_link_ui
from ui.results import trained_runs_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, items, number, url_state
from ui.train_config import augmentation_fields, augmentation_warnings_ui, load_dataset, step_params_ui, train_lab_url
from ui.train_panel import Job, curves_ui
from ui.uploads import image_upload_ui

P = "aug"
SOURCES = {"photo": "Photo", "sample": "Data-set sample", "upload": "Upload"}
DATA = ["shapes", "digits", "faces"]
IMAGE_STEPS = [n for n in augment.step_names() if augment.step_info(n).kind != "mixing"]
TURNS = {"rotate.degrees": 180.0, "rotate.fill": "border"}  # a turned shape is still that shape
SIDE, VARIANTS, MIXED = 96, 8, 6  # photo side (px); random versions per transform; images in the mixing demo
FORMULAS = {"mixup": r"\tilde x = \lambda x_i + (1-\lambda)\,x_j,\quad \lambda \sim \mathrm{Beta}(\alpha, \alpha)",
            "cutmix": r"\tilde x = M \odot x_i + (1-M) \odot x_j,\quad \lambda = \text{share of } x_i \text{ kept}"}
FIELDS = [choice(f"{P}.data", "data", "shapes", DATA), choice(f"{P}.src", "src", "photo", list(SOURCES)),
          choice(f"{P}.photo", "photo", "chelsea", data.photo_names()), number(f"{P}.index", "idx", 0, 0, 999, int),
          items(f"{P}.steps", "steps", ["flip", "rotate"], IMAGE_STEPS, most=MAX_AUGMENT_STEPS),
          choice(f"{P}.mixing", "mix", "none", list(MIXINGS)), number(f"{P}.n", "n", 30, 5, 100, int),
          number(f"{P}.epochs", "ep", 30, 1, 60, int), *augmentation_fields(P, TURNS)]
PRESETS = {"standard": {"data": "shapes", "steps": ["flip", "crop", "jitter", "erase"]},
           "digits": {"data": "digits", "src": "sample", "steps": ["crop", "rotate"], "crop.scale": 0.7,
                      "rotate.degrees": 10.0, "rotate.fill": "zeros", "n": 20, "ep": 40},
           "faces": {"data": "faces", "src": "sample", "steps": ["flip"], "ep": 40},
           "flipped_digits": {"data": "digits", "src": "sample", "steps": ["flip", "vflip"]},
           "mixup": {"data": "shapes", "steps": ["flip", "crop"], "mix": "mixup"},
           "cutmix": {"data": "digits", "src": "sample", "steps": ["shift"], "mix": "cutmix"}}


@st.cache_data(max_entries=16, show_spinner=False)
def _photo(name: str):
    return shrink(data.load_photo(name), SIDE)


def image_ui(dataset):
    """The image every transform is shown on: a photo, a training image of the data set, or an upload."""
    source = st.segmented_control("Image", list(SOURCES), format_func=SOURCES.get, key=f"{P}.src", required=True,
                                  help="The image the transforms below are shown on.") or "photo"
    if source == "photo":
        return _photo(st.selectbox("Photo", data.photo_names(), key=f"{P}.photo", help="Bundled photos."))
    if source == "sample":
        index = st.number_input("Image number", 0, 999, key=f"{P}.index", help=f"A training image of {dataset.title}.")
        return dataset.train.x[index % len(dataset.train)]
    image = image_upload_ui("Upload an image", key=f"{P}.upload")
    if image is None:
        st.info("Choose an image file; meanwhile a training image of the data set is shown.")
    return dataset.train.x[0] if image is None else shrink(image, SIDE)


def transforms_ui(image, dataset) -> dict[str, dict]:
    """One tab per transform: its controls, random draws of it on the image, its transforms.v2 line."""
    st.subheader("Each transform on its own", help=f"{VARIANTS} copies of the image in one batch: each copy "
                 "draws its own random parameters.")
    params = {}  # step -> its parameters, as set in its tab
    for tab, name in zip(st.tabs([augment.step_info(n).title for n in IMAGE_STEPS]), IMAGE_STEPS):
        with tab:
            st.markdown(augment.step_info(name).description)
            params[name] = step_params_ui(P, name)
            shown = augment.variants([{"name": name, **params[name]}], image, VARIANTS, seed=seed())
            st.image(tile(shown, VARIANTS // 2, upscale_to=SIDE))
            st.code(augment.step_info(name).torchvision(params[name], dataset.image_size, dataset.num_classes))
    return params


def pipeline_ui(image, params: dict, dataset) -> list[dict]:
    st.subheader("Your pipeline")
    left, right = st.columns([3, 1])
    steps = left.multiselect("Steps, in order", IMAGE_STEPS, key=f"{P}.steps", max_selections=MAX_AUGMENT_STEPS,
                             format_func=lambda n: augment.step_info(n).title,
                             help="Applied in the order you pick them, each with the settings of its tab above.")
    mixing = right.selectbox("Label mixing", list(MIXINGS), key=f"{P}.mixing", help="MixUp or CutMix, after the steps.")
    spec = augment.resolve([{"name": s, **params[s]} for s in steps]
                           + ([{"name": mixing, **step_params_ui(P, mixing)}] if mixing != "none" else []))
    augmentation_warnings_ui(spec, dataset.name)
    if augment.build(spec) is not None:
        st.image(tile(augment.variants(spec, image, 2 * VARIANTS, seed=seed()), VARIANTS, upscale_to=SIDE),
                 caption="Random variants of the whole pipeline")
    st.code(augment.torchvision_code(spec, image_size=dataset.image_size, num_classes=dataset.num_classes)
            or "# no augmentation", language="python")
    if spec:
        st.markdown(f"[Open this pipeline in Train Lab]({train_lab_url(spec, dataset.name)})")
    return spec


def mixing_ui(kind: str, alpha: float, dataset) -> None:
    st.subheader("Mixed images, mixed labels")
    st.latex(FORMULAS[kind] + r",\quad \tilde y = \lambda y_i + (1-\lambda)\,y_j")
    mixer = Mixer(kind, alpha=alpha, num_classes=dataset.num_classes, seed=seed())
    mixed, target = mixer(dataset.train.x[:MIXED], dataset.train.y[:MIXED], generator(seed()))
    title = f"{augment.step_info(kind).title}, α = {alpha:g}: one λ per batch, each label sums to 1"
    st.plotly_chart(figs.mixed_labels(mixed.numpy(), target.numpy(), dataset.class_names, title=title,
                                      presenter=presenter_mode()), width="stretch")


def training_ui(spec: list[dict], dataset) -> None:
    st.subheader("Train with and without it")
    smallest = min(class_counts(dataset.train.y, dataset.num_classes))
    st.session_state[f"{P}.n"] = min(st.session_state[f"{P}.n"], smallest)
    left, right = st.columns(2)
    per_class = left.number_input("Training images per class", 5, min(100, smallest), key=f"{P}.n",
                                  help="A small subset overfits quickly: where augmentation helps most.")
    epochs = right.number_input("Epochs", 1, 60, key=f"{P}.epochs", help="Passes over the subset; the same for both.")
    small = subsample(dataset, per_class=int(per_class), seed=seed())
    base = TrainConfig.for_data(dataset.name, epochs=int(epochs), seed=seed())
    base = replace(base, batch_size=min(base.batch_size, len(small.train)))  # a few images: one batch at most
    jobs = [Job(f"{dataset.name}, {per_class}/class, {text}", replace(base, augmentation=steps), small)
            for text, steps in (("no augmentation", "none"), (augment.to_text(spec) or "none", spec))]
    pair = trained_runs_ui(jobs, key=f"{P}.train", label="Train both")
    if pair:
        histories = {name: run.history for name, run in pair.items()}
        curves_ui(histories, key=f"{P}.curves")
        st.plotly_chart(figs.accuracy_bars(histories, presenter=presenter_mode()), width="stretch")
        st.caption("Training accuracy is on augmented images; validation and test images are never augmented.")


def render() -> None:
    name = st.selectbox("Data set", DATA, key=f"{P}.data", format_func=lambda n: data.info(n).title,
                        help="For the data-set sample, the mixing demo and the training below.")
    dataset = load_dataset(name, None, seed())
    image = image_ui(dataset)
    spec = pipeline_ui(image, transforms_ui(image, dataset), dataset)
    if mixing := augment.label_mixing(spec):
        mixing_ui(*mixing, dataset)
    training_ui(spec, dataset)


st.title("Data augmentation")
lesson_link_ui("app_pages/regularization/augmentation.py")
st.markdown("Random changes that keep the label — a flipped cat is still a cat — show the network more "
            "variety than the data set holds. Each image in a batch gets its own random draw, new every epoch.")
with url_state(FIELDS, PRESETS):
    render()
