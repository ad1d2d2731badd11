"""Mini-batches & learning rate: gradient noise vs batch size, learning-rate schedules, a range test."""

import streamlit as st

from engine import models
from engine.training import losses, minibatch
from engine.training.optimizers import optimizer_info, schedule_info
from ui.figures.optim import lines, spread
from ui.lessons import lesson_link_ui
from ui.jobs import computed
from ui.sidebar import presenter_mode, seed
from ui.state import choice, number, url_state
from ui.train_config import load_dataset

MODELS = ["mlp", "tinyvgg", "linear"]
BATCH_SIZES = [1, 4, 16, 64, 256]
RANGE_OPTIMIZERS = ["sgd", "momentum", "adam"]
FIELDS = [choice("mb.model", "model", "mlp", MODELS), number("mb.repeats", "reps", 20, 5, 100, int),
          number("mb.total", "total", 1000, 10, 100000, int), number("mb.lr", "lr", 0.1, 1e-5, 10.0),
          choice("mb.opt", "opt", "momentum", RANGE_OPTIMIZERS), number("mb.steps", "steps", 150, 20, 1000, int),
          number("mb.lo", "lo", -4.0, -7.0, 0.0), number("mb.hi", "hi", 0.5, -3.0, 1.0)]


def _model(name: str, dataset, seed_value: int):
    return models.build(name, in_channels=dataset.channels, num_classes=len(dataset.class_names),
                        image_size=dataset.image_size, mean=dataset.mean, std=dataset.std, seed=seed_value)


@st.cache_data(max_entries=16)
def _noise(model_name: str, repeats: int, seed_value: int) -> minibatch.GradientNoise:
    dataset = load_dataset("digits", None, seed_value)
    model = _model(model_name, dataset, seed_value)  # rebuilt from the seed: the same weights every time
    x, y = dataset.train.x, dataset.train.y
    return minibatch.gradient_noise(model, x, y, losses.build("cross_entropy"),
                                    batch_sizes=BATCH_SIZES + [len(y)], repeats=repeats, seed=seed_value)


def render_noise() -> None:
    left, right = st.columns(2)
    model_name = left.selectbox("Model", MODELS, key="mb.model", help="A freshly initialized model on digits.")
    repeats = right.slider("Draws per batch size", 5, 100, key="mb.repeats", step=5,
                           help="How many random mini-batches are compared with the full-batch gradient.")
    with st.spinner("Computing gradients…"):
        noise = _noise(model_name, repeats, seed())
    full = noise.batch_sizes[-1]
    st.latex(r"g_B = \frac{1}{B}\sum_{i \in \text{batch}} \nabla_\theta L_i,\qquad "
             r"\mathbb{E}[g_B] = g,\qquad \frac{\lVert g_B - g\rVert}{\lVert g\rVert} \;\propto\; \frac{1}{\sqrt{B}}")
    sizes = noise.mini_batch_sizes
    presenter = presenter_mode()
    left, right = st.columns(2)
    left.plotly_chart(spread({str(b): noise.relative_error[b] for b in sizes},
                             title="Error of the mini-batch gradient", y_title="‖g_B − g‖ / ‖g‖",
                             presenter=presenter), width="stretch")
    right.plotly_chart(lines(sizes, {"measured (mean)": noise.mean_error(), "1/√B from B = 1": noise.sqrt_law()},
                             title="Mean error vs batch size", x_title="batch size B", y_title="relative error",
                             log_x=True, log_y=True, presenter=presenter), width="stretch")
    cosines = ", ".join(f"B={b}: {c:.2f}" for b, c in noise.mean_cosine().items())
    st.caption(f"Full batch: all {full} training images (‖g‖ = {noise.full_norm:.3g}). Mean cosine between "
               f"g_B and g — {cosines}. A single example's gradient barely points the same way as the full one; "
               "averaging B examples cuts the noise by √B, at B times the cost per step.")


def render_schedules() -> None:
    left, right = st.columns(2)
    total = left.number_input("Training steps", 10, 100000, key="mb.total", step=10,
                              help="Epochs × batches per epoch: the schedules stretch over this many steps.")
    base = right.number_input("Base learning rate η₀", 1e-5, 10.0, key="mb.lr", format="%.4g", step=None,
                              help="The schedule multiplies this.")
    steps, by_name = minibatch.schedule_curves(total_steps=int(total), base_lr=float(base))
    curves = {schedule_info(name).title: values for name, values in by_name.items()}
    st.plotly_chart(lines(steps, curves, title="Learning rate during training", x_title="step",
                          y_title="learning rate", presenter=presenter_mode()), width="stretch")
    st.latex(r"\eta_t^{\text{cosine}} = \tfrac{\eta_0}{2}\left(1 + \cos\frac{\pi t}{T}\right)"
             r"\qquad \eta_t^{\text{step}} = \eta_0 \cdot 0.1^{[t \ge T/2] + [t \ge 3T/4]}")


def render_range_test() -> None:
    a, b, c, d = st.columns(4)
    optimizer = a.selectbox("Optimizer", RANGE_OPTIMIZERS, key="mb.opt", format_func=lambda n: optimizer_info(n).title,
                            help="Trained from the model's initialization while the learning rate grows.")
    steps = b.slider("Steps", 20, 1000, key="mb.steps", step=10, help="Mini-batches of 32 during the test.")
    lo = c.slider("log₁₀ lr from", -7.0, 0.0, key="mb.lo", step=0.5, help="The first learning rate, 10^this.")
    hi = d.slider("log₁₀ lr to", -3.0, 1.0, key="mb.hi", step=0.5, help="The last learning rate, 10^this.")
    if hi <= lo:  # both sliders allow it: say what to change instead of refusing
        st.info(f"The learning rate grows from 10^{lo:g} to 10^{hi:g}: set “to” above “from” to run the test.")
        return
    model_name = st.session_state["mb.model"]
    dataset = load_dataset("digits", None, seed())
    result = computed("mb.range", (model_name, optimizer, lo, hi, steps, seed()), minibatch.lr_range_test,
                      label="Range test", start_button="Run the range test",
                      start_help="A few hundred steps while the learning rate grows from the first value to the last.",
                      model=_model(model_name, dataset, seed()), x=dataset.train.x, y=dataset.train.y,
                      loss_fn=losses.build("cross_entropy"), optimizer=optimizer, lr_min=10 ** lo,
                      lr_max=10 ** hi, steps=steps, batch_size=32, seed=seed())
    if result is None:
        return
    st.plotly_chart(lines(result.lrs, {"loss": result.losses, "smoothed": result.smoothed},
                          title="Loss while the learning rate grows", x_title="learning rate", y_title="loss",
                          log_x=True, marker_x=result.suggested, presenter=presenter_mode()), width="stretch")
    st.success(f"The smoothed loss falls fastest at lr ≈ **{result.suggested:.2g}** (dashed line) and is lowest "
               f"at {result.lowest:.2g}; a common pick is about a tenth of the latter, {result.lowest / 10:.2g}."
               + (" The test stopped early: the loss blew up." if result.stopped_early else ""))


st.title("Mini-batches & learning rate")
lesson_link_ui("app_pages/training/minibatch.py")
st.markdown("Each step of mini-batch SGD estimates the gradient from B examples instead of all of them. "
            "How noisy is that estimate on a real network, and how should the learning rate change over training?")
with url_state(FIELDS):
    st.header("Gradient noise vs batch size")
    render_noise()
    st.header("Learning-rate schedules")
    render_schedules()
    st.header("Learning-rate range test")
    render_range_test()
