"""Figures for convolution and pooling: number grids with a window, products, footprints, coverage, receptive fields.

Pure builders: numbers in, `go.Figure` out (rows go down, as in an image). Colours are the
colour-blind-safe palette of ui/figures/train.py. The figures are assembled as plain dicts over the
shared theme and built without plotly's per-property validation: a slider move redraws several of
them, and validation costs tens of milliseconds each (tests/test_conv_pages.py validates them).

References:
    V. Dumoulin & F. Visin, "A guide to convolution arithmetic for deep learning" (2016) — its grid drawings.
    Plotly heatmaps with text, https://plotly.com/python/heatmaps/
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import diverging, make_colorscale

from ui.figures.train import PALETTE, apply_theme, fitted_title, text_size, title_room

WINDOW, WINNER, PAD = PALETTE[1], PALETTE[5], "rgba(128, 128, 128, 0.35)"
DIVERGING = make_colorscale(diverging.RdBu_r)  # ColorBrewer RdBu: negative blue, 0 white, positive red
CELL_PX, PRESENTER_CELL_PX = 34, 52  # pixels per grid cell: room for a number like -0.57 at the text size
PRODUCT_CELL_PX, PRESENTER_PRODUCT_CELL_PX = (78, 62), (124, 84)  # (width, height) of 'x×w =p' cells
MAX_PRESENTER_WIDTH = 880  # pixels: a presenter-mode grid fits a 1280-px screen beside the sidebar
MAX_TEXT_CELLS = 900  # above this a grid drops its per-cell numbers


def _fmt(value: float) -> str:
    value = float(value) + 0.0  # no "-0"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _cells(rects: Iterable[tuple[int, int]], colour: str, width: int = 3) -> list[dict]:
    return [dict(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5, line=dict(color=colour, width=width))
            for r, c in rects]


@functools.cache
def _theme(presenter: bool, titled: bool) -> dict:
    """apply_theme's layout as a dict (computed once), so figures here can be built without validation."""
    fig = go.Figure(layout=dict(title=dict(text="title" if titled else None)))
    return apply_theme(fig, presenter).layout.to_plotly_json()


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _figure(data: list[dict], layout: dict, presenter: bool) -> go.Figure:
    """The theme under `layout`; as apply_theme does, the title wrapped to the width, cell numbers sized."""
    title = layout.get("title", {}).get("text")
    themed = _merge(copy.deepcopy(_theme(presenter, bool(title))), layout)
    if title:  # the theme kept room for one line of title; a wrapped one takes more
        one_line = title_room(_theme(presenter, True)["title"])
        themed["title"] = fitted_title(title, layout.get("width"), presenter)
        themed["margin"]["t"] += title_room(themed["title"]) - one_line
    for trace in data:
        if trace["type"] == "heatmap":
            trace.setdefault("textfont", dict(size=text_size(presenter)))
    return go.Figure(dict(data=data, layout=themed), _validate=False)


def _grid_axes(rows: int, cols: int, labels: tuple[Sequence[int], Sequence[int]] | None = None, *,
               cell: tuple[int, int] = (CELL_PX, CELL_PX)) -> dict:
    yaxis = dict(autorange="reversed", scaleanchor="x", showgrid=False, zeroline=False)
    xaxis = dict(showgrid=False, zeroline=False, side="top")
    if labels:
        yaxis |= dict(tickmode="array", tickvals=list(range(rows)), ticktext=[str(v) for v in labels[0]])
        xaxis |= dict(tickmode="array", tickvals=list(range(cols)), ticktext=[str(v) for v in labels[1]])
    return dict(xaxis=xaxis, yaxis=yaxis, height=max(160, cell[1] * rows + 110), width=max(200, cell[0] * cols + 60),
                margin=dict(t=80))  # room for the title above the column numbers


def number_grid(values: np.ndarray, *, title: str = "", window: Iterable[tuple[int, int]] = (),
                padding: int | tuple[int, int] = 0, winners: Iterable[tuple[int, int]] = (),
                text: Sequence[Sequence[str]] | None = None, cell: tuple[int, int] | None = None,
                presenter: bool = False) -> go.Figure:
    """A 2-D array as a heatmap with its numbers; `window` cells outlined, the outer `padding` ring shaded.

    Axis labels are input coordinates, so padding rows read −1, −2, … `cell` is (width, height) in pixels.
    """
    values = np.asarray(values, dtype=np.float64)
    rows, cols = values.shape
    before, after = (padding, padding) if isinstance(padding, int) else padding
    limit = float(np.abs(values).max()) or 1.0
    show_text = rows * cols <= MAX_TEXT_CELLS
    heatmap = dict(type="heatmap", z=values.tolist(), colorscale=DIVERGING, zmin=-limit, zmax=limit,
                   showscale=False, xgap=1, ygap=1, hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>",
                   text=text if text is not None else [[_fmt(v) for v in row] for row in values])
    if show_text:
        heatmap["texttemplate"] = "%{text}"
    shapes = []
    if before or after:  # shade the padding ring
        y0, y1, x0, x1 = before - 0.5, rows - after - 0.5, before - 0.5, cols - after - 0.5
        for left, right, bottom, top in [(-0.5, cols - 0.5, -0.5, y0), (-0.5, cols - 0.5, y1, rows - 0.5),
                                         (-0.5, x0, y0, y1), (x1, cols - 0.5, y0, y1)]:
            if right > left and top > bottom:
                shapes.append(dict(type="rect", x0=left, x1=right, y0=bottom, y1=top, fillcolor=PAD,
                                   line=dict(width=0)))
    shapes += _cells(winners, WINNER, 4) + _cells(window, WINDOW, 3)
    labels = (range(-before, rows - before), range(-before, cols - before))
    cell = cell or _cell(presenter, cols)
    return _figure([heatmap], dict(title=dict(text=title), shapes=shapes) | _grid_axes(rows, cols, labels, cell=cell),
                   presenter)


def _cell(presenter: bool, cols: int) -> tuple[int, int]:
    """A grid cell's size: larger numbers need larger cells, though a wide grid still fits the screen."""
    if not presenter:
        return CELL_PX, CELL_PX
    side = max(CELL_PX, min(PRESENTER_CELL_PX, (MAX_PRESENTER_WIDTH - 60) // max(1, cols)))
    return side, side


def products_grid(patch: np.ndarray, kernel: np.ndarray, products: np.ndarray, total: float, *,
                  presenter: bool = False) -> go.Figure:
    """Each cell 'input × weight = product'; the title gives the sum."""
    text = [[f"{_fmt(x)}×{_fmt(w)}<br>={_fmt(p)}" for x, w, p in zip(*rows)] for rows in zip(patch, kernel, products)]
    k = len(kernel)
    width, height = PRESENTER_PRODUCT_CELL_PX if presenter else PRODUCT_CELL_PX
    if presenter:
        width = max(PRODUCT_CELL_PX[0], min(width, (MAX_PRESENTER_WIDTH - 60) // k))
    fig = number_grid(products, text=text, presenter=presenter, title=f"Products, sum = {_fmt(total)}",
                      cell=(width, height))
    fig.layout.height, fig.layout.width = max(180, height * k + 90), max(220, width * k + 60)
    fig.layout.xaxis.showticklabels = fig.layout.yaxis.showticklabels = False
    return fig


def footprint(kernel: np.ndarray, dilation: int, *, presenter: bool = False) -> go.Figure:
    """The dilated kernel: weights at every D-th pixel of a D(K−1)+1 square, zeros (skipped pixels) between."""
    k = len(kernel)
    span = dilation * (k - 1) + 1
    grid = np.full((span, span), np.nan)
    grid[::dilation, ::dilation] = kernel
    text = [["" if np.isnan(v) else _fmt(v) for v in row] for row in grid]
    limit = float(np.nanmax(np.abs(kernel))) or 1.0
    heatmap = dict(type="heatmap", z=np.where(np.isnan(grid), None, grid).tolist(), text=text, colorscale=DIVERGING,
                   zmin=-limit, zmax=limit, showscale=False, xgap=1, ygap=1,
                   hovertemplate="offset (%{y}, %{x}): %{z}<extra></extra>")
    if span <= 30:
        heatmap["texttemplate"] = "%{text}"
    layout = (dict(title=dict(text=f"{k}×{k} kernel, dilation {dilation}: spans {span}×{span}"))
              | _grid_axes(span, span, cell=_cell(presenter, span)))
    layout["width"] = max(layout["width"], 340)  # room for the title
    return _figure([heatmap], layout, presenter)


def coverage_bars(counts: np.ndarray, before: int, n: int, *, presenter: bool = False) -> go.Figure:
    """How many windows read each row/column; padding gray, never-visited input rows highlighted."""
    positions = np.arange(len(counts)) - before
    colours = [PAD if not 0 <= p < n else (PALETTE[5] if c == 0 else PALETTE[0]) for p, c in zip(positions, counts)]
    bars = dict(type="bar", x=positions.tolist(), y=counts.tolist(), marker=dict(color=colours),
                hovertemplate="position %{x}: read by %{y} windows<extra></extra>")
    unvisited = any(c == 0 and 0 <= p < n for p, c in zip(positions, counts))
    title = "Windows reading each row" + (" (red: never read)" if unvisited else "")  # the rows: in the caption
    layout = dict(title=dict(text=title), height=260, bargap=0.15,
                  xaxis=dict(title=dict(text="input row (or column); gray = padding")),
                  yaxis=dict(title=dict(text="windows")))
    return _figure([bars], layout, presenter)


def receptive_field_growth(labels: Sequence[str], sizes: Sequence[int], jumps: Sequence[int], *,
                           presenter: bool = False) -> go.Figure:
    fig = go.Figure([
        go.Scatter(x=list(labels), y=list(sizes), mode="lines+markers+text", name="receptive field (pixels)",
                   text=[str(s) for s in sizes], textposition="top center", line=dict(color=PALETTE[0], width=3)),
        go.Scatter(x=list(labels), y=list(jumps), mode="lines+markers", name="jump (input pixels between units)",
                   line=dict(color=PALETTE[1], dash="dash")),
    ])
    fig.update_layout(title="Receptive field after each layer", height=340, yaxis_title="input pixels",
                      legend=dict(orientation="h", y=-0.25), yaxis_range=[0, 1.15 * max([*sizes, *jumps, 1])])
    return apply_theme(fig, presenter)


def image_with_box(pixels: np.ndarray, box: tuple[int, int, int, int], *, title: str = "",
                   presenter: bool = False) -> go.Figure:
    """A uint8 image (H, W) or (H, W, 3) with the rectangle rows r0…r1, cols c0…c1 (inclusive) drawn on it."""
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=-1)
    r0, r1, c0, c1 = box
    shapes = [dict(type="rect", x0=c0 - 0.5, x1=c1 + 0.5, y0=r0 - 0.5, y1=r1 + 0.5,
                   line=dict(color=WINDOW, width=3), fillcolor="rgba(230, 159, 0, 0.15)")]
    fig = go.Figure(go.Image(z=rgb, hovertemplate="row %{y}, col %{x}<extra></extra>"))
    fig.update_layout(shapes=shapes, title=title, height=420)
    fig.update_xaxes(range=[min(-0.5, box[2] - 1), max(rgb.shape[1] - 0.5, box[3] + 1)], showgrid=False)
    fig.update_yaxes(range=[max(rgb.shape[0] - 0.5, box[1] + 1), min(-0.5, box[0] - 1)], showgrid=False,
                     scaleanchor="x")
    return apply_theme(fig, presenter)


def mixing_matrix(weights: np.ndarray, in_labels: Sequence[str], *, presenter: bool = False) -> go.Figure:
    """A 1×1 convolution's weights (C_out, C_in) as a heatmap: output channel = weighted sum of input channels."""
    fig = number_grid(weights, presenter=presenter, title="1×1 weights")
    fig.layout.xaxis.ticktext = list(in_labels)
    fig.layout.yaxis.ticktext = [f"out {i}" for i in range(len(weights))]
    fig.layout.width = max(260, 70 * len(in_labels) + 120)
    return fig
