"""Figures for the architecture gallery: a network's block diagram, the classic blocks drawn as graphs,
parameters vs MACs vs ImageNet top-1, the ILSVRC timeline, and why stacked 3×3 convolutions beat one big one.

Pure builders: plain numbers (and engine.models.gallery's dataclasses) in, `go.Figure` out, themed with
ui.figures.train.apply_theme. Diagrams are boxes (annotations, sized by their text) and arrows on hidden
axes laid out in pixels at the text size, so they grow with presenter mode like every other figure and
their labels are text a test can read.

References:
    He et al. 2015, arXiv 1512.03385, fig. 2 and 5 (residual and bottleneck blocks); Szegedy et al. 2014,
    arXiv 1409.4842, fig. 2b and table 1 (Inception module, inception (3a)); Huang et al. 2016, arXiv
    1608.06993, fig. 1 (dense block); Hu et al. 2017, arXiv 1709.01507, fig. 1 (squeeze-and-excitation);
    Simonyan & Zisserman 2014, arXiv 1409.1556, §2.3 (stacks of 3×3); Russakovsky et al. 2015 (ILSVRC).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import (ASSUMED_WIDTH, CHAR_WIDTH, FONT_SIZE, LINE_HEIGHT, PALETTE, PRESENTER_ASSUMED_WIDTH,
                              PRESENTER_FONT_SIZE, SEQUENTIAL, apply_theme, text_size)

# Box fills are light tints of the palette under dark text: readable on the light and the dark theme.
FILL = {"input": "#FFFFFF", "conv": "#CFE4F2", "pool": "#E4E4E4", "block": "#F8E2B8", "head": "#C6EADC",
        "op": "#F2D6E7"}
TEXT, EDGE, BORDER = "#202020", "#8C8C8C", "#6E6E6E"
PAD, GAP, ARROW_ROOM, SIDE_GAP = 4, 28, 30, 26  # pixels: inside a box, between boxes, for an arrow, a skip's lane
UNITS = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
# The plot areas the labels are placed for: a full-width chart on a 1280-px screen beside the sidebar, less the
# axes (and the colour bar); the height is the figure's less its title and axis title.
ACCURACY_PLOT_PX, PARAMS_PLOT_PX, TITLES_PX = 720, 640, 150
FAR_RINGS = 8  # a label that finds no free spot beside its point tries this many rings farther out


def count(n: float) -> str:
    """A count for the eye: 25.6 M, 4.09 G, 846."""
    for scale, unit in UNITS:
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:,.0f}"


def _font(presenter: bool) -> int:
    return PRESENTER_FONT_SIZE if presenter else FONT_SIZE


# ---- boxes and arrows ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    col: float  # columns go right, rows go down; both in units the layout turns into pixels
    row: float
    text: str  # lines separated by <br>; <b> allowed
    kind: str = "conv"  # a FILL key
    hover: str = ""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    side: int = 0  # 0: straight down (with a jog where the columns differ); k > 0: a skip in the k-th lane right


def _box(node: Node, font: int) -> tuple[float, float]:
    """Width and height of a node's box in pixels."""
    lines = [re.sub(r"<[^>]+>", "", line) for line in node.text.split("<br>")]
    width = max(len(line) for line in lines) * (CHAR_WIDTH + 0.05) * font  # bold is wider than the average glyph
    return width + 2 * PAD + 2, len(lines) * LINE_HEIGHT * font + 2 * PAD + 2


def _positions(nodes: Mapping[str, Node], font: int) -> tuple[dict[str, tuple[float, float]], dict[str, tuple]]:
    """Pixel centres: rows one box and an arrow apart; columns as far apart as the widest neighbours need."""
    boxes = {key: _box(node, font) for key, node in nodes.items()}
    row_px = max(h for _, h in boxes.values()) + ARROW_ROOM
    col_px = 1.0
    for a in nodes:
        for b in nodes:
            na, nb = nodes[a], nodes[b]
            if na.row == nb.row and nb.col > na.col:
                col_px = max(col_px, ((boxes[a][0] + boxes[b][0]) / 2 + GAP) / (nb.col - na.col))
    return {key: (n.col * col_px, n.row * row_px) for key, n in nodes.items()}, boxes


def _arrows(nodes: Mapping[str, Node], edges: Sequence[Edge], font: int, xref: str = "x", yref: str = "y"):
    """Annotations (boxes, arrowheads), path shapes (the lines), pixel centres and extent [x0, x1, y0, y1].

    A line leaves a source with several targets just below it (a split) and otherwise joins its target just
    above it (a merge); a skip (`side`) runs down its own lane right of all boxes.
    """
    at, boxes = _positions(nodes, font)
    splits = {e.source for e in edges if not e.side and sum(not f.side and f.source == e.source for f in edges) > 1}
    shapes, annotations, right = [], [], []
    for edge in edges:
        (sx, sy), (tx, ty) = at[edge.source], at[edge.target]
        if edge.side:
            lane = max(at[k][0] + boxes[k][0] / 2 for k in nodes) + SIDE_GAP * edge.side
            right.append(lane)
            points, standoff = [(sx, sy), (lane, sy), (lane, ty)], boxes[edge.target][0] / 2
        elif sx == tx:
            points, standoff = [(sx, sy)], boxes[edge.target][1] / 2
        else:
            jog = (sy + (boxes[edge.source][1] + ARROW_ROOM) / 2 if edge.source in splits
                   else ty - (boxes[edge.target][1] + ARROW_ROOM) / 2)
            points, standoff = [(sx, sy), (sx, jog), (tx, jog)], boxes[edge.target][1] / 2
        shapes.append(dict(type="path", path="M " + " L ".join(f"{x:.1f},{y:.1f}" for x, y in [*points, (tx, ty)]),
                           line=dict(color=EDGE, width=2), layer="below", xref=xref, yref=yref))
        annotations.append(dict(x=tx, y=ty, ax=points[-1][0], ay=points[-1][1], xref=xref, yref=yref, axref=xref,
                                ayref=yref, text="", showarrow=True, arrowhead=2, arrowsize=1.1, arrowwidth=2,
                                arrowcolor=EDGE, standoff=standoff))
    annotations += [dict(x=at[k][0], y=at[k][1], xref=xref, yref=yref, text=n.text, showarrow=False,
                         bgcolor=FILL[n.kind], bordercolor=BORDER, borderwidth=1, borderpad=PAD,
                         font=dict(color=TEXT, size=font), hovertext=n.hover or None) for k, n in nodes.items()]
    extent = [min(at[k][0] - boxes[k][0] / 2 for k in nodes), max([at[k][0] + boxes[k][0] / 2 for k in nodes] + right),
              min(at[k][1] - boxes[k][1] / 2 for k in nodes), max(at[k][1] + boxes[k][1] / 2 for k in nodes)]
    return annotations, shapes, at, extent


def diagram(nodes: Mapping[str, Node], edges: Sequence[Edge], *, title: str, presenter: bool = False) -> go.Figure:
    """Boxes and arrows at one pixel per unit, centred in a figure at least as wide as a chart column (its title
    wraps to that); drawn narrower, the columns move closer."""
    annotations, shapes, _, (x0, x1, y0, y1) = _arrows(nodes, edges, _font(presenter))
    width = max(x1 - x0 + 40, PRESENTER_ASSUMED_WIDTH if presenter else ASSUMED_WIDTH)
    middle, half = (x0 + x1) / 2, (width - 20) / 2  # apply_theme's side margins: 10 px each
    fig = go.Figure(layout=dict(title=title, annotations=annotations, shapes=shapes, showlegend=False, width=width))
    fig.update_xaxes(visible=False, range=[middle - half, middle + half], fixedrange=True)
    fig.update_yaxes(visible=False, range=[y1 + 10, y0 - 10], fixedrange=True)
    apply_theme(fig, presenter)
    fig.update_layout(height=y1 - y0 + 20 + fig.layout.margin.t + fig.layout.margin.b)
    return fig


# ---- a network, block by block --------------------------------------------------------------------------------------

def _kind(kind: str) -> str:
    if "Pool" in kind:
        return "pool"
    if kind == "Linear":
        return "head"
    if "Conv" in kind or "Embed" in kind or kind == "Normalize":
        return "conv"
    return "block"


def _shape(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


def network_diagram(summary, *, presenter: bool = False) -> go.Figure:
    """The diagram's blocks top to bottom (identical neighbours as one ×n), each with its parameters, MACs and
    receptive field beside it; `summary` is an engine.models.gallery.GallerySummary."""
    font, blocks = _font(presenter), summary.blocks
    nodes = {"input": Node(0, 0, f"<b>input</b><br>{summary.in_channels}×{summary.input_size}×{summary.input_size}",
                           "input")}
    for i, b in enumerate(blocks, 1):
        nodes[str(i)] = Node(0, i, f"<b>{b.kind}{f' ×{b.repeat}' if b.repeat > 1 else ''}</b><br>{_shape(b.output_shape)}",
                             _kind(b.kind), hover=b.name)
    chain = list(nodes)
    annotations, shapes, at, (x0, x1, y0, y1) = _arrows(nodes, [Edge(a, b) for a, b in zip(chain, chain[1:])], font)
    ys = [at[key][1] for key in chain[1:]]
    row_px = ys[1] - ys[0] if len(ys) > 1 else y1 - y0
    fig = make_subplots(rows=1, cols=4, shared_yaxes=True, column_widths=[0.31, 0.23, 0.23, 0.23], horizontal_spacing=0.03,
                        subplot_titles=["blocks (input at the top)", "parameters", "MACs", "receptive field (px, log)"])
    rf = [summary.input_size if b.whole_image else b.receptive_field for b in blocks]
    for col, (values, colour, text) in enumerate([
            ([b.params for b in blocks], PALETTE[2], [count(b.params) if b.params else "" for b in blocks]),
            ([b.macs for b in blocks], PALETTE[0], [count(b.macs) if b.macs else "" for b in blocks]),
            (rf, [PALETTE[6] if b.whole_image else PALETTE[1] for b in blocks],
             ["whole image" if b.whole_image else str(b.receptive_field) for b in blocks])], 2):
        inside = ["inside" if col == 4 and b.whole_image else "outside" for b in blocks]
        fig.add_trace(go.Bar(x=values, y=ys, orientation="h", marker_color=colour, text=text, textposition=inside,
                             insidetextanchor="start", insidetextfont=dict(color="white"),
                             cliponaxis=False, customdata=[b.name for b in blocks], width=row_px * 0.55,
                             hovertemplate="%{customdata}: %{x:,}<extra></extra>"), row=1, col=col)
    fig.add_vline(x=summary.input_size, line=dict(color=PALETTE[5], dash="dash"), row=1, col=4)
    fig.update_layout(annotations=list(fig.layout.annotations) + annotations, shapes=shapes, showlegend=False,
                      title=f"{summary.title}: {count(summary.params)} parameters, {count(summary.macs)} MACs")
    fig.update_xaxes(visible=False, range=[x0 - 10, x1 + 10], fixedrange=True, row=1, col=1)
    for col, top in ((2, max(b.params for b in blocks)), (3, max(b.macs for b in blocks))):
        fig.update_xaxes(range=[0, top * 1.45], showticklabels=False, fixedrange=True, row=1, col=col)
    fig.update_xaxes(type="log", range=[0, math.log10(max(rf + [summary.input_size])) + 0.55], showticklabels=False,
                     fixedrange=True, row=1, col=4)
    fig.update_yaxes(visible=False, range=[y1 + 10, y0 - 10], fixedrange=True)
    apply_theme(fig, presenter)
    fig.update_layout(height=y1 - y0 + 20 + fig.layout.margin.t + fig.layout.margin.b)
    return fig


# ---- the classic blocks --------------------------------------------------------------------------------------------

def _residual(branch: Sequence[str]) -> tuple[dict, list]:
    nodes = {"x": Node(0, 0, "x", "input")}
    for i, text in enumerate(branch, 1):
        nodes[f"f{i}"] = Node(0, i, text)
    n = len(branch)
    nodes |= {"add": Node(0, n + 1, "<b>+</b>", "op"), "y": Node(0, n + 2, "ReLU → y", "input")}
    chain = list(nodes)
    return nodes, [Edge(a, b) for a, b in zip(chain, chain[1:])] + [Edge("x", "add", side=1)]


def residual_block(*, presenter: bool = False) -> go.Figure:
    nodes, edges = _residual(["3×3 conv, 64<br>BN, ReLU", "3×3 conv, 64<br>BN"])
    return diagram(nodes, edges, title="ResNet-18/34, 64 channels: the identity on the right", presenter=presenter)


def bottleneck_block(*, presenter: bool = False) -> go.Figure:
    nodes, edges = _residual(["1×1 conv, 64<br>(reduce) BN, ReLU", "3×3 conv, 64<br>BN, ReLU",
                              "1×1 conv, 256<br>(restore) BN"])
    nodes["x"] = Node(0, 0, "x: 256 channels", "input")
    return diagram(nodes, edges, title="ResNet-50/101/152: 256 → 64 → 256 channels", presenter=presenter)


def inception_block(*, presenter: bool = False) -> go.Figure:
    """GoogLeNet's inception (3a), channels as in Szegedy et al. table 1."""
    nodes = {"x": Node(0, 0, "previous layer<br>192 channels", "input"),
             "b1": Node(-1.5, 2, "1×1 conv<br>64"), "r3": Node(-0.5, 1, "1×1 conv<br>96"),
             "b3": Node(-0.5, 2, "3×3 conv<br>128"), "r5": Node(0.5, 1, "1×1 conv<br>16"),
             "b5": Node(0.5, 2, "5×5 conv<br>32"), "pool": Node(1.5, 1, "3×3 max<br>pool", "pool"),
             "b4": Node(1.5, 2, "1×1 conv<br>32"),
             "cat": Node(0, 3, "concatenate channels<br>64 + 128 + 32 + 32 = 256", "op")}
    edges = [Edge("x", k) for k in ("b1", "r3", "r5", "pool")] + [Edge("r3", "b3"), Edge("r5", "b5"), Edge("pool", "b4")]
    edges += [Edge(k, "cat") for k in ("b1", "b3", "b5", "b4")]
    return diagram(nodes, edges, title="GoogLeNet's inception (3a): 192 → 256 channels", presenter=presenter)


def dense_block(layers: int = 3, *, presenter: bool = False) -> go.Figure:
    """x₀ and `layers` layers; every layer reads the concatenation of all maps before it."""
    sub = "₀₁₂₃₄₅₆₇₈₉"
    nodes = {"x0": Node(0, 0, "x₀: k₀ channels", "input")}
    for i in range(1, layers + 1):
        nodes[f"x{i}"] = Node(0, i, f"H{sub[i]}([x₀…x{sub[i - 1]}])<br>BN-ReLU-conv → k new", "block")
    nodes["out"] = Node(0, layers + 1, f"[x₀, …, x{sub[layers]}]: k₀ + {layers}k channels", "op")
    keys = list(nodes)
    edges = [Edge(a, b) for a, b in zip(keys, keys[1:])]
    skips = sorted(((i, j) for i in range(len(keys)) for j in range(i + 2, len(keys))), key=lambda e: (e[1] - e[0], e[0]))
    edges += [Edge(keys[i], keys[j], side=lane) for lane, (i, j) in enumerate(skips, 1)]
    return diagram(nodes, edges, title=f"{layers} layers, growth rate k: every layer reads all earlier maps",
                   presenter=presenter)


def se_block(*, presenter: bool = False) -> go.Figure:
    nodes = {"x": Node(0, 0, "x: C×H×W", "input"), "z": Node(0, 1, "squeeze: global avg pool<br>z: C", "pool"),
             "w1": Node(0, 2, "FC C → C/r, ReLU (δ)", "head"),
             "w2": Node(0, 3, "FC C/r → C, sigmoid (σ)<br>s: C", "head"),
             "scale": Node(0, 4, "<b>×</b>", "op"), "y": Node(0, 5, "ỹ = s·x: C×H×W", "input")}
    keys = list(nodes)
    edges = [Edge(a, b) for a, b in zip(keys, keys[1:])] + [Edge("x", "scale", side=1)]
    return diagram(nodes, edges, title="Each channel scaled by its own gate in (0, 1); r = 16 in SENet", presenter=presenter)


# ---- all networks ---------------------------------------------------------------------------------------------------

def _rect_overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def placed_labels(points: Sequence[tuple[float, float, str]], *, x_range: Sequence[float], y_range: Sequence[float],
                  plot_px: tuple[float, float], font: int, marker_px: float) -> list[dict]:
    """Annotations naming scatter points, each at the first spot near its point (above, below, right, left, then
    the corners, then farther out with a pointer) where it covers no point and no label placed before it.

    `points` are in axis coordinates (log10 of the value on a log axis), the ranges those of the axes; the
    spots are chosen for a plot area of `plot_px` (width, height): a wider plot only spreads the points.
    """
    (x0, x1), (y0, y1), (width, height) = x_range, y_range, plot_px
    at = [((x - x0) / (x1 - x0) * width, (1 - (y - y0) / (y1 - y0)) * height) for x, y, _ in points]
    r = marker_px / 2 + 2
    taken = [(px - r, py - r, px + r, py + r) for px, py in at]
    notes = []
    for (x, y, text), (px, py) in zip(points, at):
        w, h = len(text) * CHAR_WIDTH * font + 4, LINE_HEIGHT * font
        spots = []
        for far in range(FAR_RINGS):
            dx, dy = w / 2 + r + 2 + far * 1.5 * h, h / 2 + r + far * h
            spots += [(0, -dy), (0, dy), (dx, 0), (-dx, 0), (dx, -dy), (-dx, -dy), (dx, dy), (-dx, dy)]
        free = [(dx, dy) for dx, dy in spots
                if 0 <= px + dx - w / 2 and px + dx + w / 2 <= width and 0 <= py + dy - h / 2 and py + dy + h / 2 <= height
                and not any(_rect_overlap((px + dx - w / 2, py + dy - h / 2, px + dx + w / 2, py + dy + h / 2), t)
                            for t in taken)]
        dx, dy = (free or spots)[0]
        taken.append((px + dx - w / 2, py + dy - h / 2, px + dx + w / 2, py + dy + h / 2))
        near = abs(dx) <= w / 2 + r + 2 and abs(dy) <= h / 2 + r
        notes.append(dict(x=x, y=y, text=text, font=dict(size=font), showarrow=not near, xshift=dx if near else 0,
                          yshift=-dy if near else 0, ax=dx, ay=dy, arrowwidth=1, arrowcolor=EDGE, arrowhead=0,
                          standoff=r))
    return notes


def _scatter(fig: go.Figure, points: Sequence, x, y, **marker) -> None:
    fig.add_trace(go.Scatter(
        x=[x(p) for p in points], y=[y(p) for p in points], mode="markers", text=[p.title for p in points],
        marker=dict(line=dict(width=1, color=BORDER), **marker),
        customdata=[[count(p.params), count(p.macs)] for p in points],
        hovertemplate="%{text}<br>%{customdata[0]} parameters, %{customdata[1]} MACs<extra></extra>"))


def _log_range(values: Sequence[float], pad: float) -> list[float]:
    return [math.log10(min(values)) - pad, math.log10(max(values)) + pad]


def accuracy_vs_macs(summaries: Sequence, *, presenter: bool = False) -> go.Figure:
    """ImageNet top-1 against MACs per image (log), one labelled point per network with ImageNet weights."""
    points = [s for s in summaries if s.acc1 is not None]
    marker, height = (14 if presenter else 10), (620 if presenter else 520)
    x_range = _log_range([p.macs for p in points], 0.25)
    y_range = [min(p.acc1 for p in points) - 3, max(p.acc1 for p in points) + 3]
    fig = go.Figure()
    _scatter(fig, points, lambda p: p.macs, lambda p: p.acc1, size=marker, color=PALETTE[0])
    fig.update_layout(title="ImageNet top-1 against compute", showlegend=False, height=height, annotations=placed_labels(
        [(math.log10(p.macs), p.acc1, p.title) for p in points], x_range=x_range, y_range=y_range,
        plot_px=(ACCURACY_PLOT_PX, height - TITLES_PX), font=text_size(presenter), marker_px=marker))
    fig.update_xaxes(type="log", title="MACs per image (log scale)", range=x_range, dtick=1, tickformat="~s")
    fig.update_yaxes(title="ImageNet top-1 (%)", range=y_range)
    return apply_theme(fig, presenter)


def params_vs_macs(summaries: Sequence, *, presenter: bool = False) -> go.Figure:
    """Parameters against MACs, both log: ImageNet networks coloured by top-1, the app's own in gray."""
    ours = [s for s in summaries if s.acc1 is None]
    imagenet = [s for s in summaries if s.acc1 is not None]
    marker, height = (14 if presenter else 10), (660 if presenter else 560)
    x_range, y_range = _log_range([s.macs for s in summaries], 0.3), _log_range([s.params for s in summaries], 0.3)
    fig = go.Figure()
    _scatter(fig, ours, lambda p: p.macs, lambda p: p.params, size=marker, color=PALETTE[6], symbol="diamond")
    _scatter(fig, imagenet, lambda p: p.macs, lambda p: p.params, size=marker, color=[p.acc1 for p in imagenet],
             colorscale=SEQUENTIAL, colorbar=dict(title="top-1 %"), showscale=True)
    fig.update_layout(title="Parameters against compute (gray: this app's nets, for 32×32 images)", showlegend=False,
                      height=height, annotations=placed_labels(
                          [(math.log10(s.macs), math.log10(s.params), s.title) for s in ours + imagenet],
                          x_range=x_range, y_range=y_range, plot_px=(PARAMS_PLOT_PX, height - TITLES_PX),
                          font=text_size(presenter), marker_px=marker))
    fig.update_xaxes(type="log", title="MACs per image (log scale)", range=x_range, dtick=1, tickformat="~s")
    fig.update_yaxes(type="log", title="parameters (log scale)", range=y_range, dtick=1, tickformat="~s")
    return apply_theme(fig, presenter)


def ilsvrc_timeline(entries: Sequence[tuple[int, float, str]], human: float, *, presenter: bool = False) -> go.Figure:
    """Top-5 error of the ILSVRC classification winners by year (a runner-up paler, beside the winner), and the
    human reference as a last bar and a dashed line. A label goes inside its bar where it fits, else above it."""
    years = [year for year, _, _ in entries]
    xs = [year + 0.4 * (years[:i].count(year) - (years.count(year) - 1) / 2) for i, year in enumerate(years)]
    human_x, height = max(years) + 1.5, (560 if presenter else 440)
    errors = [error for _, error, _ in entries] + [human]
    labels = [f"{who.split(' (')[0]}: {error:g} %" for _, error, who in entries] + [f"human ≈ {human:g} %"]
    plot_px = height - 120
    lengths = [len(label) * CHAR_WIDTH * text_size(presenter) + 12 for label in labels]
    top = max(errors) * 1.05  # room above the bars whose label goes outside: e + length · top/plot_px ≤ top
    inside = [length < e / top * plot_px for e, length in zip(errors, lengths)]
    top = max([top] + [e / (1 - length / plot_px) for e, length, i in zip(errors, lengths, inside) if not i])
    fig = go.Figure(go.Bar(
        x=xs + [human_x], y=errors, width=[0.38 if years.count(year) > 1 else 0.75 for year in years] + [0.75],
        marker_color=[PALETTE[4] if "2nd" in who else PALETTE[0] for _, _, who in entries] + [PALETTE[5]],
        text=labels, textposition=["inside" if i else "outside" for i in inside], textangle=-90,
        insidetextanchor="end", insidetextfont=dict(color="white"), cliponaxis=False,
        customdata=[who for _, _, who in entries] + ["one trained person (Karpathy), on a sample of the test set"],
        hovertemplate="%{x:.0f}: %{customdata}, %{y:g} %<extra></extra>"))
    fig.add_hline(y=human, line=dict(color=PALETTE[5], dash="dash", width=2), layer="below")  # under the labels
    fig.update_layout(title="ILSVRC classification: top-5 error of the winners", showlegend=False, height=height)
    fig.update_xaxes(tickvals=sorted(set(years)) + [human_x], ticktext=[str(y) for y in sorted(set(years))] + ["human"])
    fig.update_yaxes(title="top-5 error (%)", range=[0, min(top, 4 * max(errors))])
    return apply_theme(fig, presenter)


# ---- n stacked 3×3 against one (2n+1)×(2n+1) --------------------------------------------------------------------

def stacked_fields(stacked: int, *, presenter: bool = False) -> go.Figure:
    """Side view of one row: n stacked 3×3 layers and one (2n+1)-wide layer see the same 2n+1 input pixels."""
    kernel = 2 * stacked + 1
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=[
        f"{stacked} stacked 3×3 convs: {stacked} ReLUs", f"one {kernel}×{kernel} conv: 1 ReLU"])
    for col, levels in ((1, [(level, 2 * (stacked - level) + 1) for level in range(stacked + 1)]),
                        (2, [(0, kernel), (stacked, 1)])):
        xs, ys = [], []
        for (low, width), (high, above) in zip(levels, levels[1:]):
            for unit in range(above):
                x = unit - above // 2
                reach = (width - above) // 2  # each unit reads this far to either side, one level down
                for below in range(x - reach, x + reach + 1):
                    xs += [x, below, None]
                    ys += [high, low, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=EDGE, width=1.5), hoverinfo="skip"),
                      row=1, col=col)
        for level, width in levels:
            fig.add_trace(go.Scatter(
                x=[u - width // 2 for u in range(width)], y=[level] * width, mode="markers",
                marker=dict(size=18 if presenter else 14, symbol="square" if level == 0 else "circle",
                            color=PALETTE[1] if level == 0 else PALETTE[0]),
                hovertemplate=("input pixel" if level == 0 else f"a unit of layer {level}" if col == 1 else
                               f"the {kernel}×{kernel} conv's unit") + "<extra></extra>"),
                row=1, col=col)
    fig.update_layout(showlegend=False, height=360 if presenter else 300)
    fig.update_xaxes(visible=False, range=[-stacked - 0.7, stacked + 0.7])
    fig.update_yaxes(title="layer (0 = input)", dtick=1, range=[-0.5, stacked + 0.5])
    fig.update_yaxes(title=None, row=1, col=2)
    return apply_theme(fig, presenter)
