"""Saliency & Grad-CAM: several attribution methods side by side for one image and a chosen class, on the
user's own model, with the Adebayo et al. sanity check (the same map for a model with random weights)."""

import streamlit as st

from engine.explain import attributions
from engine.errors import UserInputError
from engine.training.metrics import predict_one
from ui.figures.inside import input_rgb, overlay
from ui.lessons import lesson_link_ui
from ui.long_work import tensor_key
from ui.model_picker import subject_and_input_ui, url_fields
from ui.results import top_k_ui
from ui.state import flag, framed_fragment, number, url_state

KEY = "sal"
DEFAULT_METHODS = ["saliency", "grad_cam", "integrated_gradients", "occlusion"]
CACHE_ENTRIES = 32  # attribution maps kept per session
FIELDS = [*url_fields(KEY), number(f"{KEY}.steps", "ig", 16, 2, 128, int), number(f"{KEY}.samples", "sg", 8, 2, 64, int),
          number(f"{KEY}.noise", "noise", 0.15, 0.01, 0.5), number(f"{KEY}.window", "win", 0, 0, 64, int),
          number(f"{KEY}.opacity", "op", 0.6, 0.0, 1.0), flag(f"{KEY}.sanity", "sanity", False)]
PRESETS = {  # ?preset=name, used by the lesson's links
    "sanity": {"sanity": True},
    "smooth": {"ig": 64, "sg": 32, "noise": 0.2},
    "imagenet": {"src": "pretrained", "img": "photo", "photo": "chelsea"},
}


def settings_ui(side: int) -> attributions.AttributionConfig:
    with st.expander("Method settings (defaults are cheap; more steps = smoother, slower)"):
        c1, c2, c3, c4 = st.columns(4)
        steps = c1.slider("IG steps m", 2, 128, key=f"{KEY}.steps", help="Points on the path from black to the image.")
        samples = c2.slider("SmoothGrad samples n", 2, 64, key=f"{KEY}.samples", help="Noisy copies averaged.")
        noise = c3.slider("SmoothGrad σ", 0.01, 0.5, key=f"{KEY}.noise", help="Noise std in pixel units (1 = full range).")
        largest = min(64, side)
        st.session_state[f"{KEY}.window"] = min(st.session_state.get(f"{KEY}.window", 0), largest)
        window = c4.slider("Occlusion patch (px)", 0, largest, key=f"{KEY}.window",
                           help="Side of the gray patch; 0 = a quarter of the image. The stride is half the patch.")
    return attributions.AttributionConfig(steps=steps, samples=samples, noise=noise, window=window)


def target_ui(subject, prediction) -> int:
    probability = dict(prediction.top(len(subject.class_names)))  # every class, the most likely first
    return st.selectbox("Explain the class", list(probability), key=f"{KEY}.target.{subject.label}",
                        format_func=lambda i: f"{subject.class_names[i]} ({probability[i]:.1%})",
                        help="Attributions answer: which pixels raise this class's score? Sorted by probability.")


def layer_ui(subject, x, names) -> str | None:
    """The Grad-CAM layer: the user's pick among the layers with a spatial map (ViT tokens keep theirs)."""
    if subject.reshape is not None or not any(attributions.method(n).needs_layer for n in names):
        return subject.gradcam_layer
    choices, default = attributions.grad_cam_layers(subject.model, x, subject.gradcam_layer)
    if not choices:
        return None
    key = f"{KEY}.layer.{subject.label}"
    if st.session_state.get(key) not in choices:
        st.session_state[key] = default
    return st.selectbox("Grad-CAM layer", choices, key=key, help="Deeper = more about the class, coarser in space; "
                        f"the default is the deepest layer whose map is at least {attributions.MIN_CAM_SIDE} pixels wide.")


def _compute(model, x, name, target, subject, config, tag, layer):
    """One map, cached per session by (model, image, method, class, layer, settings); slow ones show progress."""
    key = (tag, subject.label, tensor_key(x), name, target, layer, config)
    cache = st.session_state.setdefault(f"{KEY}.cache", {})
    if key not in cache:
        bar = st.progress(0.0, text=f"{attributions.method(name).title}…")  # a large model takes seconds even for one pass
        cache[key] = attributions.attribute(model, x, name, target=target, layer=layer,
                                            reshape=subject.reshape, config=config,
                                            progress=lambda f, m: bar.progress(f, text=m))
        bar.empty()
        while len(cache) > CACHE_ENTRIES:
            cache.pop(next(iter(cache)))
    return cache[key]


def randomized(subject):
    store = st.session_state.setdefault(f"{KEY}.random_models", {})
    if subject.label not in store:
        store.clear()
        store[subject.label] = attributions.randomized_copy(subject.model, seed=0)
    return store[subject.label]


@framed_fragment(FIELDS)
def render_maps(subject, x, target, names, config, layer) -> None:
    opacity = st.slider("Overlay opacity", 0.0, 1.0, key=f"{KEY}.opacity", help="0 = only the image, 1 = only the map.")
    sanity = st.toggle("Sanity check: also explain a copy with random weights", key=f"{KEY}.sanity",
                       help="Adebayo et al. 2018: a method whose map hardly changes is not explaining the model.")
    cancel = st.empty()
    if subject.image_size > 64 or any(attributions.method(n).slow for n in names):
        cancel.button("Cancel", key=f"{KEY}.cancel", help="Stop a slow computation (the page reruns; finished maps stay).")
    columns = st.columns(min(4, len(names)))
    for i, name in enumerate(names):
        entry = attributions.method(name)
        with columns[i % len(columns)]:
            st.markdown(f"**{entry.title}**")
            reason = attributions.unavailable(name, subject.model, layer=layer)
            if reason:
                st.warning(reason)
                continue
            try:
                result = _compute(subject.model, x, name, target, subject, config, "trained", layer)
            except UserInputError as error:  # a fragment rerun does not reach the page's handler
                st.error(str(error))
                continue
            st.image(overlay(x[0], result.heat, signed=result.signed, opacity=opacity),
                     caption=f"{result.seconds:.2f} s" + (" · red +, blue −" if result.signed else ""))
            if result.note:
                st.info(result.note)
            if sanity:
                check = _compute(randomized(subject), x, name, target, subject, config, "random", layer)
                rho = attributions.rank_correlation(result.heat, check.heat)
                st.image(overlay(x[0], check.heat, signed=check.signed, opacity=opacity),
                         caption=f"random weights · rank correlation ρ = {rho:.2f}")
            st.caption(entry.description)
    cancel.empty()
    st.markdown("**How each map is computed** ($S_y$: the class score before softmax, $x$: the image)")
    for name in names:
        st.latex(rf"\text{{{attributions.method(name).title}:}}\quad " + attributions.method(name).formula)


def render() -> None:
    chosen = subject_and_input_ui(KEY)
    if chosen is None:
        return
    subject, x, truth = chosen
    prediction = predict_one(subject.model, x)
    a, b = st.columns([1, 2])
    a.image(input_rgb(x[0], 224), caption=f"Input {tuple(x.shape[1:])}" + (f" — true: {truth}" if truth else ""))
    with b:
        top_k_ui(subject.class_names, prediction.probabilities, k=5, key=f"{KEY}.topk")
        target = target_ui(subject, prediction)
    names = st.pills("Methods", attributions.names(), selection_mode="multi", default=DEFAULT_METHODS,
                     format_func=lambda n: attributions.method(n).title, key=f"{KEY}.methods",
                     help="Guided methods need a ReLU network; Grad-CAM needs a conv layer.") or []
    config = settings_ui(subject.image_size)
    if not names:
        st.info("Pick at least one method.")
        return
    render_maps(subject, x, target, names, config, layer_ui(subject, x, names))


st.title("Saliency & Grad-CAM")
lesson_link_ui("app_pages/inside_cnn/saliency.py")
st.markdown("Why did the model say that? Each method below assigns every pixel a share of the chosen class's "
            "score $S_y$, computed on your model now. Compare them, then switch on the sanity check.")
with url_state(FIELDS, PRESETS):
    render()
