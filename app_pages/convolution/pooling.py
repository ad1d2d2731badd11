"""Pooling & 1×1 convolution: real nn.MaxPool2d / nn.AvgPool2d with their winners, and channel mixing."""

import pandas as pd
import streamlit as st

from engine import data
from engine.layers import conv, pooling
from engine.errors import UserInputError
from engine.models.export import conv_source
from ui.conv_inputs import image_format, input_fields, input_picker_ui, maps_image, output_size_latex
from ui.figures import conv as figs
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, flag, number, url_state

P = "pool"
STRIDES = ["kernel"] + [str(s) for s in range(1, 9)]
CORNER = 8  # rows/columns of the input shown with the winners (two grids fit side by side)
MIXES = {  # name -> (title, rows of weights over R, G, B)
    "luma": ("Grayscale (ITU-R BT.601 luma)", [[0.299, 0.587, 0.114]]),
    "swap": ("Swap red and blue", [[0, 0, 1], [0, 1, 0], [1, 0, 0]]),
    "opponent": ("Colour opponents: R−G, B−Y", [[1, -1, 0], [-0.5, -0.5, 1]]),
    "random": ("Random (PyTorch default init), 4 outputs", None),
}
FIELDS = input_fields(P, source="grid", side=64) + [
    choice(f"{P}.kind", "kind", "max", list(conv.POOL_KINDS)), number(f"{P}.k", "k", 2, 1, 8, int),
    choice(f"{P}.stride", "stride", "kernel", STRIDES), number(f"{P}.pad", "pad", 0, 0, 4, int),
    number(f"{P}.dil", "dil", 1, 1, 3, int), flag(f"{P}.ceil", "ceil", False),
    choice(f"{P}.mix", "mix", "luma", list(MIXES)),
]


def pool_config_ui() -> conv.PoolConfig:
    a, b, c, d = st.columns(4)
    kind = a.segmented_control("Pooling", conv.POOL_KINDS, key=f"{P}.kind", format_func=str.capitalize, required=True,
                               help="Max keeps the largest value in each window; average keeps the mean.") or "max"
    k = b.number_input("Kernel size K", 1, 8, key=f"{P}.k", help="Each window is K×K.")
    stride = c.selectbox("Stride S", STRIDES, key=f"{P}.stride", format_func=lambda s: "= K" if s == "kernel" else s,
                         help="PyTorch's default stride is the kernel size: windows tile without overlap.")
    pad = d.number_input("Padding P", 0, 4, key=f"{P}.pad", help="At most K/2: a window must see some input.")
    dil = a.number_input("Dilation D", 1, 3, key=f"{P}.dil", disabled=kind == "avg",
                         help="Max pooling only: gaps between the window's taps.")
    ceil = b.toggle("ceil_mode", key=f"{P}.ceil", help="Round the output size up: keep a last, partial window.")
    return conv.PoolConfig(kind, k, None if stride == "kernel" else int(stride), pad, dil if kind == "max" else 1, ceil)


def render_pooling(image) -> None:
    config = pool_config_ui()
    try:
        view = pooling.pool_view(config, image, corner=CORNER)
    except UserInputError as error:
        st.error(f"PyTorch would refuse this pooling: {error}")
        return
    height, width = image.shape[-2:]
    st.latex(output_size_latex(config, height, "H"))
    if width != height:
        st.latex(output_size_latex(config, width, "W"))
    left, right = st.columns(2)
    if max(height, width) > CORNER:  # a photo: the whole maps, then the corner's numbers
        picture, caption = maps_image(image, columns=3, upscale_to=240)
        left.image(picture, caption=f"Input {tuple(image.shape)} — {caption}", output_format=image_format(picture))
        picture, caption = maps_image(view.output, columns=3, upscale_to=240)
        right.image(picture, caption=f"Output {tuple(view.output.shape)} — {caption}", output_format=image_format(picture))
    left.plotly_chart(figs.number_grid(view.input_corner, winners=view.winners, presenter=presenter_mode(),
                                       title=f"Input {tuple(image.shape)}" + (": winners outlined" if view.winners else "")),
                      width="content")
    right.plotly_chart(figs.number_grid(view.output_corner, presenter=presenter_mode(),
                                        title=f"Output {tuple(view.output.shape)}"), width="content")
    st.caption("Pooling has no parameters; it works on each channel separately (the grids show channel 0)." + (
        f" The grids show the top-left {CORNER}×{CORNER} corner." if max(height, width) > CORNER else ""))
    if config.kind == "max":
        st.caption("Each outlined input value won its window: only it passes on, and in training only it "
                   "receives gradient. A value that wins several overlapping windows is outlined once.")
    st.code(conv_source(config, input_shape=tuple(image.shape)), language="python")
    with st.expander("Global average pooling"):
        means = conv.global_average(image)
        st.markdown("`nn.AdaptiveAvgPool2d(1)` averages each whole channel to one number: a C×H×W map becomes a "
                    "C-vector, whatever H and W are — how ResNets hand features to their final linear layer.")
        st.dataframe(pd.DataFrame({"channel": range(len(means)), "mean": means.tolist()}), hide_index=True,
                     column_config={"mean": st.column_config.NumberColumn(format="%.4f")})


def render_mixing(image) -> None:
    if image.shape[0] < 3:
        image = conv.shrink(data.load_photo("chelsea"), 128)
        st.caption("The input above has one channel, so this section uses a colour photo (red, green, blue).")
    name = st.selectbox("Mixing", list(MIXES), key=f"{P}.mix", format_func=lambda m: MIXES[m][0],
                        help="Which weights the 1×1 filters start with; edit any of them in the table.")
    rows = MIXES[name][1]
    start = pooling.random_mix(3, 4, seed=seed()) if rows is None else rows
    table = st.data_editor(pd.DataFrame(start, columns=["R", "G", "B"], dtype=float), key=f"{P}.mixer.{name}",
                           num_rows="dynamic", width="content",
                           column_config={c: st.column_config.NumberColumn(c, step=0.001, format="%.3f") for c in "RGB"})
    weights = table.fillna(0).to_numpy(dtype=float)
    try:
        out = pooling.mix_channels(image, weights)
    except UserInputError as error:
        st.error(f"{error}: add a row to the table.")
        return
    st.latex(r"y_{o}(i,j) = \sum_{c} w_{o,c}\, x_{c}(i,j) \qquad \text{params} = C_{out}\cdot C_{in} = "
             f"{len(weights)}\\cdot 3 = {weights.size}")
    left, right = st.columns([1, 2])
    left.plotly_chart(figs.mixing_matrix(weights, ["R", "G", "B"], presenter=presenter_mode()), width="content")
    picture, caption = maps_image(out, columns=2, upscale_to=200)
    right.image(picture, caption=f"{len(out)} output channel(s) — {caption}", output_format=image_format(picture))
    st.caption("No neighbours are involved: at every pixel the channel vector is multiplied by the same matrix. "
               "That is how networks change their number of channels cheaply (the bottleneck of ResNet, "
               "Inception's 1×1 reductions).")


def render() -> None:
    image, _ = input_picker_ui(P)
    if image is None:
        return
    st.header("Pooling")
    render_pooling(image)
    st.header("1×1 convolution: mixing channels")
    render_mixing(image)


st.title("Pooling & 1×1 convolution")
lesson_link_ui("app_pages/convolution/pooling.py")
st.markdown("Pooling shrinks a feature map by summarizing each window (max or average) and has **no** weights. "
            "A 1×1 convolution looks at one pixel at a time and mixes its channels.")
with url_state(FIELDS):
    render()
