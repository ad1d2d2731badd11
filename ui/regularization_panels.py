"""Panels of the regularization page: dropout masks on a real layer, MC-dropout vs the eval pass, and L2 in the
loss vs decoupled weight decay step by step. Each panel has its own URL fields, which the page adds to its own."""

from __future__ import annotations

import streamlit as st

from engine import limits
from engine.training import dropout as drop
from engine.training import regularizers as reg
from engine.training.runs import Run
from ui import jobs
from ui.figures import regularization as figs
from ui.run_picker import run_select_ui, session_runs
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, choice, number, run_dataset

P = "regp"
LAMBDAS = [0.01, 0.03, 0.1, 0.3, 0.5, 1.0, 3.0]
RATES = [0.001, 0.003, 0.01, 0.03]
FIELDS = [
    number(f"{P}.p", "p", 0.5, 0.05, 0.9), number(f"{P}.image", "img", 0, 0, 100_000, int),
    number(f"{P}.samples", "draws", 8, 1, drop.MAX_MASK_SAMPLES, int),
    number(f"{P}.passes", "passes", 30, 1, drop.MAX_MC_PASSES, int),
    choice(f"{P}.optimizer", "dopt", "adam", list(reg.DECAY_OPTIMIZERS)),
    UrlField(f"{P}.lambda", "dlam", 0.5, float, lambda v: v in LAMBDAS),
    UrlField(f"{P}.lr", "dlr", 0.01, float, lambda v: v in RATES),
    number(f"{P}.steps", "dsteps", 300, 10, limits.MAX_DECAY_STEPS, int),
]


def _dropout_p(run: Run) -> float:
    return max((layer.p for _, layer in drop.dropout_layers(run.model)), default=0.0)


def dropout_ui() -> None:
    """Masks drawn by the dropout layer of a Run of this session, on one test image; then MC-dropout."""
    available = session_runs(lambda run: bool(drop.dropout_layers(run.model)) and run_dataset(run.name) is not None)
    if not available:
        st.info("Train the runs above first: their MLP or Tiny VGG has a dropout layer to look at.")
        return
    trained_with = {n: r for n, r in available.items() if _dropout_p(r) > 0}
    if st.session_state.get(f"{P}.run") not in available and trained_with:
        st.session_state[f"{P}.run"] = list(trained_with)[-1]  # start on a run that was trained with dropout
    run = run_select_ui(available, key=f"{P}.run", label="Run", help="Any run of this session with a dropout layer.")
    dataset = run_dataset(run.name)
    a, b, c = st.columns(3)
    p = a.slider("Dropout p for the picture", 0.05, 0.9, step=0.05, key=f"{P}.p",
                 help="Each unit is dropped with probability p; the kept ones are scaled by 1/(1−p).")
    index = b.number_input(f"Test image (0–{len(dataset.test) - 1})", 0, 100_000, key=f"{P}.image",
                           help="The image whose activations reach the layer.") % len(dataset.test)
    samples = c.number_input("Masks drawn", 1, drop.MAX_MASK_SAMPLES, key=f"{P}.samples",
                             help="Independent draws of the mask, one row each.")
    masks = drop.dropout_masks(run.model, dataset.test.x[index], p=p, samples=int(samples), seed=seed())
    st.plotly_chart(figs.dropout_masks(masks.inputs, masks.masks, masks.outputs, masks.mean_output, p=p,
                                       presenter=presenter_mode()), width="stretch")
    st.latex(r"\text{train: } \tilde h_i = \frac{m_i\, h_i}{1-p},\ m_i \sim \text{Bernoulli}(1-p),\ "
             r"\mathbb E[\tilde h_i] = h_i \qquad \text{test: } \tilde h = h")
    st.caption(f"Layer **{masks.layer}** of “{run.name}” ({len(masks.inputs)} units). Units at 0 in the input "
               "(ReLU) stay 0 whatever the mask. Because of the 1/(1−p) scaling, the mean over many masks equals "
               "the input, so the test-time network (dropout off) needs no rescaling.")
    mc_dropout_ui(run, dataset)


def mc_dropout_ui(run: Run, dataset) -> None:
    st.subheader("MC-dropout: keep dropout on at test time")
    if _dropout_p(run) == 0:
        st.info("This run was trained without dropout (p = 0), so its passes would all be the same: pick the "
                "run trained with dropout.")
        return
    passes = int(st.columns(3)[0].number_input("Stochastic passes k", 1, drop.MAX_MC_PASSES, key=f"{P}.passes",
                                               help="Test-set passes with dropout on and BatchNorm in eval mode; "
                                                    "their probabilities are averaged."))
    key = (run.name, id(run.model), len(run.history.epoch), passes, seed())
    result = jobs.computed(f"{P}.mc", key, drop.mc_dropout, label=f"MC-dropout, {passes} passes",
                           estimate_s=0.05 * passes, model=run.model, x=dataset.test.x, y=dataset.test.y,
                           passes=passes, seed=seed())
    if result is None:
        return
    cols = st.columns(3)
    cols[0].metric("Eval pass (dropout off)", f"{result.deterministic_accuracy:.1%}")
    cols[1].metric(f"Mean of {passes} passes", f"{result.mc_accuracy:.1%}",
                   delta=f"{result.mc_accuracy - result.deterministic_accuracy:+.1%}")
    cols[2].metric("Mean spread", f"{float(result.spread().mean()):.3f}",
                   help="Standard deviation over the passes of the predicted class's probability: an "
                        "uncertainty per image, which the eval pass cannot give.")
    st.plotly_chart(figs.mc_dropout(result.accuracy_after(), result.pass_accuracies, result.deterministic_accuracy,
                                    presenter=presenter_mode()), width="stretch")
    st.caption("One stochastic pass is a thinned network and scores lower; the mean of many passes approaches "
               "the eval pass, which is the cheap stand-in for averaging over all masks (Gal & Ghahramani 2016).")


def decay_ui() -> None:
    """L2 in the loss, the optimizer's weight_decay and decoupled decay on two weights with noise-only gradients."""
    a, b, c, d = st.columns(4)
    optimizer = a.selectbox("Optimizer", list(reg.DECAY_OPTIMIZERS), key=f"{P}.optimizer",
                            help="SGD, SGD with momentum μ = 0.9, or Adam.")
    strength = b.select_slider("λ", LAMBDAS, key=f"{P}.lambda", help="Strength of the penalty or of the decay.")
    lr = c.select_slider("Learning rate η", RATES, key=f"{P}.lr", help="Step size.")
    steps = d.slider("Steps", 10, limits.MAX_DECAY_STEPS, step=10, key=f"{P}.steps", help="Optimizer steps.")
    paths = _decay_paths(optimizer, lr, strength, int(steps))
    left, right = st.columns(2)
    coupled, decoupled = reg.DECAY_RULES[optimizer]
    torch_class = "Adam" if optimizer == "adam" else "SGD"
    left.markdown(f"**{reg.L2_IN_LOSS}** (= `weight_decay` of `torch.optim.{torch_class}`)")
    left.latex(coupled)
    right.markdown(f"**{reg.DECOUPLED}**" + (" (= `torch.optim.AdamW`)" if optimizer == "adam" else ""))
    right.latex(decoupled)
    shown = {name: paths.paths[name] for name in (reg.L2_IN_LOSS, reg.DECOUPLED)}  # weight_decay: the same as L2
    st.plotly_chart(figs.decay_paths(shown, paths.expected, paths.scales, presenter=presenter_mode()),
                    width="stretch")
    same = paths.difference(reg.L2_IN_LOSS, reg.WEIGHT_DECAY)
    apart = paths.difference(reg.L2_IN_LOSS, reg.DECOUPLED)
    st.caption(f"Largest difference between the mean weights: L2 vs `weight_decay` {same:.1e} (so only L2 is "
               f"drawn), L2 vs decoupled "
               f"{apart:.3g}. Each weight's loss gradient is pure noise (×{paths.scales[0]:g} or "
               f"×{paths.scales[1]:g}), so only the regularizer moves its mean. For SGD all three are one update; "
               "with momentum the coupled decay also gathers momentum; Adam divides the L2 gradient by √v̂, so the "
               "weight with large gradients is hardly decayed — AdamW shrinks both by (1 − ηλ) per step.")


@st.cache_data(max_entries=32)
def _decay_paths(optimizer: str, lr: float, strength: float, steps: int) -> reg.DecayPaths:
    return reg.decay_paths(optimizer, lr=lr, strength=strength, steps=steps)
