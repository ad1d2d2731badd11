"""Robustness & adversarial examples: the challenges of image classification as sliders with the prediction
updating, an occlusion confidence map, and FGSM/PGD attacks with ε in pixel units (the panda slide)."""

import hashlib

import streamlit as st
import torch

from engine.explain import robustness
from engine.training.trainer import predict
from ui.figures.inside import eps_curve, input_rgb, occlusion_figure, perturbation_rgb
from ui.figures.train import top_k_bars
from ui.lessons import lesson_link_ui
from ui.model_picker import subject_and_input_ui, url_fields
from ui.sidebar import presenter_mode, seed
from ui.state import choice, number, url_state, write_to_url

KEY = "robust"
SHOW_PX = 200
SLIDERS = [  # key, URL name, label, low, high, default, step, help
    ("brightness", "br", "Brightness", -0.5, 0.5, 0.0, 0.05, "Added to every pixel (illumination)."),
    ("contrast", "ct", "Contrast", 0.0, 3.0, 1.0, 0.1, "Factor around the image's mean (illumination)."),
    ("gamma", "gm", "Gamma", 0.2, 5.0, 1.0, 0.1, "x ↦ x^γ: >1 darkens mid-tones, <1 brightens them."),
    ("rotation", "rot", "Rotation (°)", -180.0, 180.0, 0.0, 5.0, "Viewpoint: turn the image about its centre."),
    ("scale", "sc", "Scale", 0.3, 3.0, 1.0, 0.1, "Zoom in (>1) or out (<1) about the centre."),
    ("shift", "sh", "Shift", -0.5, 0.5, 0.0, 0.05, "Translate right/down by this fraction of the side."),
    ("elastic", "el", "Elastic (px)", 0.0, 8.0, 0.0, 0.5, "Deformation: a smooth random warp of up to this many pixels."),
    ("noise", "nz", "Noise σ", 0.0, 0.5, 0.0, 0.02, "Gaussian pixel noise (pixel units)."),
    ("blur", "bl", "Blur σ (px)", 0.0, 4.0, 0.0, 0.25, "Gaussian blur (out of focus)."),
]
FIELDS = [*url_fields(KEY), *(number(f"{KEY}.{k}", p, d, lo, hi) for k, p, _, lo, hi, d, _, _ in SLIDERS),
          number(f"{KEY}.patch", "patch", 0.25, 0.05, 0.5), choice(f"{KEY}.attack", "atk", "fgsm", ["fgsm", "pgd"]),
          number(f"{KEY}.eps", "eps", 0.03, 0.0, 0.3), number(f"{KEY}.pgd_steps", "pgd", 10, 1, 50, int)]
PRESETS = {  # ?preset=name, used by the lesson's links
    "panda": {"src": "pretrained", "img": "photo", "photo": "chelsea", "atk": "fgsm", "eps": 0.007},
    "pgd": {"atk": "pgd", "eps": 0.05, "pgd": 20},
    "dark": {"br": -0.3, "gm": 2.0},
    "turned": {"rot": 90.0},
}


def prediction(subject, x) -> tuple[int, float, torch.Tensor]:
    probabilities = predict(subject.model, x)[0]
    best = int(probabilities.argmax())
    return best, float(probabilities[best]), probabilities


def bars(subject, probabilities, key: str):
    top = probabilities.topk(min(3, len(probabilities)))
    pairs = [(subject.class_names[i], float(p)) for p, i in zip(top.values, top.indices.tolist())]
    st.plotly_chart(top_k_bars(pairs, presenter=presenter_mode()), key=key)


@st.fragment
def render_challenges(subject, x) -> None:
    columns = st.columns(3)
    values = {}
    for i, (k, _, label, lo, hi, _, step, help_text) in enumerate(SLIDERS):
        values[k] = columns[i // 3].slider(label, lo, hi, step=step, key=f"{KEY}.{k}", help=help_text)
    edited = robustness.corrupt(x, robustness.Corruption(**values, seed=seed()))
    (b0, p0, _), (b1, p1, probs) = prediction(subject, x), prediction(subject, edited)
    a, b, c = st.columns([1, 1, 2])
    a.image(input_rgb(x[0], SHOW_PX), caption=f"original: {subject.class_names[b0]} ({p0:.0%})")
    b.image(input_rgb(edited[0], SHOW_PX), caption=f"edited: {subject.class_names[b1]} ({p1:.0%})")
    with c:
        bars(subject, probs, f"{KEY}.edited_bars")
    if b1 != b0:
        st.warning(f"The edit changed the prediction from **{subject.class_names[b0]}** to **{subject.class_names[b1]}** "
                   "— a human would still see the same thing.")
    write_to_url(FIELDS)  # a fragment rerun does not reach the page's own call


@st.fragment
def render_occlusion(subject, x) -> None:
    best, p_best, _ = prediction(subject, x)
    side = x.shape[-1]
    fraction = st.slider("Patch size (fraction of the side)", 0.05, 0.5, step=0.05, key=f"{KEY}.patch",
                         help="A gray square slides over the image with a stride of half its side.")
    patch = max(1, round(fraction * side))
    stride = max(1, patch // 2)
    key = (subject.label, hashlib.sha1(x.numpy().tobytes()).hexdigest(), best, patch)
    if st.session_state.get(f"{KEY}.occ", (None,))[0] != key:
        cancel = st.empty()
        cancel.button("Cancel", key=f"{KEY}.occ_cancel", help="Stop the scan (the page reruns).")
        bar = st.progress(0.0, text="Occluding…")
        heat = robustness.occlusion_heatmap(subject.model, x, best, patch=patch, stride=stride,
                                            progress=lambda f, m: bar.progress(f, text=m))
        bar.empty()
        cancel.empty()
        st.session_state[f"{KEY}.occ"] = (key, heat)
    heat = st.session_state[f"{KEY}.occ"][1]
    a, b = st.columns([1, 2])
    a.image(input_rgb(x[0], SHOW_PX), caption=f"predicted: {subject.class_names[best]}")
    b.plotly_chart(occlusion_figure(heat, subject.class_names[best], patch=patch, stride=stride, unoccluded=p_best,
                                    presenter=presenter_mode()), key=f"{KEY}.occ_fig")
    st.caption("Dark cells: hiding that region makes the model much less sure — the evidence it relies on.")
    write_to_url(FIELDS)


@st.fragment
def render_adversarial(subject, x, truth) -> None:
    best, _, _ = prediction(subject, x)
    label = subject.class_names.index(truth) if truth in subject.class_names else best
    c1, c2, c3 = st.columns(3)
    attack = c1.radio("Attack", ["fgsm", "pgd"], format_func=str.upper, horizontal=True, key=f"{KEY}.attack",
                      help="FGSM: one step along the gradient's sign. PGD: many small steps, kept inside the ε-ball.")
    eps = c2.slider("ε (pixel units)", 0.0, 0.3, step=0.001, key=f"{KEY}.eps", format="%.3f",
                    help="Largest change of any pixel; 8/255 ≈ 0.03 is invisible on photos.")
    steps = c3.slider("PGD steps", 1, 50, key=f"{KEY}.pgd_steps", disabled=attack != "pgd", help="Iterations of PGD.")
    if attack == "fgsm":
        st.latex(r"x_{\text{adv}} = \operatorname{clip}_{[0,1]}"
                 r"\big(x + \varepsilon\,\operatorname{sign}\nabla_x \mathcal L(f(x), y)\big)")
        adv = robustness.fgsm(subject.model, x, label, eps=eps)
    else:
        st.latex(r"x^{t+1} = \Pi_{\lVert x' - x\rVert_\infty \le \varepsilon}"
                 r"\big(x^{t} + \alpha\,\operatorname{sign}\nabla_x \mathcal L(f(x^{t}), y)\big),"
                 r"\ \alpha = 2.5\varepsilon/T")
        bar = st.progress(0.0, text="PGD…")
        adv = robustness.pgd(subject.model, x, label, eps=eps, steps=steps, seed=seed(),
                             progress=lambda f, m: bar.progress(f, text=m))
        bar.empty()
    (b0, p0, _), (b1, p1, _) = prediction(subject, x), prediction(subject, adv)
    a, b, c = st.columns(3)
    a.image(input_rgb(x[0], SHOW_PX), caption=f"x: {subject.class_names[b0]} ({p0:.0%})")
    b.image(perturbation_rgb((adv - x)[0], eps, SHOW_PX), caption=f"x_adv − x, magnified ×{0.5 / max(eps, 1e-9):.0f}: "
            f"gray = unchanged, largest change {robustness.linf(adv, x):.3f}")
    c.image(input_rgb(adv[0], SHOW_PX), caption=f"x_adv: {subject.class_names[b1]} ({p1:.0%})")
    grid = [round(i * max(0.02, 2 * eps) / 15, 5) for i in range(16)]  # around the chosen ε
    bar = st.progress(0.0, text="FGSM at 16 values of ε…")
    probs = robustness.fgsm_sweep(subject.model, x, label, grid, progress=lambda f, m: bar.progress(f, text=m))
    bar.empty()
    runner_up = int(probs[-1].argmax()) if int(probs[-1].argmax()) != label else int(probs[-1].topk(2).indices[1])
    curves = {subject.class_names[label]: probs[:, label].tolist(), subject.class_names[runner_up]: probs[:, runner_up].tolist()}
    st.plotly_chart(eps_curve(grid, curves, chosen=eps, presenter=presenter_mode()), key=f"{KEY}.eps_curve")
    write_to_url(FIELDS)


def render() -> None:
    chosen = subject_and_input_ui(KEY)
    if chosen is None:
        return
    subject, x, truth = chosen
    st.header("The challenges, one slider each")
    render_challenges(subject, x)
    st.header("Occlusion: which region does the model need?")
    render_occlusion(subject, x)
    st.header("Adversarial examples")
    render_adversarial(subject, x, truth)


st.title("Robustness & adversarial examples")
lesson_link_ui("app_pages/inside_cnn/robustness.py")
st.markdown("A classifier must survive changes of light, pose, scale, deformation and occlusion — and tiny "
            "changes chosen by an attacker. Move the sliders and watch the prediction of a real model.")
with url_state(FIELDS, PRESETS):
    render()
