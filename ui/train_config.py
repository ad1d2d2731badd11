"""The Train Lab's controls: data set, model and its options, loss, optimizer, schedule — and presets.

Every control round-trips through the URL (ui.state.UrlField) so a lesson or a colleague's link
opens the same set-up; `?preset=` sets several at once.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import streamlit as st

from engine import data, models
from engine.data import augment
from engine.data.sets import Dataset
from engine.device import pick_device
from engine.errors import UserInputError
from engine.training import losses
from engine.training.config import TrainConfig
from engine.training.optimizers import optimizer_info, optimizer_names, schedule_info, schedule_names
from engine.training.presets import preset
from ui.sidebar import seed
from ui.state import UrlField, choice, flag, number
from ui.uploads import zip_upload_ui

UPLOAD = "upload"  # the data-set choice meaning "my own zip of class folders"
NATIVE = 0  # image-size choice meaning "the data set's own size"
IMAGE_SIZES = [NATIVE, 8, 16, 28, 32, 64]
DEPTHS = [8, 14, 20, 26, 32, 44, 56]  # resnet_small: 6n+2
WIDTHS = [4, 8, 16, 32, 64]
VIT_DEPTHS = [1, 2, 3, 4, 6, 8]
VIT_HEADS = [1, 2, 4, 8]
PATCH_SIZES = [0, 1, 2, 4, 5, 7, 8]  # 0 = automatic: at most 8×8 patches
CUSTOM_AUGMENTATION = "custom"  # the augmentation choice meaning "the steps typed below"

# A data set's recipe (engine.training.presets) as the controls' session keys and URL parameters.
RECIPE_CONTROLS = {"model": ("train.model", "model"), "optimizer": ("train.optimizer", "opt"),
                   "lr": ("train.lr", "lr"), "batch_size": ("train.batch_size", "bs"),
                   "epochs": ("train.epochs", "ep"), "schedule": ("train.schedule", "sched")}
DEFAULT = preset("digits")  # the default data set's recipe


def _recipe(name: str) -> dict:
    """URL parameters that set data set `name` with its recipe."""
    return {"data": name, **{RECIPE_CONTROLS[k][1]: v for k, v in preset(name).to_dict().items()}}


def _apply_recipe() -> None:
    """On a new data set, its recipe: e.g. shapes' warm-up, without which Adam kills every ReLU."""
    for field_name, value in preset(st.session_state["train.data"]).to_dict().items():
        st.session_state[RECIPE_CONTROLS[field_name][0]] = value


def recipe_from_link() -> None:
    """A link that names only a data set (`?data=shapes`) opens with that set's recipe, not digits'.

    Fills the recipe's parameters the link leaves out into the URL before the frame reads it, once
    per session (afterwards the controls are the user's); parameters the link gives win.
    """
    name = st.query_params.get("data")
    if name in data.names() and "train.data" not in st.session_state and "preset" not in st.query_params:
        for param, value in _recipe(name).items():
            st.query_params.setdefault(param, str(value))


PRESETS: dict[str, dict] = {
    "linear_digits": {"data": "digits", "model": "linear", "opt": "sgd", "lr": 0.1, "ep": 15, "bs": 64},
    "mlp_digits": {"data": "digits", "model": "mlp", "hidden": "100", "opt": "adam", "lr": 0.003, "ep": 15},
    "cnn_digits": _recipe("digits"),
    "cnn_shapes": _recipe("shapes"),
    "lr_too_high": {"data": "digits", "model": "mlp", "hidden": "100", "opt": "sgd", "lr": 10.0, "ep": 5},
}

FIELDS: list[UrlField] = [
    choice("train.data", "data", "digits", data.names() + [UPLOAD]),
    UrlField("train.size", "size", NATIVE, int, lambda v: v in IMAGE_SIZES),
    choice("train.model", "model", DEFAULT.model, models.names()),
    choice("train.activation", "act", "relu", models.activation_names()),
    choice("train.norm", "norm", "none", models.norm_names()),
    number("train.dropout", "drop", 0.0, 0.0, 0.9),
    UrlField("train.width", "width", 16, int, lambda v: v in WIDTHS),
    UrlField("train.depth", "depth", 8, int, lambda v: v in DEPTHS),
    flag("train.skip", "skip", True),
    UrlField("train.vit_depth", "vdepth", 4, int, lambda v: v in VIT_DEPTHS),
    UrlField("train.heads", "heads", 4, int, lambda v: v in VIT_HEADS),
    UrlField("train.patch", "patch", 0, int, lambda v: v in PATCH_SIZES),
    choice("train.pool", "pool", "cls", ["cls", "mean"]),
    choice("train.pos", "pos", "learned", ["learned", "sinusoidal", "none"]),
    UrlField("train.hidden", "hidden", "100"),
    choice("train.init", "init", "default", models.init_names()),
    choice("train.loss", "loss", "cross_entropy", losses.names()),
    number("train.smoothing", "ls", 0.0, 0.0, 0.5),
    choice("train.optimizer", "opt", DEFAULT.optimizer, optimizer_names()),
    number("train.lr", "lr", DEFAULT.lr, 1e-6, 100.0),
    number("train.momentum", "mom", 0.9, 0.0, 0.99),
    number("train.weight_decay", "wd", 0.0, 0.0, 1.0),
    number("train.batch_size", "bs", DEFAULT.batch_size, 1, 4096, int),
    number("train.epochs", "ep", DEFAULT.epochs, 1, 200, int),
    choice("train.schedule", "sched", DEFAULT.schedule, schedule_names()),
    number("train.patience", "pat", 0, 0, 50, int),
    choice("train.augmentation", "aug", "none", augment.names() + [CUSTOM_AUGMENTATION]),
    flag("train.amp", "amp", False),
    UrlField("train.aug_steps", "augs", "flip;crop", lambda text: augment.to_text(augment.parse(text))),
]


@st.cache_resource(max_entries=8, show_spinner="Loading the data set…")
def load_dataset(name: str, image_size: int | None, seed: int) -> Dataset:
    """Bundled and downloaded sets as tensors, shared read-only by every session."""
    return data.load(name, image_size=image_size, seed=seed)


def _uploaded_dataset(image_size: int | None, seed_value: int) -> Dataset | None:
    """The user's zip as a data set; kept in their session (it is theirs), keyed by content."""
    content = zip_upload_ui("train.zip")
    if content is None:
        st.info("Upload a .zip with one folder per class (e.g. `cats/…`, `dogs/…`).")
        return None
    key = (hashlib.sha256(content).hexdigest(), image_size or 32, seed_value)
    store = st.session_state.setdefault("train.uploaded", {})
    if key not in store:
        bar = st.progress(0.0, text="Reading your images…")
        store.clear()  # one uploaded set per session: they can be large
        store[key] = data.load_folder(content, image_size=image_size or 32, seed=seed_value,
                                      progress=lambda f, m: bar.progress(min(1.0, f), text=m))
        bar.empty()
    dataset = store[key]
    if dataset.skipped:
        with st.expander(f"{len(dataset.skipped)} files were skipped"):
            st.write("\n".join(f"- {s}" for s in dataset.skipped))
    return dataset


def dataset_ui() -> Dataset | None:
    """Pick and load a data set; show why when one cannot be had (offline, bad upload)."""
    names = data.names() + [UPLOAD]
    label = {n: data.info(n).title for n in data.names()} | {UPLOAD: "My own images (zip)"}
    left, right = st.columns([3, 1])
    name = left.selectbox("Data set", names, key="train.data", format_func=label.get, on_change=_apply_recipe,
                          help="Bundled sets work offline; MNIST, Fashion-MNIST and CIFAR-10 download once.")
    size = right.selectbox("Image size", IMAGE_SIZES, key="train.size",
                           format_func=lambda s: "native" if s == NATIVE else f"{s}×{s}",
                           help="Resize every image to this square; smaller trains faster.")
    if name != UPLOAD:
        st.caption(data.info(name).description)
    try:
        if name == UPLOAD:
            return _uploaded_dataset(size or None, seed())
        return load_dataset(name, size or None, seed())
    except UserInputError as error:
        st.error(str(error))
        return None


def _model_options(name: str) -> dict:
    """One widget per option the chosen model has; returns the options that differ from defaults."""
    defaults = models.info(name).defaults()
    widgets = {
        "activation": lambda: st.selectbox("Activation", models.activation_names(), key="train.activation",
                                           help="The non-linearity after each layer."),
        "norm": lambda: st.selectbox("Normalization", models.norm_names(linear=models.info(name).family == "mlp"),
                                     key="train.norm",
                                     help="Normalize activations after each layer (BatchNorm etc.)."),
        "dropout": lambda: st.slider("Dropout p", 0.0, 0.9, step=0.05, key="train.dropout",
                                     help="Probability of zeroing a unit during training (regularization)."),
        "width": lambda: st.select_slider("Width (channels)", WIDTHS, key="train.width",
                                          help="Filters per conv layer: more = more capacity, slower."),
        "depth": (lambda: st.select_slider("Encoder blocks", VIT_DEPTHS, key="train.vit_depth",
                                           help="Transformer blocks: attention + MLP each.")) if name == "vit_tiny"
        else (lambda: st.select_slider("Depth", DEPTHS, key="train.depth", help="Layers of the ResNet: 6n+2.")),
        "heads": lambda: st.select_slider("Heads", VIT_HEADS, key="train.heads",
                                          help="Attention heads; they must divide the width."),
        "patch_size": lambda: st.selectbox("Patch size", PATCH_SIZES, key="train.patch",
                                           format_func=lambda p: "auto" if p == 0 else f"{p}×{p}",
                                           help="Side of each image patch (token); must divide the image size."),
        "pool": lambda: st.selectbox("Pooling", ["cls", "mean"], key="train.pool",
                                     help="Classify from the class token, or from the mean of all tokens."),
        "pos_embedding": lambda: st.selectbox("Position embedding", ["learned", "sinusoidal", "none"],
                                              key="train.pos", help="How tokens know where their patch was."),
        "skip": lambda: st.toggle("Skip connections", key="train.skip",
                                  help="Off = the 'plain' net of the same depth: no shortcut x + F(x)."),
        "hidden": lambda: st.text_input("Hidden layer sizes", key="train.hidden",
                                        help="Comma-separated widths, e.g. 100 or 256,64."),
    }
    shown = [o for o in defaults if o in widgets]  # the rest (e.g. vit mlp_ratio) keep their defaults
    options = {}
    columns = st.columns(max(1, min(4, len(shown))))
    for index, option in enumerate(shown):
        with columns[index % len(columns)]:
            options[option] = widgets[option]()
    if "hidden" in options:
        try:
            options["hidden"] = tuple(int(h) for h in str(options["hidden"]).replace(" ", "").split(",") if h)
        except ValueError:
            raise UserInputError(f"hidden layer sizes must be whole numbers separated by commas; "
                                 f"got {options['hidden']!r}") from None
    return options


def model_ui() -> tuple[str, dict, str]:
    name = st.selectbox("Model", models.names(), key="train.model",
                        format_func=lambda n: f"{models.info(n).title} ({n})",
                        help="Linear → MLP → CNN: the lecture's progression.")
    st.caption(models.info(name).description)
    options = _model_options(name)
    init = st.selectbox("Initialization", models.init_names(), key="train.init",
                        help="How the weights start: PyTorch's default, Kaiming (for ReLU), Xavier, N(0, 0.01²), all zeros or one constant (symmetry: every unit stays identical).")
    return name, options, init


def optimization_ui(train_images: int) -> dict:
    """Loss, optimizer and schedule; the batch size at most the `train_images` there are."""
    batch_key = "train.batch_size"
    if st.session_state.get(batch_key, 0) > train_images:
        st.warning(f"Batch size {st.session_state[batch_key]} is more than the {train_images} training images: "
                   f"using {train_images}.")
        st.session_state[batch_key] = train_images
    left, right = st.columns(2)
    with left:
        loss = st.selectbox("Loss", losses.names(), key="train.loss", format_func=lambda n: losses.info(n).title,
                            help="What training minimizes.")
        st.latex(losses.info(loss).formula)
        smoothing = (st.slider("Label smoothing", 0.0, 0.5, step=0.05, key="train.smoothing",
                               help="Aim for 1−ε on the true class instead of 1.")
                     if loss == "cross_entropy" else 0.0)
        epochs = st.number_input("Epochs", 1, 200, key="train.epochs", help="Passes over the training set.")
        batch = st.number_input("Batch size", 1, min(4096, train_images), key=batch_key,
                                help="Images per gradient step (at most the training images).")
        schedule = st.selectbox("LR schedule", schedule_names(), key="train.schedule",
                                format_func=lambda n: schedule_info(n).title, help="How the learning rate changes.")
    with right:
        optimizer = st.selectbox("Optimizer", optimizer_names(), key="train.optimizer",
                                 format_func=lambda n: optimizer_info(n).title, help="How gradients become steps.")
        st.latex(optimizer_info(optimizer).rule)
        lr = st.number_input("Learning rate η", min_value=1e-6, max_value=100.0, format="%.4g", key="train.lr",
                             help="Step size. Too small: slow. Too large: the loss explodes.")
        momentum = (st.slider("Momentum μ", 0.0, 0.99, step=0.01, key="train.momentum",
                              help="How much of the last step carries over. Nesterov needs μ > 0.")
                    if optimizer in ("momentum", "nesterov") else 0.9)
        weight_decay = st.number_input("Weight decay λ", 0.0, 1.0, step=1e-4, format="%.4g",
                                       key="train.weight_decay", help="L2 penalty pulling weights to 0.")
        patience = st.number_input("Early-stopping patience", 0, 50, key="train.patience",
                                   help="Stop after this many epochs without a better validation loss; 0 = off.")
        augmentation = augmentation_ui()
        amp = on_cuda() and st.toggle("bf16 mixed precision", key="train.amp",
                                      help="Compute the training steps in bfloat16 on the GPU (weights stay float32).")
    return dict(loss=loss, loss_options={"label_smoothing": smoothing} if loss == "cross_entropy" else {},
                optimizer=optimizer, lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay),
                batch_size=int(batch), epochs=int(epochs), schedule=schedule, patience=int(patience),
                augmentation=augmentation, mixed_precision=bool(amp))


def on_cuda() -> bool:
    """Whether jobs train on a CUDA GPU here (mixed precision is offered only there)."""
    return pick_device().type == "cuda"


def augmentation_fields(prefix: str, defaults: dict | None = None) -> list[UrlField]:
    """A URL field per parameter of every augmentation step: key `{prefix}.{step}.{param}`, URL `step.param`;
    `defaults` ({"step.param": value}) replaces the steps' own defaults."""
    chosen = defaults or {}
    return [choice(f"{prefix}.{s}.{p.name}", f"{s}.{p.name}", chosen.get(f"{s}.{p.name}", p.default), list(p.choices))
            if p.choices else
            number(f"{prefix}.{s}.{p.name}", f"{s}.{p.name}", chosen.get(f"{s}.{p.name}", p.default), p.low, p.high)
            for s in augment.step_names() for p in augment.step_info(s).params]


def step_params_ui(prefix: str, step: str) -> dict:
    """A control per parameter of augmentation `step`, side by side; returns {parameter: value}."""
    values, params = {}, augment.step_info(step).params
    for column, p in zip(st.columns(max(2, len(params))), params):
        key = f"{prefix}.{step}.{p.name}"
        values[p.name] = (column.selectbox(p.name, p.choices, key=key, help=p.help) if p.choices else column.slider(
            p.name, p.low, p.high, step=1.0 if p.high - p.low >= 20 else 0.01, key=key, help=p.help))
    return values


def augmentation_ui() -> str | list[dict]:
    """A preset, or "custom" and the steps typed as text (engine.data.augment's syntax); raises UserInputError."""
    choice_ = st.selectbox("Augmentation", augment.names() + [CUSTOM_AUGMENTATION], key="train.augmentation",
                           format_func=lambda n: "Custom…" if n == CUSTOM_AUGMENTATION else augment.info(n).title,
                           help="Random changes to training images, new ones every epoch, each image its own.")
    if choice_ != CUSTOM_AUGMENTATION:
        return choice_
    text = st.text_input("Augmentation steps", key="train.aug_steps",
                         help="In order, separated by ';', each name:key=value,…: e.g. flip;crop:scale=0.6;"
                              f"jitter:brightness=0.4;erase. Steps: {', '.join(augment.step_names())}. "
                              "The Data augmentation page shows what each does.")
    return augment.parse(text)


def augmentation_warnings_ui(spec: str | list[dict], data_name: str) -> None:
    """Say which steps make images the test set of `data_name` never shows (mirrored digits, …)."""
    messages = augment.warnings(spec, data_name)
    for message in messages:
        st.warning(message)
    if messages:
        better = augment.suggested(data_name)
        st.info(f"For this data set, try the augmentation **{augment.info(better).title}** ({better}).")


def train_lab_url(spec: str | list[dict], data_name: str) -> str:
    """A link opening Train Lab on `data_name` with augmentation `spec` (a preset or steps)."""
    if isinstance(spec, str):
        return f"/train_lab?data={data_name}&aug={spec}"
    return f"/train_lab?data={data_name}&aug={CUSTOM_AUGMENTATION}&augs={quote(augment.to_text(spec))}"


def train_config_ui() -> tuple[TrainConfig, Dataset] | None:
    """All the Train Lab controls (inside the page frame of FIELDS and PRESETS); None, with the reason
    shown, when no valid set-up exists yet — the results and runs below stay usable."""
    dataset = dataset_ui()
    if dataset is None:
        return None
    try:
        name, options, init = model_ui()
        config = TrainConfig(data=dataset.name, image_size=dataset.image_size, model=name,
                             model_options=options, init=init, seed=seed(), **optimization_ui(len(dataset.train)))
        models.build(name, in_channels=dataset.channels, num_classes=len(dataset.class_names),
                     image_size=dataset.image_size, **options)  # checks the options now, not at Train
    except UserInputError as error:
        st.error(str(error))
        return None
    augmentation_warnings_ui(config.augmentation, dataset.name)
    return config, dataset
