"""Attention step by step: real Q, K, V of a toy sentence, QKᵀ/√d, softmax, the weighted sum, heads."""

import streamlit as st

from engine.explain import attention as att
from engine.models.vit import sinusoidal_encoding
from ui.figures import attention as figs
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, choice, flag, number, url_state

P = "attn"
SENTENCES = {
    "cat": "the cat sat on the mat",
    "saw": "I saw the saw",
    "bank": "she sat by the river bank",
    "dog": "dog bites man",
}
WIDTHS = [4, 6, 8, 12]
HEADS = [1, 2, 3, 4]
FIELDS = [
    choice(f"{P}.sentence", "s", "cat", list(SENTENCES)),
    UrlField(f"{P}.width", "d", 4, int, lambda v: v in WIDTHS),
    UrlField(f"{P}.heads", "h", 1, int, lambda v: v in HEADS),
    number(f"{P}.scale", "scale", 1.0, 0.1, 4.0),
    flag(f"{P}.pos", "pos", False),
]
PRESETS = {"repeated_words": {"s": "cat", "pos": False}, "with_positions": {"s": "cat", "pos": True},
           "two_heads": {"s": "bank", "d": 8, "h": 2}}


def setup_ui() -> tuple[list[str], int, int, float, bool]:
    a, b, c, d = st.columns([2, 1, 1, 1])
    key = a.selectbox("Sentence", list(SENTENCES), key=f"{P}.sentence", format_func=SENTENCES.get,
                      help="Each word is a token with a random embedding; repeated words share one.")
    width = b.select_slider("Width D", WIDTHS, key=f"{P}.width", help="Numbers per token vector.")
    heads = c.select_slider("Heads h", HEADS, key=f"{P}.heads",
                            help="Each head works in D/h dimensions; h must divide D.")
    scale = d.slider("Weight scale", 0.1, 4.0, step=0.1, key=f"{P}.scale",
                     help="Larger W_Q, W_K give larger scores and a peakier softmax.")
    pos = st.toggle("Add sinusoidal position encoding", key=f"{P}.pos",
                    help="Without it, the two 'the' tokens are the same vector and get the same attention.")
    return SENTENCES[key].split(), int(width), int(heads), float(scale), pos


def render_projections(steps, words: list[str], presenter: bool) -> None:
    st.subheader("1. Queries, keys and values")
    st.latex(r"Q = X W_Q,\quad K = X W_K,\quad V = X W_V \qquad X \in \mathbb{R}^{N\times D}")
    per_row = 4 if steps.x.shape[1] <= 6 else 2  # wide matrices get room for their numbers
    cols = st.columns(per_row) + (st.columns(per_row) if per_row == 2 else [])
    dims = [f"d{j}" for j in range(steps.x.shape[1])]
    for column, (name, values) in zip(cols, [("X (tokens)", steps.x), ("Q", steps.q), ("K", steps.k), ("V", steps.v)]):
        column.plotly_chart(figs.matrix(values.numpy(), title=name, rows=words, cols=dims, signed=True,
                                        presenter=presenter), width="stretch")


def render_head(steps, words: list[str], head: int, presenter: bool) -> None:
    d = steps.heads.shape[-1]
    st.subheader(f"2. Head {head + 1}: scores, softmax, weighted sum")
    left, middle, right = st.columns(3)
    with left:
        st.latex(rf"S = \frac{{Q_{head + 1} K_{head + 1}^\top}}{{\sqrt{{{d}}}}}")
        st.plotly_chart(figs.matrix(steps.scores[head].numpy(), title="scores S (row = query)", rows=words,
                                    cols=words, signed=True, presenter=presenter), width="stretch")
    with middle:
        st.latex(r"A_{ij} = \frac{e^{S_{ij}}}{\sum_k e^{S_{ik}}}")
        st.plotly_chart(figs.matrix(steps.weights[head].numpy(), title="weights A (rows sum to 1)",
                                    rows=words, cols=words, presenter=presenter), width="stretch")
    with right:
        st.latex(rf"\text{{head}}_{head + 1} = A\,V_{head + 1}")
        st.plotly_chart(figs.matrix(steps.heads[head].numpy(), title="A·V: mixed values",
                                    rows=words, cols=[f"d{j}" for j in range(d)], signed=True, presenter=presenter),
                        width="stretch")
    st.caption("Read a row of the weights: how much that word listens to every word. The output row is the "
               "same mix of the value rows. Repeated words without positions get identical rows.")


def render_concat(steps, words: list[str], heads: int, presenter: bool) -> None:
    st.subheader("3. Heads side by side, then one projection")
    st.latex(r"\mathrm{MultiHead}(X) = [\text{head}_1, \dots, \text{head}_h]\, W_O")
    left, right = st.columns(2)
    dims = [f"d{j}" for j in range(steps.x.shape[1])]
    left.plotly_chart(figs.matrix(steps.concat.numpy(), title=f"concatenation of {heads} head(s)", rows=words,
                                  cols=dims, signed=True, presenter=presenter), width="stretch")
    right.plotly_chart(figs.matrix(steps.out.numpy(), title="output = concat · W_O", rows=words, cols=dims,
                                   signed=True, presenter=presenter), width="stretch")


def render_positions(presenter: bool) -> None:
    st.subheader("4. Sinusoidal position encoding")
    st.latex(r"PE_{(p,\,2i)} = \sin\frac{p}{10000^{2i/D}},\qquad PE_{(p,\,2i+1)} = \cos\frac{p}{10000^{2i/D}}")
    positions = st.slider("Positions shown", 8, 100, 50, key=f"{P}.positions",
                          help="Rows of the encoding; each column is a wave of its own frequency.")
    st.plotly_chart(figs.positional_encoding(sinusoidal_encoding(positions, 32).numpy(), presenter=presenter),
                    width="stretch")
    st.caption("Attention itself ignores order: shuffle the tokens and each one gets the same output. "
               "Adding a unique pattern per position lets the model tell 'dog bites man' from 'man bites dog'.")


def render() -> None:
    words, width, heads, scale, pos = setup_ui()
    presenter = presenter_mode()
    x = att.toy_tokens(words, width, seed=seed(), positional=pos)
    steps = att.attention_steps(x, num_heads=heads, **att.toy_weights(width, seed=seed(), scale=scale))
    render_projections(steps, words, presenter)
    head = 0
    if heads > 1:
        head = st.segmented_control("Head", list(range(1, heads + 1)), key=f"{P}.head_pick", default=1,
                                    help="Each head has its own W_Q, W_K, W_V slice and its own pattern.") or 1
        head -= 1
    render_head(steps, words, head, presenter)
    render_concat(steps, words, heads, presenter)


st.title("Attention step by step")
lesson_link_ui("app_pages/transformers/attention.py")
st.markdown("Self-attention lets every token look at every other token and take a weighted mean of what "
            "it finds. Below are the real matrices for a short sentence: change the sentence, the width, "
            "the heads, and watch each step.")
with url_state(FIELDS, PRESETS):
    render()
    render_positions(presenter_mode())
