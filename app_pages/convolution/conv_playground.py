"""Convolution: a real nn.Conv2d / nn.ConvTranspose2d on a photo or a small grid, with every setting PyTorch accepts."""

import streamlit as st

from engine.layers import conv, coverage
from engine.errors import UserInputError
from engine.models.export import conv_source
from ui.conv_inputs import (conv_config_ui, conv_fields, grid_editor_ui, image_format, input_fields, input_picker_ui,
                            kernel_ui, maps_image, output_size_latex)
from ui.figures import conv as figs
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, number, url_state

P = "conv"
DETAILS = {"padded": "Padded input", "footprint": "Kernel footprint"}
FIELDS = input_fields(P) + conv_fields(P) + [number(f"{P}.pos", "pos", 0, 0, 10_000, int),
                                             choice(f"{P}.show", "show", "padded", list(DETAILS))]
CORNER = 9  # input pixels of the top-left corner shown with their padding


def outputs_ui(config, image, result) -> None:
    """Output shape, parameter count and the output maps."""
    cost = conv.conv_cost(config, *image.shape[-2:])
    a, b, c = st.columns(3)
    a.metric("Output C×H×W", "×".join(map(str, result.shape)), help="From the real module's output tensor.")
    b.metric("Parameters", f"{cost.params:,}", help="weights C_out · C_in/groups · K² (+ C_out biases)")
    c.metric("MACs", f"{cost.macs:,}", help="Multiply-accumulates for one image (FLOPs ≈ 2 × MACs).")
    picture, caption = maps_image(result)
    st.image(picture, caption=f"{len(result)} output map(s), left to right — {caption}",
             output_format=image_format(picture))


def formulas_ui(config, image) -> None:
    """The output-size and parameter formulas with the user's numbers; unvisited rows when S does not divide."""
    height, width = image.shape[-2:]
    st.latex(output_size_latex(config, height, "H"))
    if width != height:
        st.latex(output_size_latex(config, width, "W"))
    params = conv.conv_cost(config, height, width).params
    st.latex(r"\begin{aligned}\text{params} &= C_{out}\cdot\tfrac{C_{in}}{\text{groups}}\cdot K^2 + C_{out}\,"
             r"[\text{bias}] \\ &= "
             f"{config.out_channels}\\cdot\\tfrac{{{config.in_channels}}}{{{config.groups}}}\\cdot{config.kernel_size}^2"
             + (f" + {config.out_channels}" if config.bias else "") + f" = {params:,}" + r"\end{aligned}")
    if not config.transposed and config.padding != "same":
        rule = (height, config.kernel_size, config.stride, config.padding, config.dilation)
        if coverage.unread_rows(*rule):
            before, _ = conv.padding_amounts(config.kernel_size, config.padding, config.dilation)
            st.plotly_chart(figs.coverage_bars(coverage.coverage(*rule), before, height, presenter=presenter_mode()))
            st.caption(coverage.explain_unread(*rule) + " Some courses call such a setting invalid.")


def window_step(config, grid, kernel2d, bias: float) -> None:
    """One output position of the sliding window: the patch, the products and their sum."""
    try:  # here, not around the call: a fragment rerun (Play) does not reach the caller
        positions = conv.window_positions(config, grid)
    except UserInputError as error:
        st.error(f"On the {tuple(grid.shape[-2:])} grid: {error}")
        return
    st.session_state[f"{P}.pos"] = min(st.session_state.get(f"{P}.pos", 0), positions - 1)
    if st.session_state.get(f"{P}.play"):
        st.session_state[f"{P}.pos"] = (st.session_state[f"{P}.pos"] + 1) % positions
    index = st.slider("Output position (row by row)", 0, max(positions - 1, 1), key=f"{P}.pos",
                      disabled=positions == 1, help="Which output value to compute by hand.")
    step = conv.window_step(config, grid, kernel2d, index=index)
    i, j = step.i, step.j
    left, right = st.columns([3, 2])
    left.plotly_chart(figs.number_grid(step.padded.numpy(), window=step.cells, padding=step.padding,
                                       presenter=presenter_mode(),
                                       title=f"Input (padding shaded), window for output ({i}, {j})"), width="content")
    right.plotly_chart(figs.products_grid(step.patch.numpy(), kernel2d.numpy(), step.products.numpy(), step.total,
                                          presenter=presenter_mode()), width="content")
    st.latex(f"y_{{{i},{j}}} = \\sum_{{a,b}} \\tilde x_{{{i}S+aD,\\;{j}S+bD}}\\, w_{{a,b}} = {step.total:.4g}"
             + (f" \\;(+\\,b = {step.total + bias:.4g})" if bias else ""))
    st.caption(f"nn.Conv2d gives {step.module_value:.4g} at ({i}, {j}) — the same sum "
               "(PyTorch's convolution does not flip the kernel: it is a cross-correlation).")


def render_window(config, image, source, kernel2d, bias) -> None:
    if config.transposed:
        st.info("A transposed convolution scatters each input pixel over a window instead of gathering one; "
                "switch Transposed off to step through a gathering window.")
        return
    st.caption("Every output value is a sum of K×K products. Step through the positions (or press Play) and "
               "check one by hand. A small grid keeps every number readable.")
    grid = image if source == "grid" and image.shape[0] == 1 else grid_editor_ui(f"{P}.cells", 7)
    st.toggle("Play", key=f"{P}.play", help="Advance one position every second.")
    step = st.fragment(window_step, run_every=1.0 if st.session_state.get(f"{P}.play") else None)
    step(config, grid, kernel2d, float(bias[0]) if bias is not None and source == "grid" else 0.0)


def render_details(config, image, weight) -> None:
    shown = st.segmented_control("Show", list(DETAILS), format_func=DETAILS.get, key=f"{P}.show", required=True,
                                 help="The corner of the input with its padding, or the dilated kernel.")
    if shown == "padded":
        corner, before = conv.padded_corner(image, config, corner=CORNER)
        if config.transposed:
            st.caption("A transposed convolution's padding crops its output instead of padding the input.")
        st.plotly_chart(figs.number_grid(corner, padding=(before, 0), presenter=presenter_mode(),
                                         title=f"Top-left corner of channel 0 with {config.padding_mode} padding"),
                        width="content")
    elif shown == "footprint":
        span = conv.effective_kernel(config.kernel_size, config.dilation)
        st.plotly_chart(figs.footprint(weight[0, 0].numpy(), config.dilation, presenter=presenter_mode()),
                        width="content")
        st.latex(f"K_{{eff}} = D(K-1)+1 = {config.dilation}\\cdot({config.kernel_size}-1)+1 = {span}")
        st.caption(f"{config.kernel_size ** 2} weights cover a {span}×{span} area: dilation widens the view "
                   "without adding parameters.")
    st.code(conv_source(config, input_shape=tuple(image.shape)), language="python")


def render() -> None:
    image, source = input_picker_ui(P)
    if image is None:
        return
    config = conv_config_ui(P, image.shape[0])
    try:
        kernel = kernel_ui(P, config.kernel_size)
    except UserInputError as error:
        st.error(f"This kernel does not fit: {error}")
        return
    try:
        conv.check_conv(config, *image.shape[-2:])  # before drawing weights for a shape that may not exist
        weight = conv.make_weight(config, kernel=kernel, seed=seed())
        bias = conv.make_bias(config, seed=seed()) if kernel is None else None
        result = conv.run_conv(config, image, weight, bias)
    except UserInputError as error:
        st.error(f"PyTorch would refuse this layer: {error}")
        return
    outputs_ui(config, image, result)
    formulas_ui(config, image)
    st.subheader("Sliding window, step by step")
    render_window(config, image, source, kernel if kernel is not None else weight[0, 0], bias)
    render_details(config, image, weight)


st.title("Convolution")
lesson_link_ui("app_pages/convolution/conv_playground.py")
st.markdown("A filter slides over the image; at every stop it multiplies the pixels under it by its weights and adds "
            "them up. Change the kernel, stride, padding, dilation and groups of a real `nn.Conv2d` and watch "
            "the output, its size and its cost.")
with url_state(FIELDS):
    render()
