"""Figures for transfer learning: probe accuracy per layer, the few-shot curve, feature-space scatters and
the strategy table.

Pure builders: plain numbers and numpy arrays in, `go.Figure` out, themed with ui.figures.train.apply_theme.

References:
    Plotly subplots, https://plotly.com/python/subplots/
    CS231n notes, "Transfer Learning" (the four cases of the strategy table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import PALETTE, apply_theme

METHOD_TITLES = {"pixels_linear": "pixels + linear", "features_linear": "features + linear",
                 "head_only": "new head, source frozen", "fine_tuned": "fine-tuned", "scratch": "from scratch"}
CHOSEN, OTHER, BASELINE = PALETTE[0], "#9ab8d3", PALETTE[5]
MARKER_MAX = 400  # scatters with more points use smaller, fainter markers


def probe_bars(rows: Sequence[tuple[str, int, float, float]], pixels: tuple[float, float], *, chosen: str,
               presenter: bool = False) -> go.Figure:
    """Test accuracy per (layer / pooling) as horizontal bars, the validation choice dark, pixels as a line.

    `rows`: (label, width, val accuracy, test accuracy); `pixels`: (val, test) of the baseline.
    """
    labels = [f"{label} ({width:,})" for label, width, _, _ in rows]
    fig = go.Figure(go.Bar(
        y=labels, x=[r[3] for r in rows], orientation="h",
        marker_color=[CHOSEN if r[0] == chosen else OTHER for r in rows],
        text=[f"{r[3]:.0%}" for r in rows], textposition="inside", insidetextanchor="end",
        customdata=[r[2] for r in rows],
        hovertemplate="%{y}<br>test %{x:.1%}, validation %{customdata:.1%}<extra></extra>"))
    fig.add_vline(x=pixels[1], line=dict(color=BASELINE, width=3, dash="dash"),
                  annotation_text=f"pixels {pixels[1]:.0%}", annotation_position="top")
    fig.update_layout(title="Linear probe: test accuracy per layer (numbers per image)", showlegend=False,
                      height=max(260, 36 * len(rows) + 120))
    fig.update_xaxes(title="test accuracy", range=[0, 1.02], tickformat=".0%")
    fig.update_yaxes(autorange="reversed")
    return apply_theme(fig, presenter)


def few_shot_curve(points: Mapping[str, Mapping[int, float]], *, presenter: bool = False) -> go.Figure:
    """Test accuracy against training images per class, one line per method (log x)."""
    fig = go.Figure()
    ticks = sorted({k for accs in points.values() for k in accs})
    for i, (method, accs) in enumerate(points.items()):
        sizes = sorted(accs)
        dash = "dash" if method == "pixels_linear" else "solid"
        title = METHOD_TITLES.get(method, method)
        fig.add_trace(go.Scatter(x=sizes, y=[accs[k] for k in sizes], mode="lines+markers", name=title,
                                 marker=dict(size=10), line=dict(color=PALETTE[i % len(PALETTE)], width=3, dash=dash),
                                 hovertemplate=f"{title}<br>%{{x}} per class: %{{y:.1%}}<extra></extra>"))
    fig.update_layout(title="The few-shot curve: when does transfer pay?", height=420,
                      legend=dict(orientation="h", yanchor="top", y=-0.22))
    fig.update_xaxes(title="training images per class", type="log", tickvals=ticks,
                     ticktext=[str(k) for k in ticks])
    fig.update_yaxes(title="test accuracy", range=[0, 1.02], tickformat=".0%")
    return apply_theme(fig, presenter)


def feature_space(panels: Sequence[tuple[str, np.ndarray, np.ndarray]], class_names: Sequence[str], *,
                  presenter: bool = False) -> go.Figure:
    """Side-by-side 2-D scatters, one per (title, points (n, 2), labels (n,)), coloured by class."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.06)
    for col, (_, points, labels) in enumerate(panels, start=1):
        small = len(points) > MARKER_MAX
        for c, name in enumerate(class_names):
            mine = labels == c
            fig.add_trace(go.Scatter(
                x=points[mine, 0], y=points[mine, 1], mode="markers", name=str(name), legendgroup=str(name),
                showlegend=col == 1, marker=dict(size=5 if small else 8, opacity=0.6 if small else 0.85,
                                                 color=PALETTE[c % len(PALETTE)]),
                hovertemplate=f"{name}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=440, legend=dict(orientation="h", yanchor="top", y=-0.05, title="class"))
    return apply_theme(fig, presenter)


def strategy_table(cells: Mapping[tuple[bool, bool], str], *, selected: tuple[bool, bool],
                   presenter: bool = False) -> go.Figure:
    """The 2×2 table: rows similar / different data, columns little / a lot of it; `selected` highlighted.

    `cells` maps (similar, much) to the advice shown in the cell.
    """
    rows, cols = [True, False], [False, True]
    z = [[1.0 if (s, m) == selected else 0.0 for m in cols] for s in rows]
    text = [[cells[(s, m)] for m in cols] for s in rows]
    fig = go.Figure(go.Heatmap(z=z, x=["little target data", "a lot of target data"],
                               y=["similar to the source", "different from the source"], text=text,
                               texttemplate="<b>%{text}</b>", colorscale=[[0, "#e8eef5"], [1, PALETTE[2]]],
                               showscale=False, xgap=6, ygap=6, hoverinfo="skip", zmin=0, zmax=1))
    fig.update_layout(title="What to do with a source network", height=300)
    fig.update_yaxes(autorange="reversed")
    return apply_theme(fig, presenter)
