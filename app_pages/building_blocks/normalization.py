"""Normalization: BatchNorm in train vs eval mode, running statistics, γ/β, batch size, folding, and BN/LN/IN/GN axes."""

import streamlit as st

from engine import data
from engine.layers import normalization
from engine.training.config import TrainConfig
from ui.figures.normalization import batch_dependence, norm_groups, overlaid_histograms, running_stats
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.results import trained_runs_ui
from ui.state import choice, number, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job, curves_ui

BATCH_SIZES = [2, 4, 8, 16, 32, 64, 128, 256]
FIELDS = [choice("bn.data", "data", "digits", data.names()), number("bn.momentum", "mom", 0.1, 0.01, 1.0),
          number("bn.steps", "steps", 5, 0, 500, int), number("bn.batch", "bs", 32, 2, 256, int),
          number("bn.gamma", "gamma", 0.5, -3.0, 3.0), number("bn.beta", "beta", 1.0, -3.0, 3.0),
          number("bn.lr", "lr", 0.01, 1e-5, 1.0), number("bn.train_batch", "tbs", 64, 2, 512, int),
          number("bn.epochs", "ep", 3, 1, 30, int), number("bn.groups", "groups", 2, 1, 6, int)]
PRESETS = {"untrained_eval": {"steps": 0}, "converged": {"steps": 300, "mom": 0.1},
           "tiny_batch": {"bs": 2, "tbs": 4}, "high_lr": {"lr": 0.05, "ep": 5}}


def data_ui():
    name = st.selectbox("Data set", data.names(), key="bn.data", format_func=lambda n: data.info(n).title,
                        help="Whose images feed the BatchNorm layers on this page.")
    return load_dataset(name, None, seed())


def render_train_vs_eval(dataset) -> None:
    a, b, c = st.columns(3)
    momentum = a.slider("Momentum", 0.01, 1.0, step=0.01, key="bn.momentum",
                        help="running ← (1 − momentum)·running + momentum·batch statistic (PyTorch's convention).")
    steps = b.slider("Training steps so far", 0, 500, key="bn.steps",
                     help="Batches the BatchNorm has seen in train mode; 0 = running mean 0, variance 1.")
    batch = c.select_slider("Batch size", BATCH_SIZES, key="bn.batch", help="Images per training batch.")
    st.latex(r"\text{train: } \hat x = \frac{x - \mu_\mathcal{B}}{\sqrt{\sigma_\mathcal{B}^2 + \epsilon}},\qquad"
             r"\text{eval: } \hat x = \frac{x - \mu_\text{run}}{\sqrt{\sigma_\text{run}^2 + \epsilon}},\qquad y = \gamma\hat x + \beta")
    x = dataset.train.x
    trace = normalization.running_stats(x, batch_size=min(batch, len(x)), momentum=momentum, steps=steps, seed=seed())
    modes = normalization.modes_demo(trace.module, x[:batch])
    left, right = st.columns(2)
    left.plotly_chart(overlaid_histograms({"train mode (this batch's μ, σ²)": modes.train_values,
                                           "eval mode (running μ, σ²)": modes.eval_values},
                                          title="The same batch through BatchNorm", x_title="output, channel 0",
                                          presenter=presenter_mode()), width="stretch", key="bn.modes")
    if steps:
        right.plotly_chart(running_stats(trace, presenter=presenter_mode()), width="stretch", key="bn.trace")
    else:
        right.info("No training steps yet: eval mode uses mean 0 and variance 1, so it passes pixels through "
                   "unchanged while train mode standardizes them. Move the slider.")
    st.caption(f"Train mode output: mean {modes.train_mean:.3f}, std {modes.train_std:.3f}. "
               f"Eval mode: mean {modes.eval_mean:.3f}, std {modes.eval_std:.3f}. "
               "At test time a prediction must not depend on the other images in the batch, so BN uses the "
               "running averages collected during training.")


def render_gamma_beta(dataset) -> None:
    a, b = st.columns(2)
    gamma = a.slider("γ (scale)", -3.0, 3.0, step=0.1, key="bn.gamma", help="Learned per channel; starts at 1.")
    beta = b.slider("β (shift)", -3.0, 3.0, step=0.1, key="bn.beta", help="Learned per channel; starts at 0.")
    bn = normalization.make_norm("batch", dataset.channels)
    normalized = normalization.modes_demo(bn, dataset.train.x[:64]).train_values
    scaled = normalization.modes_demo(bn, dataset.train.x[:64], gamma=gamma, beta=beta).train_values
    st.plotly_chart(overlaid_histograms({"x̂ (γ = 1, β = 0)": normalized,
                                        f"γ x̂ + β (γ = {gamma:g}, β = {beta:g})": scaled},
                                       title="γ and β undo the standardization where that helps",
                                       presenter=presenter_mode()), width="stretch", key="bn.gb")
    st.caption("With γ = σ and β = μ the layer can recover its input exactly: normalizing never limits what "
               "the network can represent.")


def render_training(dataset) -> None:
    a, b, c = st.columns(3)
    lr = a.number_input("Learning rate (SGD + momentum)", 1e-5, 1.0, format="%.4g", key="bn.lr",
                        help="BatchNorm tolerates larger rates.")
    batch = b.number_input("Batch size", 2, 512, key="bn.train_batch", help="Small batches make BN's statistics noisy.")
    epochs = c.number_input("Epochs", 1, 30, key="bn.epochs", help="Passes over the training images.")
    jobs = [Job(f"tinyvgg {label} · bs {batch}", TrainConfig(
        data=dataset.name, model="tinyvgg", model_options={"norm": norm}, optimizer="momentum", lr=float(lr),
        batch_size=int(min(batch, len(dataset.train))), epochs=int(epochs), seed=seed()), dataset)
        for label, norm in (("without BN", "none"), ("with BN", "batch"))]
    shown = {n: r.history for n, r in trained_runs_ui(jobs, key="bn.train", label="Train with and without BN").items()}
    if shown:
        curves_ui(shown, key="bn.curves")
    sizes = [s for s in BATCH_SIZES if s <= len(dataset.train)]
    spread = normalization.batch_dependence(dataset.train.x[:512], batch_sizes=sizes, trials=20, seed=seed())
    st.plotly_chart(batch_dependence(sizes, spread, presenter=presenter_mode()), width="stretch", key="bn.noise")
    st.caption(f"In train mode an image's output depends on its batch companions: by {spread[0]:.3f} (in units of "
               f"the output's std) at batch {sizes[0]}, {spread[-1]:.3f} at {sizes[-1]}. A little noise regularizes; "
               "with tiny batches, or statistics over few positions, it grows. LayerNorm and GroupNorm do not care.")


def render_folding(dataset) -> None:
    fold = normalization.folding_demo(dataset.train.x[:64], seed=seed())
    st.latex(r"W' = W\cdot\frac{\gamma}{\sqrt{\sigma^2_\text{run}+\epsilon}},\qquad "
             r"b' = (b - \mu_\text{run})\,\frac{\gamma}{\sqrt{\sigma^2_\text{run}+\epsilon}} + \beta")
    a, b, c = st.columns(3)
    a.metric("Layers", "conv + BN → conv", help="At test time BN is an affine map per channel.")
    b.metric("Largest |difference| of outputs", f"{fold.max_difference:.1e}", help="float32 rounding only.")
    c.metric("Parameters", f"{fold.params_before} → {fold.params_after}", help="γ, β and running stats disappear.")
    st.caption(f"A {fold.description} whose BN saw {fold.steps} training batches, evaluated on real images.")


def render_axes(dataset) -> None:
    groups = st.select_slider("GroupNorm groups", [1, 2, 3, 6], key="bn.groups",
                              help="1 group = LayerNorm; 6 groups (one per channel) = InstanceNorm.")
    x = normalization.conv_features(dataset.train.x[:4], channels=6, side=3, seed=seed())
    masks = {}
    for kind, title in (("batch", "BatchNorm"), ("layer", "LayerNorm"), ("instance", "InstanceNorm"),
                        ("group", f"GroupNorm ({groups})")):
        mask, axes = normalization.norm_group(kind, x, index=(0, 0, 0, 0), groups=groups)
        over = ", ".join(axes).replace("C", "C (a group)" if kind == "group" and 1 < groups < x.shape[1] else "C")
        masks[f"{title}: over {over}"] = mask.flatten(2).tolist()  # (N, C, H, W) -> (N, C, H·W)
    st.plotly_chart(norm_groups(masks, presenter=presenter_mode()), width="stretch", key="bn.axes")
    st.caption(f"Four real images through a 3×3 conv with 6 filters, pooled to 3×3: a tensor of shape "
               f"{tuple(x.shape)}, drawn as Wu & He's N × C × H·W cube unfolded (each image's 9 positions side by "
               "side). Coloured: the values that share one mean and variance with the first one — found by "
               "nudging that value in the real layer and seeing which outputs move.")


st.title("Normalization")
lesson_link_ui("app_pages/building_blocks/normalization.py")
with url_state(FIELDS, PRESETS):
    dataset = data_ui()
    st.header("BatchNorm: train vs eval")
    render_train_vs_eval(dataset)
    st.header("γ and β")
    render_gamma_beta(dataset)
    st.header("Training with and without BatchNorm")
    render_training(dataset)
    st.header("Folding BatchNorm into the conv")
    render_folding(dataset)
    st.header("Which axes? BatchNorm, LayerNorm, InstanceNorm, GroupNorm")
    render_axes(dataset)
