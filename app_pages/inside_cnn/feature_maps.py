"""Activation maps & filters: what every layer of a real CNN computes for one image, what its filters look
like, which images excite a channel, and what image a channel would like to see (feature visualization)."""

import hashlib

import streamlit as st

from engine.explain import features
from engine.errors import UserInputError
from ui.figures.inside import filter_grid, input_rgb, map_grid, viridis
from ui.images import tile
from ui.lessons import lesson_link_ui
from ui.model_picker import subject_and_input_ui, url_fields
from ui.state import choice, flag, number, url_state

KEY = "fmaps"
TOP_K, SCAN_LIMIT = 6, 2000  # images shown per channel; training images scanned at most
FIELDS = [*url_fields(KEY), flag(f"{KEY}.shared", "shared", False), number(f"{KEY}.channel", "ch", 0, 0, 4095, int),
          choice(f"{KEY}.objective", "obj", "channel", list(features.OBJECTIVES)),
          number(f"{KEY}.steps", "steps", 64, 8, 512, int), number(f"{KEY}.jitter", "jit", 2, 0, 16, int),
          number(f"{KEY}.blur", "blur", 4, 0, 16, int), number(f"{KEY}.decay", "decay", 0.01, 0.0, 0.2)]


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
    key = (subject.label, hashlib.sha1(x.numpy().tobytes()).hexdigest())
    stored = st.session_state.get(f"{KEY}.maps")
    if stored is None or stored[0] != key:
        with st.spinner("Running the image through the network…"):
            stored = (key, features.activation_maps(subject.model, x))
        st.session_state[f"{KEY}.maps"] = stored
    return stored[1]


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
    values = chosen.maps[channel]
    right.image(viridis(values).repeat(max(1, 224 // values.shape[-1]), 0).repeat(max(1, 224 // values.shape[-1]), 1),
                caption=f"channel {channel}: min {float(values.min()):.3g}, max {float(values.max()):.3g}, "
                        f"mean {float(values.mean()):.3g}")
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
    channels = min(8, len(top.indices))
    st.caption(f"Each row: the {TOP_K} of {len(images)} training images with the highest mean activation in one "
               f"channel of {chosen.name} (first {channels} channels).")
    st.image(tile(images[top.indices[:channels].flatten()], TOP_K, gap=3, upscale_to=40),
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
    index = st.number_input("Channel or class", 0, count - 1, 0, key=f"{KEY}.vis_index.{count}",
                            help="Which channel (or, for logit, which class) to excite.",
                            disabled=objective == "layer")
    if objective == "logit":
        st.caption(f"Class {index}: {subject.class_names[index]}")
    c1, c2, c3, c4 = st.columns(4)
    steps = c1.slider("Steps", 8, 512, key=f"{KEY}.steps", help="Gradient-ascent steps on the pixels.")
    jitter = c2.slider("Jitter (px)", 0, 16, key=f"{KEY}.jitter", help="Random shift each step: no pixel-exact tricks.")
    blur = c3.slider("Blur every", 0, 16, key=f"{KEY}.blur",
                     help="Steps between small Gaussian blurs (0 = never): removes high-frequency noise.")
    decay = c4.slider("Decay", 0.0, 0.2, step=0.005, key=f"{KEY}.decay",
                      help="Pull towards gray each step: keeps contrast in check.")
    # A logit needs the model's own input size; a conv layer takes any size, and a larger canvas shows more.
    size = subject.image_size if objective == "logit" else min(128, max(32, subject.image_size))
    config = features.VisConfig(image_size=size, steps=steps, jitter=jitter, blur_every=blur, decay=decay)
    target = features.Objective(objective, layer, int(index))
    st.latex(r"x^{*} = \arg\max_{x}\ a(x) - \lambda\,\lVert x - \tfrac12\rVert^2 \quad\text{(jitter and blur between steps)}")
    cache_key = (subject.label, target, config)
    if st.button("Visualize", type="primary", key=f"{KEY}.go", help="Start from gray noise and climb the gradient."):
        cancel = st.empty()
        cancel.button("Cancel", key=f"{KEY}.cancel", help="Stop now (the page reruns).")
        bar = st.progress(0.0, text="Starting…")
        image = features.visualize(subject.model, target, channels=subject.channels, config=config,
                                   progress=lambda f, m: bar.progress(f, text=m))
        bar.empty()
        cancel.empty()
        st.session_state[f"{KEY}.vis"] = (cache_key, image)
    stored = st.session_state.get(f"{KEY}.vis")
    if stored and stored[0] == cache_key:
        st.image(input_rgb(stored[1], 256), caption=f"What excites {objective} {index}" + (f" of {layer}" if layer else ""))


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
