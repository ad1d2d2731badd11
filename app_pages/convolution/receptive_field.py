"""Receptive field & output size: build a conv/pool stack, watch each unit's view grow, and drill the formula."""

import pandas as pd
import streamlit as st

from engine import data
from engine.layers import coverage
from engine.layers import receptive_field as rf
from engine.errors import UserInputError
from engine.data.images import resize_batch
from ui.figures import conv as figs
from ui.images import to_display
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode
from ui.state import UrlField, choice, number, url_state

P = "rf"
DEFAULT_STACK = "c3p1,c3p1,p2,c3p1,c3p1,p2"  # two VGG blocks
COLUMNS = ["kind", "kernel", "stride", "padding", "dilation"]
FIELDS = [UrlField(f"{P}.layers", "layers", DEFAULT_STACK), number(f"{P}.n", "n", 64, 8, 512, int),
          choice(f"{P}.photo", "photo", "astronaut", data.photo_names()), number(f"{P}.q", "q", 1, 1, 10_000, int)]


@st.cache_data(max_entries=16, show_spinner=False)
def _square_photo(name: str, size: int):
    return to_display(resize_batch(data.load_photo(name)[None], size)[0], upscale_to=None)


def stack_ui() -> list[rf.RFLayer]:
    """The layers as an editable table (add rows at the bottom, delete with the row checkbox)."""
    text = st.session_state[f"{P}.layers"]
    try:
        layers = rf.parse_layers(text)
    except UserInputError as error:
        st.warning(f"Ignored ?layers={text}: {error}")
        st.session_state[f"{P}.layers"] = text = DEFAULT_STACK
        layers = rf.parse_layers(text)
    base = pd.DataFrame([(l.kind, l.kernel_size, l.stride, l.padding, l.dilation) for l in layers], columns=COLUMNS)
    number_column = st.column_config.NumberColumn
    edited = st.data_editor(
        base, key=f"{P}.editor.{text}", num_rows="dynamic", hide_index=True, width="content",
        column_config={"kind": st.column_config.SelectboxColumn("kind", options=list(rf.LAYER_KINDS), required=True),
                       "kernel": number_column("kernel K", min_value=1, max_value=15, step=1, required=True),
                       "stride": number_column("stride S", min_value=1, max_value=8, step=1, required=True),
                       "padding": number_column("padding P", min_value=0, max_value=8, step=1, required=True),
                       "dilation": number_column("dilation D", min_value=1, max_value=8, step=1, required=True)})
    edited = edited.dropna()
    layers = [rf.RFLayer(r.kind, int(r.kernel), int(r.stride), int(r.padding), int(r.dilation))
              for r in edited.itertuples()]
    if layers:
        st.session_state[f"{P}.layers"] = rf.format_layers(layers)
    return layers


def render_stack() -> None:
    left, right = st.columns([3, 1])
    with left:
        layers = stack_ui()
    n = right.number_input("Input size N", 8, 512, key=f"{P}.n", help="Height and width of the (square) input.")
    right.caption("Edit a cell, add a layer in the empty last row, or tick rows and delete them.")
    if not layers:
        st.info("Add a layer to the table.")
        return
    try:
        rows = rf.receptive_field(layers, n)
    except UserInputError as error:
        st.error(str(error))  # the drill below does not depend on the stack
        return
    table = pd.DataFrame([(r.layer, r.out_size, r.size, r.jump, r.start) for r in rows],
                         columns=["after layer", "size", "field", "jump", "start"])
    left, right = st.columns(2)
    left.dataframe(table, hide_index=True)
    left.caption("size: the layer's output height/width; field: its receptive field; jump: input pixels between "
                 "neighbouring units; start: where unit 0's field begins (negative = padding). Unit u sees "
                 "start + u·jump … start + u·jump + field − 1.")
    st.latex(r"r_l = r_{l-1} + D_l(K_l - 1)\, j_{l-1}, \qquad j_l = j_{l-1} S_l, \qquad "
             r"\text{start}_l = \text{start}_{l-1} - P_l\, j_{l-1}")
    right.plotly_chart(figs.receptive_field_growth([r.layer for r in rows], [r.size for r in rows],
                                                   [r.jump for r in rows], presenter=presenter_mode()))
    render_overlay(rows[-1], n)


def render_overlay(last: rf.RFRow, n: int) -> None:
    st.subheader("What one output unit sees")
    a, b, c = st.columns(3)
    photo = a.selectbox("Photo", data.photo_names(), key=f"{P}.photo", help="Squashed to N×N.")
    for key in (f"{P}.ui", f"{P}.uj"):  # the centre unit at first; stay in range when the stack shrinks
        st.session_state[key] = min(st.session_state.get(key, last.out_size // 2), max(last.out_size - 1, 0))
    i = b.slider("Unit row", 0, max(last.out_size - 1, 1), key=f"{P}.ui", disabled=last.out_size == 1,
                 help="Which unit of the last layer's output.")
    j = c.slider("Unit column", 0, max(last.out_size - 1, 1), key=f"{P}.uj", disabled=last.out_size == 1,
                 help="Which column of the last layer's output.")
    i, j = min(i, last.out_size - 1), min(j, last.out_size - 1)
    (r0, r1), (c0, c1) = last.span(i), last.span(j)
    inner = (max(r0, 0), min(r1, n - 1), max(c0, 0), min(c1, n - 1))
    st.plotly_chart(figs.image_with_box(_square_photo(photo, n), (r0, r1, c0, c1), presenter=presenter_mode(),
                                        title=f"Unit ({i}, {j}) sees rows {r0}…{r1}, columns {c0}…{c1}"))
    st.caption(f"The orange square is the receptive field, {last.size}×{last.size} pixels"
               + ("; the part outside the image is padding." if inner != (r0, r1, c0, c1) else ".")
               + " Dilated layers skip pixels inside it; pixels near its centre reach the unit along more paths.")


def render_quiz() -> None:
    question = rf.random_question(st.session_state[f"{P}.q"])
    st.markdown(f"An input of **{question.n}×{question.n}** goes through a convolution with a "
                f"**{question.kernel}×{question.kernel}** filter, stride **{question.stride}** and padding "
                f"**{question.padding}**. What is the output's height (as PyTorch computes it)?")
    answer = st.number_input("Your answer", min_value=0, max_value=1000, value=None, step=1, key=f"{P}.answer",
                             placeholder="a whole number", help="Use ⌊(N − F + 2P)/S⌋ + 1.")
    left, right = st.columns(2)
    checked = left.button("Check", key=f"{P}.check", type="primary", help="Compare with what PyTorch computes.")
    if right.button("New question", key=f"{P}.new", help="Draw another question."):
        st.session_state[f"{P}.q"] = st.session_state[f"{P}.q"] % 10_000 + 1
        st.session_state.pop(f"{P}.answer", None)
        st.rerun()
    if not checked:
        return
    top = question.n - question.kernel + 2 * question.padding
    work = f"⌊({question.n} − {question.kernel} + 2·{question.padding}) / {question.stride}⌋ + 1 = " \
           f"⌊{top}/{question.stride}⌋ + 1 = {question.answer}"
    if answer is not None and int(answer) == question.answer:
        st.success(f"Correct: {work}.")
    else:
        st.error(f"Not quite: {work}" + (f" (you entered {answer})." if answer is not None else "."))
    if not question.exact:
        rule = (question.n, question.kernel, question.stride, question.padding)
        st.info(f"{top} is not a multiple of {question.stride}: PyTorch rounds the output size down. "
                + coverage.explain_unread(*rule) + " Some courses call this setting invalid.")
        st.plotly_chart(figs.coverage_bars(coverage.coverage(*rule), question.padding, question.n,
                                           presenter=presenter_mode()))


st.title("Receptive field & output size")
lesson_link_ui("app_pages/convolution/receptive_field.py")
st.markdown("Stack conv and pool layers and follow one output unit back to the input: the area it can see — its "
            "**receptive field** — grows by D(K−1) times the jump with every layer, and multiplies with every stride.")
with url_state(FIELDS):
    render_stack()
    st.header("Output-size drill")
    render_quiz()
