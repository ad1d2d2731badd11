"""Figures for loss landscapes: interpolation lines, contour maps with optimizer paths, 3-D surfaces.

Pure builders: numpy arrays in, `go.Figure` out. Unevaluated grid points (NaN) are left blank.

References:
    Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets", arXiv 1712.09913 (figures 1, 5, 9).
    Goodfellow et al. 2015, arXiv 1412.6544 (figure 1: loss along the line from init to solution).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import PALETTE, SEQUENTIAL, apply_theme


def clipped(loss: np.ndarray) -> np.ndarray:
    """Loss with the far walls cut off (as Li et al. do), so the valley keeps the colour range."""
    loss = np.asarray(loss, dtype=float)
    if not np.isfinite(loss).any():
        return loss
    low = np.nanmin(loss)
    cap = min(np.nanmax(loss), max(4 * low, low + 5.0))
    return np.minimum(loss, cap)


def interpolation(alphas: np.ndarray, loss: np.ndarray, acc: np.ndarray, *, x_title: str,
                  marks: Mapping[float, str] | None = None, presenter: bool = False) -> go.Figure:
    """Loss (left axis) and accuracy (right axis) along a line through weight space."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=alphas, y=loss, name="loss", mode="lines+markers", marker=dict(size=4),
                             line=dict(color=PALETTE[0], width=2.5)), secondary_y=False)
    fig.add_trace(go.Scatter(x=alphas, y=acc, name="accuracy", mode="lines", line=dict(color=PALETTE[1], dash="dash")),
                  secondary_y=True)
    for x, label in (marks or {}).items():
        fig.add_vline(x=x, line=dict(color="gray", dash="dot"), annotation_text=label, annotation_position="top")
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.25), hovermode="x unified")
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="loss", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title="accuracy", secondary_y=True, range=[0, 1.02], tickformat=".0%", showgrid=False)
    return apply_theme(fig, presenter)


def contour(xs: np.ndarray, ys: np.ndarray, loss: np.ndarray, *, paths: Mapping[str, np.ndarray] | None = None,
            title: str = "", axis_titles: tuple[str, str] = ("α", "β"), presenter: bool = False) -> go.Figure:
    """Contour map of the loss; optional (T, 2) paths drawn with a marker per snapshot and a star at the end."""
    fig = go.Figure(go.Contour(x=xs, y=ys, z=clipped(loss), colorscale=SEQUENTIAL, ncontours=25,
                               line=dict(width=0.5), colorbar=dict(title="loss"), connectgaps=False,
                               hovertemplate="(%{x:.2f}, %{y:.2f}): loss %{z:.3f}<extra></extra>"))
    for i, (name, path) in enumerate((paths or {}).items()):
        colour = PALETTE[(i + 1) % len(PALETTE)]
        fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines+markers", name=name,
                                 line=dict(color=colour, width=3), marker=dict(size=7),
                                 hovertemplate=f"{name}<br>snapshot %{{pointNumber}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=path[-1:, 0], y=path[-1:, 1], mode="markers", showlegend=False,
                                 marker=dict(symbol="star", size=16, color=colour, line=dict(color="white", width=1)),
                                 hoverinfo="skip"))
    fig.update_layout(title=title, height=480, legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title=axis_titles[0], range=[float(xs[0]), float(xs[-1])])
    fig.update_yaxes(title=axis_titles[1], range=[float(ys[0]), float(ys[-1])])
    return apply_theme(fig, presenter)


def surface(xs: np.ndarray, ys: np.ndarray, loss: np.ndarray, *, title: str = "",
            axis_titles: tuple[str, str] = ("α", "β"), presenter: bool = False) -> go.Figure:
    """The loss as a 3-D surface, clipped like the contour map."""
    fig = go.Figure(go.Surface(x=xs, y=ys, z=clipped(loss), colorscale=SEQUENTIAL, showscale=False,
                               hovertemplate="(%{x:.2f}, %{y:.2f}): loss %{z:.3f}<extra></extra>"))
    scene = dict(xaxis_title=axis_titles[0], yaxis_title=axis_titles[1], zaxis_title="loss",
                 camera=dict(eye=dict(x=1.5, y=-1.5, z=1.1)))
    fig.update_layout(title=title, height=480, scene=scene)
    return apply_theme(fig, presenter)
