"""Activation maps & filters: what every layer of a real CNN computes for one image, what its filters look
like, which images excite a channel, and what image a channel would like to see (feature visualization)."""

import streamlit as st

from engine.explain import features
from engine.errors import UserInputError
from ui.figures.inside import enlarged_map, filter_grid, input_rgb, map_grid
from ui.images import tile
from ui.lessons import lesson_link_ui
from ui.jobs import computed
from ui.long_work import remembered, tensor_key
from ui.model_picker import subject_and_input_ui, url_fields
from ui.state import choice, flag, number, url_state

KEY = "fmaps"
TOP_K, SCAN_LIMIT = 6, 2000  # images shown per channel; training images scanned at most
VIS_SLIDERS = [  # VisConfig field, URL name, label, low, high, default, step, help
    ("steps", "steps", "Steps", 8, 512, 64, 1, "Gradient-ascent steps on the pixels."),
    ("jitter", "jit", "Jitter (px)", 0, 16, 2, 1, "Random shift each step: no pixel-exact tricks."),
    ("blur_every", "blur", "Blur every", 0, 16, 4, 1, "Steps between small Gaussian blurs (0 = never): removes "
     "high-frequency noise."),
    ("decay", "decay", "Decay", 0.0, 0.2, 0.01, 0.005, "Pull towards gray each step: keeps contrast in check."),
]
FIELDS = [*url_fields(KEY), flag(f"{KEY}.shared", "shared", False), number(f"{KEY}.channel", "ch", 0, 0, 4095, int),
          choice(f"{KEY}.objective", "obj", "channel", list(features.OBJECTIVES)),
          *(number(f"{KEY}.{k}", p, d, lo, hi, type(d)) for k, p, _, lo, hi, d, _, _ in VIS_SLIDERS)]
PRESETS = {  # ?preset=name, used by the lesson's links
    "photo": {"img": "photo", "photo": "chelsea"},
    "deepdream": {"obj": "layer", "steps": 128},
    "neuron": {"obj": "neuron", "steps": 96},
}


def layer_ui(layers: list, label: str, key: str, default: int = 0) -> int:
    names = [f"{m.name} · {m.kind} · {tuple(m.maps.shape)}" for m in layers]
    return st.selectbox(label, range(len(names)), index=min(default, len(names) - 1), format_func=names.__getitem__,
                        key=f"{key}.{len(names)}",
                        help="Modules in the order the forward pass runs them; (C, H, W) = channels × height × width.")


def layer_maps(subject, x) -> list:
    """Every layer's maps for this model and image, kept for the session (one entry: they can be large)."""
    return remembered(f"{KEY}.maps", (subject.label, tensor_key(x)), lambda: features.activation_maps(subject.model, x),
                      spinner="Running the image through the network…")


def render_maps(subject, x) -> list:
    layers = layer_maps(subject, x)
    if not layers:
        st.info(f"{subject.label} has no convolution, activation or pooling layer with spatial maps "
                "(an MLP or linear model): pick a CNN to see feature maps.")
        return []
    with st.expander("The network layer by layer (first 8 channels of every layer)", expanded=False):
        for layer in layers[:40]:
            st.image(map_grid(layer.maps[:8], columns=8, tile_px=48), caption=f"{layer.name} ({layer.kind}) "
                     f"{tuple(layer.maps.shape)}")
    chosen = layers[layer_ui(layers, "Layer", f"{KEY}.layer")]
    shared = st.toggle("One colour scale for all channels", key=f"{KEY}.shared",
                       help="Off: each map uses its own range (shows patterns). On: compare strengths between channels.")
    left, right = st.columns([3, 2])
    left.image(map_grid(chosen.maps, shared_scale=shared), caption=f"{len(chosen.maps)} channels of {chosen.name}"
               + (f" (first {min(64, len(chosen.maps))})" if len(chosen.maps) > 64 else "") + "; yellow = high, dark = low")
    st.session_state[f"{KEY}.channel"] = min(int(st.session_state.get(f"{KEY}.channel", 0)), len(chosen.maps) - 1)
    channel = right.number_input("Enlarge channel", 0, len(chosen.maps) - 1, key=f"{KEY}.channel",
                                 help="Channel index, counting across the grid row by row from 0.")
    low, high, mean = chosen.channel_range(channel)
    right.image(enlarged_map(chosen.maps[channel], 224),
                caption=f"channel {channel}: min {low:.3g}, max {high:.3g}, mean {mean:.3g}")
    return layers


def render_filters(subject) -> None:
    try:
        name, weights = features.conv_filters(subject.model)
    except UserInputError as error:
        st.info(str(error))
        return
    kind = "colour (R, G, B)" if weights.shape[1] == 3 else "first input channel"
    st.image(filter_grid(weights), caption=f"{len(weights)} filters of {name}, {tuple(weights.shape[1:])} each, "
             f"shown in {kind}: red/bright = positive weight, blue/dark = negative")
    st.latex(r"y_{o}(i,j) = b_o + \sum_{c}\sum_{u,v} w_{o,c,u,v}\, x_c(i+u,\,j+v)")


def render_top_images(subject, layers) -> None:
    if subject.dataset is None:
        st.info("Top-activating images need the training data: available for runs trained in this session.")
        return
    chosen = layers[layer_ui(layers, "Layer to scan", f"{KEY}.top_layer", len(layers) - 1)]
    images = subject.dataset.train.x[:SCAN_LIMIT]
    top = features.top_activating(subject.model, images, chosen.name, k=TOP_K)
    shown = top.images(images, channels=8)  # (channels · k, C, H, W), one channel's images after another
    st.caption(f"Each row: the {TOP_K} of {len(images)} training images with the highest mean activation in one "
               f"channel of {chosen.name} (first {len(shown) // TOP_K} channels).")
    st.image(tile(shown, TOP_K, gap=3, upscale_to=40),
             caption="rows = channels 0, 1, 2, …; left = strongest")


def render_visualization(subject, layers) -> None:
    objective = st.segmented_control("Maximize", list(features.OBJECTIVES), key=f"{KEY}.objective",
                                     help="neuron: one unit at the map's centre; channel: a whole map's mean; "
                                          "layer: every unit (DeepDream); logit: a class score.") or "channel"
    if objective == "logit":
        layer, count = None, len(subject.class_names)
    else:
        first_activation = next((i for i, m in enumerate(layers) if m.kind == "activation"), 0)
        chosen = layers[layer_ui(layers, "Layer to visualize", f"{KEY}.vis_layer", first_activation)]
        layer, count = chosen.name, len(chosen.maps)
    index = st.number_input("Channel or class", 0, count - 1, 0, key=f"{KEY}.vis_index.{count}", disabled=objective == "layer",
                            help="Which channel (or, for logit, which class) to excite.")
    if objective == "logit":
        st.caption(f"Class {index}: {subject.class_names[index]}")
    settings = {k: column.slider(label, lo, hi, step=step, key=f"{KEY}.{k}", help=text)
                for column, (k, _, label, lo, hi, _, step, text) in zip(st.columns(4), VIS_SLIDERS)}
    config = features.VisConfig(image_size=features.canvas_size(objective, subject.image_size), **settings)
    target = features.Objective(objective, layer, int(index))
    st.latex(r"x^{*} = \arg\max_{x}\ a(x) - \lambda\,\lVert x - \tfrac12\rVert^2 \quad\text{(jitter and blur between steps)}")
    cache_key = (subject.label, target, config)
    image = computed(f"{KEY}.vis", cache_key, features.visualize, label="Feature visualization",
                     start_button="Visualize", start_help="Start from gray noise and climb the gradient.",
                     model=subject.model, objective=target, channels=subject.channels, config=config)
    if image is not None:
        st.image(input_rgb(image, 256), caption=f"What excites {objective} {index}" + (f" of {layer}" if layer else ""))


def render() -> None:
    chosen = subject_and_input_ui(KEY)
    if chosen is None:
        return
    subject, x, truth = chosen
    st.image(input_rgb(x[0], 160), caption=f"What the model sees: {tuple(x.shape[1:])}"
               + (f" — true class {truth}" if truth else ""))
    st.header("Activation maps")
    layers = render_maps(subject, x)
    if not layers:
        return
    st.header("Learned filters")
    render_filters(subject)
    st.header("Images that excite a channel most")
    render_top_images(subject, layers)
    st.header("Feature visualization")
    render_visualization(subject, layers)


st.title("Activation maps & filters")
lesson_link_ui("app_pages/inside_cnn/feature_maps.py")
st.markdown("Every conv layer turns its input into a stack of **feature maps**, one per filter. Pick a model and an "
            "image and look at them layer by layer: early layers respond to edges and blobs, later ones to parts.")
with url_state(FIELDS, PRESETS):
    render()
