"""Architecture gallery: torchvision's ImageNet networks beside the app's own, layer by layer; all compared with the
ILSVRC timeline; the classic blocks drawn with their formulas; why two 3×3 convolutions beat one 5×5."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.models import gallery
from ui import gallery as blocks
from ui.figures import gallery as figs
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode
from ui.state import choice, number, url_state

P = "gal"
VIEWS = {"network": "One network", "compare": "All networks & ILSVRC", "blocks": "Building blocks",
         "stacks": "Two 3×3 vs one 5×5"}
FIELDS = [choice(f"{P}.view", "view", "network", list(VIEWS)), choice(f"{P}.net", "net", "alexnet", gallery.names()),
          number(f"{P}.channels", "c", 64, 1, 4096, int), number(f"{P}.stacked", "n", 2, 2, 5, int)]
PRESETS = {"timeline": {"view": "compare"}, "two_3x3": {"view": "stacks", "c": 64, "n": 2},
           "googlenet": {"view": "network", "net": "googlenet"}}
COUNTS = {c: st.column_config.NumberColumn(format="localized") for c in ("parameters", "MACs")}


@st.cache_resource(show_spinner="Building the network on the meta device…")
def _summary(name: str) -> gallery.GallerySummary:
    """Shared by every session: a frozen description, read only."""
    return gallery.describe(name)


@st.cache_resource(show_spinner="Building every network on the meta device (a few seconds, once)…")
def _summaries() -> list[gallery.GallerySummary]:
    return gallery.describe_all()


@st.cache_data(max_entries=32, show_spinner=False)
def _network(name: str, presenter: bool) -> tuple[pd.DataFrame, go.Figure]:
    """The layer table and the block diagram: a figure costs more to build than to copy."""
    return blocks.layer_table(_summary(name)), figs.network_diagram(_summary(name), presenter=presenter)


@st.cache_data(max_entries=2, show_spinner=False)
def _compared(presenter: bool) -> tuple[go.Figure, go.Figure, go.Figure, pd.DataFrame]:
    summaries = _summaries()
    return (figs.ilsvrc_timeline(gallery.ILSVRC_TOP5, gallery.HUMAN_TOP5, presenter=presenter),
            figs.accuracy_vs_macs(summaries, presenter=presenter), figs.params_vs_macs(summaries, presenter=presenter),
            blocks.overview(summaries))


@st.cache_data(max_entries=64, show_spinner=False)
def _stacked(channels: int, stacked: int) -> gallery.StackComparison:
    return gallery.stacked_vs_single(channels, stacked=stacked)


def _label(name: str) -> str:
    spec = gallery.entry(name)
    return f"{spec.title} ({spec.year}, torchvision)" if spec.source == "torchvision" else f"{spec.title} (this app)"


def render_network() -> None:
    name = st.selectbox("Network", gallery.names(), key=f"{P}.net", format_func=_label,
                        help="torchvision's ImageNet nets in the order of their papers, then this app's nets for 32×32.")
    s = _summary(name)
    a, b, c, d = st.columns(4)
    a.metric("Parameters", figs.count(s.params), help=f"{s.params:,} exactly.")
    b.metric("MACs per image", figs.count(s.macs), help=f"{s.macs:,} multiply-accumulates for one "
             f"{s.in_channels}×{s.input_size}×{s.input_size} image (FLOPs ≈ 2 × MACs).")
    c.metric("Receptive field", "whole image" if s.family == "vit" else f"{s.receptive_field} px",
             help="The side of the input square one unit of the last feature map depends on.")
    d.metric("ImageNet top-1", "—" if s.acc1 is None else f"{s.acc1:.1f} %",
             help=f"Of torchvision's {gallery.entry(name).weights_name} weights, from their metadata (no download)."
             if s.acc1 is not None else
             "Not trained on ImageNet: this app's nets train here on 32×32 images.")
    st.caption(f"**Receptive field:** {s.receptive_field_note}. The last feature map is {s.last_map[0]}×{s.last_map[1]}, "
               f"its units {s.jump} px apart. Built on PyTorch's meta device (shapes, no numbers): its "
               f"{s.weights_mb:,.1f} MB of float32 weights take no memory here.")
    table, diagram = _network(name, presenter_mode())
    st.plotly_chart(diagram, width="stretch", key=f"{P}.diagram")
    st.caption("Identical neighbouring blocks are drawn once (×n); norms and activations join the block before "
               "them. Hover a block for its modules.")
    st.dataframe(table, hide_index=True, width="stretch", height=380, column_config=COUNTS)
    for block in blocks.blocks_in(s):
        blocks.block_ui(block)


def render_compare() -> None:
    timeline, accuracy, sizes, table = _compared(presenter_mode())
    st.plotly_chart(timeline, width="stretch", key=f"{P}.timeline")
    st.caption("Top-5 error: the true class is not among the network's five highest scores. The winners were "
               "ensembles of several networks; the single networks below are torchvision's weights.")
    st.plotly_chart(accuracy, width="stretch", key=f"{P}.acc")
    st.caption("Top-1 of torchvision's DEFAULT weights, from their metadata (no download); IMAGENET1K_V2 (table "
               "below) is a newer training recipe, several points above the paper's.")
    st.plotly_chart(sizes, width="stretch", key=f"{P}.params")
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        **COUNTS, "year": st.column_config.NumberColumn(format="%d"),
        "ImageNet top-1 (%)": st.column_config.NumberColumn(format="%.1f")})


def render_stacks() -> None:
    a, b = st.columns(2)
    channels = a.number_input("Channels C (in and out)", 1, 4096, key=f"{P}.channels",
                              help="Every convolution maps C channels to C; VGG's blocks use 64 to 512.")
    n = b.number_input("Stacked 3×3 layers n", 2, 5, key=f"{P}.stacked",
                       help="n stacked 3×3 convolutions see the same window as one (2n+1)×(2n+1).")
    r = _stacked(int(channels), int(n))
    k = r.kernel
    left, middle, right = st.columns(3)
    left.metric(f"{n} stacked 3×3: weights", f"{r.stacked_params:,}", help=f"n · 9C² = {n} · 9 · {channels}²")
    middle.metric(f"One {k}×{k}: weights", f"{r.single_params:,}", help=f"(2n+1)² C² = {k * k} · {channels}²")
    right.metric("Fewer weights", f"{r.saving:.0%}", help="1 − 9n/(2n+1)²: the same for every C.")
    st.latex((rf"\begin{{aligned}} {n}\cdot 3^2 C^2 &= {n}\cdot 9\cdot {channels}^2 = {r.stacked_params:,} \\"
              rf" {k}^2 C^2 &= {k * k}\cdot {channels}^2 = {r.single_params:,} \end{{aligned}}").replace(",", "{,}"))
    st.plotly_chart(figs.stacked_fields(int(n), presenter=presenter_mode()), width="stretch", key=f"{P}.fields")
    st.caption(f"Traced on the meta device, the stack sees {r.stacked_field}×{r.stacked_field} input pixels and the "
               f"single convolution {r.single_field}×{r.single_field}. The stack puts {n} ReLUs in that window instead "
               f"of one, with {r.saving:.0%} fewer weights; on an H×W map the MACs are the weights × H·W, so it saves "
               "the same share of compute (biases left out).")


def render() -> None:
    view = st.segmented_control("Show", list(VIEWS), format_func=VIEWS.get, key=f"{P}.view", required=True,
                                help="One network in detail, all of them compared, the classic blocks, or VGG's rule.")
    if view == "network":
        render_network()
    elif view == "compare":
        render_compare()
    elif view == "blocks":
        for block in blocks.BLOCKS:
            blocks.block_ui(block)
    else:
        render_stacks()


st.title("Architecture gallery")
lesson_link_ui("app_pages/architectures/gallery.py")
st.markdown("Twenty years of ImageNet networks, from LeNet-5 to ConvNeXt and ViT, beside this app's own: each layer's "
            "output, parameters, multiply-accumulates and receptive field; all of them against compute and the "
            "ILSVRC timeline; the blocks that made them work, drawn with their formulas.")
with url_state(FIELDS, PRESETS):
    render()
