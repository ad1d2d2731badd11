"""Figures for activations and gradient flow: curves with derivatives, per-layer statistics, histograms, dead units.

Pure builders: plain numbers in, `go.Figure` out.

References:
    CS231n, "Neural Networks Part 2: Setting up the Data and the Loss" (per-layer activation histograms).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import PALETTE, apply_theme

MAX_HISTOGRAMS = 4  # layers shown as histograms; evenly spaced through the net


def activation_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
                      *, presenter: bool = False) -> go.Figure:
    """f(x) solid and f'(x) dotted, one colour per activation; `curves` maps title -> (x, f, f')."""
    fig = go.Figure()
    for i, (title, (x, y, dy)) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=list(x), y=list(y), name=f"{title}", legendgroup=title,
                                 line=dict(color=colour, width=3)))
        fig.add_trace(go.Scatter(x=list(x), y=list(dy), name=f"{title}′ (derivative)", legendgroup=title,
                                 line=dict(color=colour, width=2, dash="dot")))
    fig.update_layout(title="f(x) solid, f′(x) dotted", hovermode="x unified", height=560,
                      legend=dict(orientation="h", yanchor="top", y=-0.15))
    fig.update_xaxes(title="x (pre-activation)", zeroline=True)
    fig.update_yaxes(title="value", zeroline=True)
    return apply_theme(fig, presenter)


def _finite_or_none(values: Sequence[float | None], *, positive: bool = False) -> list[float | None]:
    """Values a plot can show: None (a gap) for missing, non-finite, or ≤ 0 on a log axis."""
    return [None if v is None or not math.isfinite(v) or (positive and v <= 0) else v for v in values]


def per_layer(series: Mapping[str, Sequence[float | None]], *, title: str, y_title: str, log: bool = True,
              presenter: bool = False) -> go.Figure:
    """One line per configuration over layer 1…L (x = depth from the input)."""
    fig = go.Figure()
    for i, (label, values) in enumerate(series.items()):
        shown = _finite_or_none(values, positive=log)
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=shown, name=label, mode="lines+markers",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2), connectgaps=False))
    fig.update_layout(title=title, legend=dict(orientation="h", yanchor="top", y=-0.2))
    fig.update_xaxes(title="layer (1 = next to the input)", tickformat="d")
    fig.update_yaxes(title=y_title, type="log" if log else "linear", tickformat=".0e" if log else None)
    return apply_theme(fig, presenter)


def layer_histograms(layers: Sequence, *, presenter: bool = False) -> go.Figure:
    """Histograms of activation values for up to MAX_HISTOGRAMS layers (objects with name/hist_counts/hist_edges)."""
    count = min(MAX_HISTOGRAMS, len(layers))
    picks = sorted({round(i * (len(layers) - 1) / max(1, count - 1)) for i in range(count)}) if layers else []
    fig = make_subplots(rows=1, cols=max(1, len(picks)), subplot_titles=[layers[i].name for i in picks])
    for col, i in enumerate(picks, start=1):
        edges, counts = layers[i].hist_edges, layers[i].hist_counts
        centres = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
        fig.add_trace(go.Bar(x=centres, y=counts, marker_color=PALETTE[0], showlegend=False,
                             hovertemplate="value %{x:.3g}: %{y} values<extra></extra>"), row=1, col=col)
        fig.update_xaxes(tickformat=".2g", nticks=4, row=1, col=col)
    fig.update_layout(title="Activation values per layer (each panel has its own x range)", bargap=0.05, height=300)
    fig.update_yaxes(showticklabels=False)
    return apply_theme(fig, presenter)


def dead_units(histories: Mapping[str, Sequence[float]], *, presenter: bool = False) -> go.Figure:
    """Share of dead units after each epoch (epoch 0 = the initial weights), one line per run."""
    fig = go.Figure()
    for i, (name, values) in enumerate(histories.items()):
        fig.add_trace(go.Scatter(x=list(range(len(values))), y=list(values), name=name, mode="lines+markers",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2)))
    fig.update_layout(title="Dead units (0 on every training image)", legend=dict(orientation="h", yanchor="top", y=-0.2))
    fig.update_xaxes(title="epoch (0 = initial weights)", tickformat="d")
    fig.update_yaxes(title="share of hidden units", range=[0, 1.02], tickformat=".0%")
    return apply_theme(fig, presenter)
