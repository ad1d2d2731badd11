"""Figures for optimizers, losses and learning rates: surfaces with animated paths, per-step curves.

Pure builders: numpy arrays and plain numbers in, `go.Figure` out.

References:
    Plotly animations, https://plotly.com/python/animations/
    Plotly 3-D surfaces, https://plotly.com/python/3d-surface-plots/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ui.figures.train import PALETTE, SEQUENTIAL, apply_theme

MAX_FRAMES = 60  # animation frames: enough to follow a path, few enough to stay light in the browser


def display_values(z: np.ndarray, log_scale: bool) -> np.ndarray:
    """What the colours show: f itself, or log10(f − min f + 1) when f spans many decades."""
    z = np.asarray(z, dtype=float)
    if not log_scale:
        return z
    return np.log10(z - np.nanmin(z) + 1.0)


def _path_values(losses: np.ndarray, z: np.ndarray, log_scale: bool) -> np.ndarray:
    return np.log10(np.asarray(losses) - np.nanmin(z) + 1.0) if log_scale else np.asarray(losses)


def _frame_ends(lengths: Sequence[int]) -> list[int]:
    longest = max(lengths, default=1)
    return sorted({int(k) for k in np.linspace(1, longest, min(MAX_FRAMES, longest))})


def surface_contour(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, paths: Mapping[str, np.ndarray], *,
                    log_scale: bool = False, minima: Sequence[tuple[float, float]] = (), animate: bool = True,
                    presenter: bool = False) -> go.Figure:
    """Filled contour of f with each path (K, 2) drawn on top; with `animate`, a Play button grows them."""
    shown = display_values(z, log_scale)
    fig = go.Figure(go.Contour(
        x=xs, y=ys, z=shown, colorscale=SEQUENTIAL, ncontours=30, line=dict(width=0.5),
        colorbar=dict(title="log₁₀(f−min+1)" if log_scale else "f"),
        hovertemplate="x %{x:.2f}, y %{y:.2f}<extra></extra>"))
    if minima:
        fig.add_trace(go.Scatter(x=[m[0] for m in minima], y=[m[1] for m in minima], mode="markers",
                                 marker=dict(symbol="star", size=16, color="white", line=dict(color="black", width=1)),
                                 name="minimum", hovertemplate="minimum (%{x:.2f}, %{y:.2f})<extra></extra>"))
    first = len(fig.data)
    for i, (name, pos) in enumerate(paths.items()):
        fig.add_trace(go.Scatter(x=pos[:, 0], y=pos[:, 1], mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2.5), marker=dict(size=4),
                                 hovertemplate=f"{name}<br>(%{{x:.3f}}, %{{y:.3f}})<extra></extra>"))
    if animate and paths:
        ends = _frame_ends([len(p) for p in paths.values()])
        fig.frames = [go.Frame(name=str(k), traces=list(range(first, first + len(paths))),
                               data=[go.Scatter(x=p[:k, 0], y=p[:k, 1]) for p in paths.values()]) for k in ends]
        fig.update_layout(
            updatemenus=[dict(type="buttons", x=0, y=-0.12, xanchor="left", showactive=False, buttons=[
                dict(label="▶ Play", method="animate",
                     args=[None, dict(frame=dict(duration=80, redraw=False), fromcurrent=True,
                                     transition=dict(duration=0))]),
                dict(label="❚❚", method="animate", args=[[None], dict(mode="immediate", frame=dict(duration=0))])])],
            sliders=[dict(x=0.15, len=0.85, y=-0.08, currentvalue=dict(prefix="step "), steps=[
                dict(label=str(k - 1), method="animate",
                     args=[[str(k)], dict(mode="immediate", frame=dict(duration=0, redraw=False))]) for k in ends])])
    x0, x1 = float(xs[0]), float(xs[-1])
    y0, y1 = float(ys[0]), float(ys[-1])
    fig.update_xaxes(title="x", range=[x0, x1])
    fig.update_yaxes(title="y", range=[y0, y1])
    fig.update_layout(height=620, legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    apply_theme(fig, presenter)
    fig.update_layout(margin=dict(b=110))
    return fig


def surface_3d(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, paths: Mapping[str, np.ndarray],
               path_losses: Mapping[str, np.ndarray], *, log_scale: bool = False, title: str = "Surface",
               z_title: str = "f", presenter: bool = False) -> go.Figure:
    """3-D surface of f with each path lifted onto it."""
    shown = display_values(z, log_scale)
    fig = go.Figure(go.Surface(x=xs, y=ys, z=shown, colorscale=SEQUENTIAL, opacity=0.9, showscale=False,
                               hovertemplate="(%{x:.2f}, %{y:.2f}): %{z:.3g}<extra></extra>"))
    for i, (name, pos) in enumerate(paths.items()):
        fig.add_trace(go.Scatter3d(x=pos[:, 0], y=pos[:, 1], z=_path_values(path_losses[name], z, log_scale),
                                   mode="lines", name=name, line=dict(color=PALETTE[i % len(PALETTE)], width=6)))
    fig.update_layout(title=title, height=620, showlegend=bool(paths), legend=dict(orientation="h", y=-0.05),
                      scene=dict(xaxis_title="x", yaxis_title="y",
                                 zaxis_title=f"log₁₀({z_title}−min+1)" if log_scale else z_title,
                                 camera=dict(eye=dict(x=1.4, y=-1.4, z=1.0))))
    return apply_theme(fig, presenter)


def per_step(series: Mapping[str, np.ndarray], *, title: str, y_title: str, log_y: bool = True,
             x_title: str = "step", presenter: bool = False) -> go.Figure:
    """One line per optimizer against the step number; non-positive values are dropped on a log axis."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        values = np.asarray(values, dtype=float)
        steps = np.arange(len(values))
        keep = values > 0 if log_y else np.isfinite(values)
        fig.add_trace(go.Scatter(x=steps[keep], y=values[keep], mode="lines", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2)))
    fig.update_layout(title=title, height=400, legend=dict(orientation="h", y=-0.3, yanchor="top"))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title, type="log" if log_y else "linear")
    return apply_theme(fig, presenter)


def lines(x: np.ndarray, series: Mapping[str, np.ndarray], *, title: str, x_title: str, y_title: str,
          log_x: bool = False, log_y: bool = False, y_range: Sequence[float] | None = None,
          marker_x: float | None = None, presenter: bool = False) -> go.Figure:
    """Several curves over one x axis (losses vs margin, schedules vs step, loss vs learning rate)."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=x, y=np.asarray(values, dtype=float), mode="lines", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2.5)))
    if marker_x is not None:
        fig.add_vline(x=marker_x, line=dict(color=PALETTE[5], dash="dash"))
    fig.update_layout(title=title, height=420, legend=dict(orientation="h", y=-0.3, yanchor="top"))
    fig.update_xaxes(title=x_title, type="log" if log_x else "linear")
    fig.update_yaxes(title=y_title, type="log" if log_y else "linear", range=list(y_range) if y_range else None)
    return apply_theme(fig, presenter)


def spread(groups: Mapping[str, np.ndarray], *, title: str, y_title: str, presenter: bool = False) -> go.Figure:
    """Box plots, one per group (e.g. the spread of gradient estimates per batch size)."""
    fig = go.Figure()
    for i, (name, values) in enumerate(groups.items()):
        fig.add_trace(go.Box(y=np.asarray(values, dtype=float), name=name, boxpoints="all", jitter=0.4,
                             marker=dict(color=PALETTE[i % len(PALETTE)], size=4)))
    fig.update_layout(title=title, height=380, showlegend=False)
    fig.update_xaxes(title="batch size", type="category")
    fig.update_yaxes(title=y_title)
    return apply_theme(fig, presenter)
