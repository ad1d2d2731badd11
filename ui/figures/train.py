"""Figures for training and results: learning curves, confusion matrix, per-class accuracy, top-k bars.

Pure builders: plain numbers in, `go.Figure` out. Colours are colour-blind safe and backgrounds
transparent, so the figures read on Streamlit's light and dark themes.

References:
    Okabe & Ito, "Color Universal Design", https://jfly.uni-koeln.de/color/
    Plotly heatmaps with text, https://plotly.com/python/heatmaps/
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

# Okabe–Ito without black (invisible on the dark theme), yellow last (faint on the light theme).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#F0E442")
SEQUENTIAL = "Viridis"  # perceptually uniform and colour-blind safe
FONT_SIZE, PRESENTER_FONT_SIZE = 14, 22  # pixels
# Numbers drawn inside a plot (heatmap cells, bar labels): plotly shrinks them to fit their cell or
# bar (to ~8 px on a 10-class confusion matrix), so their size is set; ≥ 16 px reads from a room's back.
TEXT_SIZE, PRESENTER_TEXT_SIZE = 12, 18  # pixels
# Plotly never wraps a title: a long one runs off the figure. Titles are wrapped for the figure's own
# width, or where it fills its container for this width: a chart column's narrowest in presenter
# mode (its CSS, ui/sidebar.py) and about a half-width column of a laptop screen otherwise.
ASSUMED_WIDTH, PRESENTER_ASSUMED_WIDTH = 460, 560  # pixels
SUBPLOTS_ASSUMED_WIDTH = 880  # pixels: subplots side by side fill the page's width (1280-px screen, sidebar open)
CHAR_WIDTH = 0.55  # average glyph width of plotly's sans-serif, in ems
LINE_HEIGHT = 1.3  # plotly's spacing of text lines, in ems
GRID = "rgba(128, 128, 128, 0.25)"  # a gray that reads on light and dark backgrounds
MAX_CELL_TEXT = 20  # classes; above this the confusion matrix drops its per-cell counts
MARKERS_UP_TO = 30  # epochs; longer curves are drawn as plain lines
CURVE_SPLITS = (("train", "dash"), ("val", "solid"))


def text_size(presenter: bool = False) -> int:
    """Font size of numbers inside a plot's cells and bars."""
    return PRESENTER_TEXT_SIZE if presenter else TEXT_SIZE


def _wrapped(words: list[str], room: int) -> list[str]:
    lines, line = [], ""
    for word in words:
        if line and len(re.sub(r"<[^>]+>", "", f"{line} {word}")) > room:  # tags take no room
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]


def wrap_title(title: str, width_px: float, font_px: float) -> str:
    """`title` with `<br>` between words where a line would be wider than `width_px` at `font_px`,
    in lines of about equal length."""
    room = max(12, int((width_px - 20) / (CHAR_WIDTH * font_px)))  # characters per line
    lines = []
    for part in title.split("<br>"):
        words = part.split(" ")
        count = len(_wrapped(words, room))
        lines += next((_wrapped(words, r) for r in range(math.ceil(len(part) / count), room)
                       if len(_wrapped(words, r)) == count), _wrapped(words, room))
    return "<br>".join(lines)


def fitted_title(title: str, width: float | None, presenter: bool = False) -> dict:
    """A title's layout: wrapped to the figure's `width` (None: it fills its container), hung from the top."""
    size = (PRESENTER_FONT_SIZE if presenter else FONT_SIZE) + 4
    text = wrap_title(title, width or (PRESENTER_ASSUMED_WIDTH if presenter else ASSUMED_WIDTH), size)
    # plotly centres a title's lines on its anchor: hung from the top, the extra lines need half their height more
    pad = 12 + round(LINE_HEIGHT / 2 * size * text.count("<br>"))
    return dict(text=text, font=dict(size=size), yref="container", y=1, yanchor="top", pad=dict(t=pad))


def title_room(title: dict | None) -> int:
    """Pixels of top margin that a `fitted_title` takes."""
    return 20 + round(LINE_HEIGHT * title["font"]["size"] * (title["text"].count("<br>") + 1)) if title else 0


def _fit_subplot_titles(fig: go.Figure, size: int) -> int:
    """Wrap make_subplots' titles (fixed at 16 px by plotly) to their column at `size`; the top row's height."""
    grid = getattr(fig, "_grid_ref", None)
    if not grid:
        return 0
    width = (fig.layout.width or SUBPLOTS_ASSUMED_WIDTH) / len(grid[0])
    top = 0
    for note in fig.layout.annotations:
        if note.showarrow is False and note.yanchor == "bottom" and note.xref == note.yref == "paper" and note.text:
            note.font.size = max(note.font.size or 0, size)
            note.text = wrap_title(note.text, width, note.font.size)
            if note.y is not None and note.y >= 1:
                top = max(top, round(LINE_HEIGHT * note.font.size * (note.text.count("<br>") + 1)))
    return top


def apply_theme(fig: go.Figure, presenter: bool = False) -> go.Figure:
    """Font sizes for a laptop or a projector, transparent backgrounds, soft grid, titles that fit; returns `fig`."""
    size = PRESENTER_FONT_SIZE if presenter else FONT_SIZE
    title = fitted_title(fig.layout.title.text, fig.layout.width, presenter) if fig.layout.title.text else None
    fig.update_layout(
        font=dict(size=size), paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        margin=dict(l=10, r=10, t=(title_room(title) or 20) + _fit_subplot_titles(fig, size), b=10),
        legend=dict(font=dict(size=size - 2)), hoverlabel=dict(font=dict(size=size)),
        # bar labels inside their bars shrink to fit; here they stay readable, overflowing if need be
        uniformtext=dict(minsize=text_size(presenter), mode="show"),
    )
    if title:
        fig.update_layout(title=title)
    legend = fig.layout.legend
    if legend.orientation == "h" and legend.y is not None and legend.y < 0 and legend.yref in (None, "paper"):
        # below the plot at a fixed fraction of its height, a legend covers the x-axis title once fonts
        # grow; in the container's coordinates plotly keeps a margin for it (as learning_curves does)
        fig.update_layout(legend=dict(yref="container", y=0, yanchor="bottom"))
    for trace in fig.data:
        if trace.type == "heatmap" and trace.textfont.size is None:  # plotly would fit the text to the cell
            trace.textfont.size = text_size(presenter)
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=GRID, title_font=dict(size=size), tickfont=dict(size=size - 2))
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=GRID, title_font=dict(size=size), tickfont=dict(size=size - 2))
    return fig


def run_label(name: str, history: Any) -> str:
    """The run's name, with how it ended when it did not run its course."""
    if getattr(history, "diverged_at", None) is not None:
        return f"{name} (diverged at step {history.diverged_at})"
    reason = getattr(history, "stopped_reason", None)
    if reason:
        return f"{name} ({'cancelled' if reason == 'cancelled' else 'stopped early'})"
    return name


def learning_curves(histories: Mapping[str, Any], metric: str = "loss", *, presenter: bool = False) -> go.Figure:
    """Train (dashed) and validation (solid) curves per run, one colour per run, x = epoch.

    `histories` maps run names to History-like objects with `epoch`, `train_<metric>`, `val_<metric>`.
    """
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc'; got {metric!r}")
    fig = go.Figure()
    for i, (name, history) in enumerate(histories.items()):
        colour, label = PALETTE[i % len(PALETTE)], run_label(name, history)
        for split, dash in CURVE_SPLITS:
            fig.add_trace(go.Scatter(
                mode=_curve_mode(history), name=f"{label} · {split}", legendgroup=name,
                line=dict(color=colour, dash=dash, width=2),
                hovertemplate=f"{name} · {split}<br>epoch %{{x}}: %{{y:{'.3f' if metric == 'loss' else '.1%'}}}"
                              "<extra></extra>"))
    title = "Loss (dashed = train, solid = validation)" if metric == "loss" else \
        "Accuracy (dashed = train, solid = validation)"
    # The legend sits below the plot in the container's own coordinates, so it cannot cover the
    # epoch axis title at any font size (apply_theme keeps the bottom margin for it).
    fig.update_layout(title=title, legend=dict(orientation="h", yref="container", yanchor="bottom", y=0),
                      hovermode="closest")
    fig.update_xaxes(title="epoch", tickformat="d")
    if metric == "acc":
        fig.update_yaxes(title="accuracy", range=[0.0, 1.02], tickformat=".0%")
    else:
        fig.update_yaxes(title="loss", rangemode="tozero")
    refill_learning_curves(fig, histories, metric)
    return apply_theme(fig, presenter)


def refill_learning_curves(fig: go.Figure, histories: Mapping[str, Any], metric: str) -> bool:
    """Put newer numbers of the same runs into a `learning_curves` figure, in place; False (and `fig`
    untouched) when `fig` was drawn for other runs, another metric or the other line style.

    Building a figure costs ~15 ms (plotly validates every property); this sets only the data and the
    epoch axis, so a live chart that polls its job every second stays cheap.
    """
    wanted = [(f"{run_label(name, history)} · {split}", _curve_mode(history))
              for name, history in histories.items() for split, _ in CURVE_SPLITS]
    if [(trace.name, trace.mode) for trace in fig.data] != wanted or \
            fig.layout.yaxis.title.text != ("accuracy" if metric == "acc" else "loss"):
        return False
    traces, longest = iter(fig.data), 1
    for history in histories.values():
        epochs = list(history.epoch)
        longest = max(longest, len(epochs) and max(epochs))
        for split, _ in CURVE_SPLITS:
            trace = next(traces)
            trace.x, trace.y = epochs, list(getattr(history, f"{split}_{metric}"))
    fig.layout.xaxis.range = [0.8, longest + 0.2]
    fig.layout.xaxis.dtick = max(1, math.ceil(longest / 10))
    return True


def _curve_mode(history: Any) -> str:
    return "lines+markers" if len(history.epoch) <= MARKERS_UP_TO else "lines"


def confusion_matrix(matrix: Sequence[Sequence[float]], class_names: Sequence[str], *, normalize: bool = True,
                     presenter: bool = False) -> go.Figure:
    """Heatmap of counts (row = true class, column = predicted); colour = share of the true class if `normalize`."""
    counts = [[int(v) for v in row] for row in _rows(matrix)]
    if normalize:
        colour = [[v / max(1, sum(row)) for v in row] for row in counts]
    else:
        colour = counts
    names = [str(n) for n in class_names]
    show_text = len(names) <= MAX_CELL_TEXT
    fig = go.Figure(go.Heatmap(
        z=colour, x=names, y=names, text=counts, texttemplate="%{text}" if show_text else None,
        colorscale=SEQUENTIAL, zmin=0, zmax=1 if normalize else None,
        colorbar=dict(title="share of<br>true class" if normalize else "count",
                      tickformat=".0%" if normalize else None),
        hovertemplate="true %{y}, predicted %{x}: %{text}"
                      + (" (%{z:.0%} of the true class)" if normalize else "") + "<extra></extra>"))
    fig.update_layout(title="Confusion matrix", height=max(420, 160 + (44 if presenter else 28) * len(names)))
    fig.update_xaxes(title="predicted class", type="category", side="bottom", showgrid=False)
    fig.update_yaxes(title="true class", type="category", autorange="reversed", showgrid=False)
    apply_theme(fig, presenter)
    return fig


def per_class_accuracy(values: Sequence[float], class_names: Sequence[str], *, overall: float | None = None,
                       presenter: bool = False) -> go.Figure:
    """Bars of per-class accuracy (recall) in [0, 1]; NaN (class absent from the split) shows no bar."""
    values = [float(v) for v in _flat(values)]
    names = [str(n) for n in class_names]
    shown = [None if math.isnan(v) else v for v in values]
    fig = go.Figure(go.Bar(
        x=names, y=shown, marker_color=PALETTE[0],
        text=["—" if v is None else f"{v:.0%}" for v in shown], textposition="inside",
        insidetextanchor="end", textangle=0,
        hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    if overall is not None:
        fig.add_hline(y=overall, line=dict(color=PALETTE[5], dash="dash"), layer="below")  # under the bar labels
    title = "Accuracy per class" + (f" (dashed: overall {overall:.1%})" if overall is not None else "")
    fig.update_layout(title=title, showlegend=False)
    fig.update_xaxes(title="true class", type="category")
    fig.update_yaxes(title="accuracy", range=[0.0, 1.05], tickformat=".0%")
    return apply_theme(fig, presenter)


def top_k_bars(pairs: Sequence[tuple[str, float]], *, presenter: bool = False) -> go.Figure:
    """Horizontal bars of (class name, probability), the most likely on top."""
    names = [str(name) for name, _ in pairs]
    probs = [float(p) for _, p in pairs]
    fig = go.Figure(go.Bar(
        x=probs, y=names, orientation="h", marker_color=PALETTE[0],
        text=[f"{p:.1%}" for p in probs], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(title=f"Top {len(pairs)} predictions", showlegend=False,
                      height=120 + (55 if presenter else 40) * max(1, len(pairs)))
    fig.update_xaxes(title="probability", range=[0.0, 1.15], tickformat=".0%")
    fig.update_yaxes(type="category", autorange="reversed")
    return apply_theme(fig, presenter)


def _rows(matrix: Any) -> list[list[float]]:
    return matrix.tolist() if hasattr(matrix, "tolist") else [list(row) for row in matrix]


def _flat(values: Any) -> list[float]:
    return values.tolist() if hasattr(values, "tolist") else list(values)
