"""Figures for 2-D classification: decision regions with the points, loss curves, one tile per hidden unit.

Pure builders: numpy arrays and plain numbers in, `go.Figure` out.

References:
    Plotly heatmaps and contours, https://plotly.com/python/contour-plots/
    TensorFlow Playground's colours (orange/blue classes on a diverging background).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import PALETTE, apply_theme

CLASS_COLOURS = (PALETTE[1], PALETTE[0])  # class 0 orange, class 1 blue, as in the Playground
REGION_SCALE = [[0.0, "#F5C780"], [0.5, "#F7F7F7"], [1.0, "#8CC4E8"]]  # P(class 1): orange → white → blue
UNIT_SCALE = "RdBu"
TILES_PER_ROW = 8


def decision_regions(xs: np.ndarray, ys: np.ndarray, p1: np.ndarray, train: tuple[np.ndarray, np.ndarray],
                     test: tuple[np.ndarray, np.ndarray], *, presenter: bool = False) -> go.Figure:
    """P(class 1) as a filled contour with the 0.5 boundary, train points filled, test points hollow."""
    fig = go.Figure(go.Contour(x=xs, y=ys, z=p1, zmin=0, zmax=1, colorscale=REGION_SCALE, ncontours=10,
                               line=dict(width=0), colorbar=dict(title="P(class 1)"),
                               hovertemplate="x %{x:.2f}, y %{y:.2f}<br>P(class 1) %{z:.2f}<extra></extra>"))
    fig.add_trace(go.Contour(x=xs, y=ys, z=p1, contours=dict(start=0.5, end=0.5, coloring="none"),
                             line=dict(color="black", width=2), showscale=False, hoverinfo="skip",
                             name="boundary P = 0.5"))
    for part, (points, labels) in (("train", train), ("test", test)):
        for label in (0, 1):
            chosen = points[labels == label]
            if not len(chosen):
                continue
            colour = CLASS_COLOURS[label]
            marker = (dict(color=colour, size=7, line=dict(color="white", width=1)) if part == "train"
                      else dict(color="rgba(0,0,0,0)", size=8, line=dict(color=colour, width=2)))
            fig.add_trace(go.Scatter(x=chosen[:, 0], y=chosen[:, 1], mode="markers", marker=marker,
                                     name=f"class {label} ({part})",
                                     hovertemplate=f"class {label}, {part}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
    fig.update_layout(height=480, legend=dict(orientation="h", y=-0.12))
    fig.update_xaxes(title="x", range=[xs[0], xs[-1]])
    fig.update_yaxes(title="y", range=[ys[0], ys[-1]], scaleanchor="x")
    return apply_theme(fig, presenter)


def loss_curves(train: Sequence[float], test: Sequence[tuple[int, float]], *, presenter: bool = False) -> go.Figure:
    """Training loss per step, and the test loss at the steps it was measured."""
    fig = go.Figure(go.Scatter(y=list(train), mode="lines", name="train", line=dict(color=PALETTE[0])))
    if test:
        steps, values = zip(*test)
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name="test", line=dict(color=PALETTE[5])))
    fig.update_layout(height=300, title="Cross-entropy loss")
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="loss", rangemode="tozero")
    return apply_theme(fig, presenter)


def unit_tiles(xs: np.ndarray, ys: np.ndarray, units: np.ndarray, *, presenter: bool = False) -> go.Figure:
    """One small heatmap per first-layer unit (values (U, R, R)), each centred on 0 so its cut line shows."""
    count = len(units)
    cols = min(count, TILES_PER_ROW)
    rows = -(-count // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"unit {i + 1}" for i in range(count)],
                        horizontal_spacing=0.02, vertical_spacing=0.08)
    for i, values in enumerate(units):
        scale = float(np.abs(values).max()) or 1.0
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=values, zmin=-scale, zmax=scale, colorscale=UNIT_SCALE,
                                 showscale=False, hovertemplate=f"unit {i + 1}: %{{z:.2f}}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=130 * rows + 40)
    return apply_theme(fig, presenter)
