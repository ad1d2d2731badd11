"""Robustness & adversarial examples: the challenges of image classification as sliders with the prediction
updating, an occlusion confidence map, and FGSM/PGD attacks with ε in pixel units (the panda slide)."""

import streamlit as st

from engine.explain import robustness
from engine.training.metrics import predict_one
from ui.figures.inside import eps_curve, input_rgb, occlusion_figure, perturbation_rgb
from ui.lessons import lesson_link_ui
from ui.jobs import computed
from ui.long_work import tensor_key
from ui.model_picker import subject_and_input_ui, url_fields
from ui.results import top_k_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, framed_fragment, number, url_state

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
          number(f"{KEY}.patch", "patch", 0.25, 0.05, 0.5), choice(f"{KEY}.attack", "atk", "fgsm", list(robustness.ATTACKS)),
          number(f"{KEY}.eps", "eps", 0.03, 0.0, 0.3), number(f"{KEY}.pgd_steps", "pgd", 10, 1, 50, int)]
FORMULAS = {
    "fgsm": r"x_{\text{adv}} = \operatorname{clip}_{[0,1]}"
            r"\big(x + \varepsilon\,\operatorname{sign}\nabla_x \mathcal L(f(x), y)\big)",
    "pgd": r"x^{t+1} = \Pi_{\lVert x' - x\rVert_\infty \le \varepsilon}\big(x^{t} + \alpha\,\operatorname{sign}"
           r"\nabla_x \mathcal L(f(x^{t}), y)\big),\ \alpha = 2.5\varepsilon/T",
}
PRESETS = {  # ?preset=name, used by the lesson's links
    "panda": {"src": "pretrained", "img": "photo", "photo": "chelsea", "atk": "fgsm", "eps": 0.007},
    "pgd": {"atk": "pgd", "eps": 0.05, "pgd": 20},
    "dark": {"br": -0.3, "gm": 2.0},
    "turned": {"rot": 90.0},
}


def caption(subject, prediction) -> str:
    return f"{subject.class_names[prediction.best]} ({prediction.confidence:.0%})"


@framed_fragment(FIELDS)
def render_challenges(subject, x) -> None:
    columns = st.columns(3)
    values = {}
    for i, (k, _, label, lo, hi, _, step, help_text) in enumerate(SLIDERS):
        values[k] = columns[i // 3].slider(label, lo, hi, step=step, key=f"{KEY}.{k}", help=help_text)
    edited = robustness.corrupt(x, robustness.Corruption(**values, seed=seed()))
    before, after = predict_one(subject.model, x), predict_one(subject.model, edited)
    a, b, c = st.columns([1, 1, 2])
    a.image(input_rgb(x[0], SHOW_PX), caption=f"original: {caption(subject, before)}")
    b.image(input_rgb(edited[0], SHOW_PX), caption=f"edited: {caption(subject, after)}")
    with c:
        top_k_ui(subject.class_names, after.probabilities, k=3, key=f"{KEY}.edited_bars")
    if after.best != before.best:
        st.warning(f"The edit changed the prediction from **{subject.class_names[before.best]}** to "
                   f"**{subject.class_names[after.best]}** — a human would still see the same thing.")


@framed_fragment(FIELDS)
def render_occlusion(subject, x) -> None:
    best = predict_one(subject.model, x)
    fraction = st.slider("Patch size (fraction of the side)", 0.05, 0.5, step=0.05, key=f"{KEY}.patch",
                         help="A gray square slides over the image with a stride of half its side.")
    patch, stride = robustness.occlusion_window(x.shape[-1], fraction=fraction)
    heat = computed(f"{KEY}.occ", (subject.label, tensor_key(x), best.best, patch), robustness.occlusion_heatmap,
                    label="Occlusion scan", model=subject.model, x=x, target=best.best, patch=patch, stride=stride)
    if heat is None:
        return
    a, b = st.columns([1, 2])
    a.image(input_rgb(x[0], SHOW_PX), caption=f"predicted: {subject.class_names[best.best]}")
    b.plotly_chart(occlusion_figure(heat, subject.class_names[best.best], patch=patch, stride=stride,
                                    unoccluded=best.confidence, presenter=presenter_mode()), key=f"{KEY}.occ_fig")
    st.caption("Dark cells: hiding that region makes the model much less sure — the evidence it relies on.")


@framed_fragment(FIELDS)
def render_adversarial(subject, x, truth) -> None:
    before = predict_one(subject.model, x)
    label = subject.class_names.index(truth) if truth in subject.class_names else before.best
    c1, c2, c3 = st.columns(3)
    method = c1.radio("Attack", robustness.ATTACKS, format_func=str.upper, horizontal=True, key=f"{KEY}.attack",
                      help="FGSM: one step along the gradient's sign. PGD: many small steps, kept inside the ε-ball.")
    eps = c2.slider("ε (pixel units)", 0.0, 0.3, step=0.001, key=f"{KEY}.eps", format="%.3f",
                    help="Largest change of any pixel; 8/255 ≈ 0.03 is invisible on photos.")
    steps = c3.slider("PGD steps", 1, 50, key=f"{KEY}.pgd_steps", disabled=method != "pgd", help="Iterations of PGD.")
    st.latex(FORMULAS[method])
    bar = st.progress(0.0, text=f"{method.upper()}…")
    result = robustness.attack(subject.model, x, label, method=method, eps=eps, steps=steps, seed=seed(),
                               progress=lambda f, m: bar.progress(f, text=m))
    after = predict_one(subject.model, result.adversarial)
    a, b, c = st.columns(3)
    a.image(input_rgb(x[0], SHOW_PX), caption=f"x: {caption(subject, before)}")
    b.image(perturbation_rgb(result.delta[0], eps, SHOW_PX), caption=f"x_adv − x, magnified ×{0.5 / max(eps, 1e-9):.0f}: "
            f"gray = unchanged, largest change {result.linf:.3f}")
    c.image(input_rgb(result.adversarial[0], SHOW_PX), caption=f"x_adv: {caption(subject, after)}")
    bar.progress(0.0, text="FGSM at 16 values of ε…")
    sweep = robustness.eps_curve(subject.model, x, label, around=eps, progress=lambda f, m: bar.progress(f, text=m))
    bar.empty()
    curves = {subject.class_names[sweep.label]: sweep.label_probability,
              subject.class_names[sweep.rival]: sweep.rival_probability}
    st.plotly_chart(eps_curve(sweep.eps, curves, chosen=eps, presenter=presenter_mode()), key=f"{KEY}.eps_curve")


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
