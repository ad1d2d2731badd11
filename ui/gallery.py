"""The architecture gallery's tables and classic blocks: a network's layers and all networks as tables; each block
drawn (ui/figures/gallery.py) beside its formula, and which of them a network is built from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.models import gallery

from ui.figures import gallery as figs
from ui.sidebar import presenter_mode


@dataclass(frozen=True)
class Block:
    title: str
    draw: Callable  # (*, presenter) -> go.Figure
    formulas: tuple[str, ...]  # LaTeX, one line each
    caption: str
    kinds: tuple[str, ...]  # module class names (GalleryLayer.kind) that are this block


# In the order the lecture meets them.
BLOCKS = {
    "inception": Block(
        "Inception module", figs.inception_block,
        (r"\begin{aligned} y = \big[\, & f_{1\times1}(x),\ f_{3\times3}\big(f_{1\times1}(x)\big), \\"
         r" & f_{5\times5}\big(f_{1\times1}(x)\big),\ f_{1\times1}\big(\operatorname{pool}(x)\big)\,\big] \end{aligned}",
         r"C_\text{out} = \textstyle\sum_{\text{branches}} C_b"),
        "Four kernel sizes side by side on one input, concatenated along the channels. The 1×1 convolutions in "
        "front shrink the channels first: the 5×5 branch reads 16 channels, not 192. (torchvision's GoogLeNet uses "
        "3×3 in that branch, a known difference kept for its weights; Inception-v3 splits 5×5 into two 3×3 and n×n "
        "into 1×n and n×1.)",
        ("Inception", "InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE", "InceptionModule")),
    "residual": Block(
        "Residual block", figs.residual_block, (r"y = \operatorname{ReLU}\big(F(x) + x\big)",),
        "The block learns only the change F(x); a block that should do nothing sets F to zero. Where the shape "
        "changes, a 1×1 convolution with stride 2 replaces the identity. MobileNet's inverted residuals, "
        "EfficientNet's MBConv, ConvNeXt's blocks and a ViT's encoder blocks add their input back the same way.",
        ("BasicBlock", "ResidualBlock", "InvertedResidual", "MBConv", "CNBlock", "EncoderBlock")),
    "bottleneck": Block(
        "Bottleneck block", figs.bottleneck_block,
        (r"y = F(x) + x", r"F:\ 1{\times}1\,(C \to \tfrac{C}{4}) \to 3{\times}3 \to 1{\times}1\,(\tfrac{C}{4} \to C)",
         r"256\cdot64 + 9\cdot64^2 + 64\cdot256 = 69{,}632",
         r"\text{vs two } 3{\times}3 \text{ at } 256:\ 2\cdot 9\cdot 256^2 = 1{,}179{,}648"),
        "The 3×3 convolution works on a quarter of the channels; the 1×1 convolutions reduce and restore them. "
        "That is how ResNet-50 has 50 layers with about the compute of ResNet-34.",
        ("Bottleneck",)),
    "dense": Block(
        "Dense block", figs.dense_block,
        (r"x_\ell = H_\ell\big([x_0, x_1, \ldots, x_{\ell-1}]\big)", r"C_\text{in}(H_\ell) = k_0 + (\ell-1)\,k"),
        "Every layer reads the concatenation of all earlier maps and adds k new ones (the growth rate); a "
        "transition (1×1 conv, 2×2 average pool) halves channels and map between blocks.",
        ("DenseBlock", "DenseLayer")),
    "se": Block(
        "Squeeze-and-excitation", figs.se_block,
        (r"z_c = \frac{1}{HW}\sum_{i,j} x_c(i,j)", r"s = \sigma\big(W_2\,\delta(W_1 z)\big)", r"\tilde{y}_c = s_c\, x_c"),
        "Attention over channels: a summary of the whole image decides how much each channel counts. It costs "
        "2C²/r weights per block and gives every unit some global context.",
        ()),
}


def blocks_in(summary) -> list[str]:
    """The BLOCKS a network (an engine.models.gallery.GallerySummary) is built from, in BLOCKS' order."""
    kinds = {layer.kind for layer in summary.layers} | {block.kind for block in summary.blocks}
    return [name for name, block in BLOCKS.items()
            if kinds & set(block.kinds) or name == "se" and summary.global_context]


def layer_table(summary) -> pd.DataFrame:
    """One row per layer of an engine.models.gallery.GallerySummary, then the totals."""
    rows = [(layer.name or "(top level)", layer.kind, "×".join(map(str, layer.output_shape)), layer.params, layer.macs,
             "whole image" if layer.whole_image else f"{layer.receptive_field}×{layer.receptive_field}")
            for layer in summary.layers]
    rows.append(("total", "", "", summary.params, summary.macs, "whole image" if summary.family == "vit" else
                 f"{summary.receptive_field}×{summary.receptive_field} (last map)"))
    return pd.DataFrame(rows, columns=["layer", "kind", "output", "parameters", "MACs", "receptive field"])


def overview(summaries) -> pd.DataFrame:
    """One row per network: year, input, size, compute, receptive field, ImageNet top-1 and which weights."""
    return pd.DataFrame([{"network": s.title, "year": gallery.entry(s.name).year,
                          "input": f"{s.in_channels}×{s.input_size}²",
                          "parameters": s.params, "MACs": s.macs, "receptive field (px)": s.receptive_field,
                          "ImageNet top-1 (%)": s.acc1,
                          "weights": gallery.entry(s.name).weights_name or "— (this app's, trained here)"}
                         for s in summaries])


@st.cache_data(max_entries=len(BLOCKS) * 2, show_spinner=False)
def _drawing(name: str, presenter: bool) -> go.Figure:
    return BLOCKS[name].draw(presenter=presenter)


def block_ui(name: str) -> None:
    """One block: its drawing, its formulas and what it does."""
    block = BLOCKS[name]
    st.subheader(block.title)
    left, right = st.columns(2)
    left.plotly_chart(_drawing(name, presenter_mode()), width="content", key=f"gallery.block.{name}")
    for formula in block.formulas:
        right.latex(formula)
    right.caption(block.caption)
