"""Figures for attention and ViTs: matrices with their numbers, grids of small maps, overlays, curves.

Pure builders: numpy arrays in, `go.Figure` out (colour-blind-safe Viridis for weights, a diverging
map for signed values), themed with ui.figures.train.apply_theme.

References:
    Plotly heatmaps with text, https://plotly.com/python/heatmaps/
    Dosovitskiy et al. 2021, arXiv 2010.11929, fig. 7 (position similarity, attention distance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import PALETTE, SEQUENTIAL, apply_theme

DIVERGING = "RdBu_r"  # blue negative, white 0, red positive (ColorBrewer, colour-blind safe)
MAX_TEXT_CELLS = 400  # above this many cells a matrix drops its printed numbers
CELL_PX = 34  # pixels per matrix row, so small matrices stay small


def matrix(values: np.ndarray, *, title: str, rows: Sequence[str] | None = None,
           cols: Sequence[str] | None = None, signed: bool = False, presenter: bool = False) -> go.Figure:
    """A matrix as a heatmap with its numbers printed (rows top to bottom, as written on paper)."""
    values = np.asarray(values, dtype=float)
    rows = list(rows) if rows is not None else [str(i) for i in range(values.shape[0])]
    cols = list(cols) if cols is not None else [str(j) for j in range(values.shape[1])]
    limit = float(np.abs(values).max()) or 1.0
    text = values.size <= MAX_TEXT_CELLS
    # Positions on the axes, labels as tick text: repeated words ("the" twice) stay separate rows.
    fig = go.Figure(go.Heatmap(
        z=values, colorscale=DIVERGING if signed else SEQUENTIAL, customdata=np.array(
            [[f"{r} → {c}" for c in cols] for r in rows], dtype=object),
        zmin=-limit if signed else None, zmax=limit if signed else None, showscale=False,
        text=np.round(values, 2) if text else None, texttemplate="%{text}" if text else None,
        hovertemplate="%{customdata}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=dict(text=title, font_size=13 if not presenter else 18),
                      height=max(160, 80 + CELL_PX * len(rows)))
    fig.update_yaxes(autorange="reversed", tickvals=list(range(len(rows))), ticktext=rows, showgrid=False)
    fig.update_xaxes(side="bottom", tickvals=list(range(len(cols))), ticktext=cols, showgrid=False)
    return apply_theme(fig, presenter)


def map_grid(maps: np.ndarray, *, title: str, row_titles: Sequence[str], col_titles: Sequence[str],
             shared_scale: bool = False, presenter: bool = False, cell: int = 90) -> go.Figure:
    """A grid of small heatmaps, maps (R, C, g, g): e.g. layers × heads, or one map per patch."""
    maps = np.asarray(maps, dtype=float)
    r, c = maps.shape[:2]
    fig = make_subplots(rows=r, cols=c, horizontal_spacing=0.01, vertical_spacing=0.02,
                        row_titles=list(row_titles) or None, column_titles=list(col_titles) or None)
    lo, hi = (float(maps.min()), float(maps.max())) if shared_scale else (None, None)
    for i in range(r):
        for j in range(c):
            fig.add_trace(go.Heatmap(z=maps[i, j], colorscale=SEQUENTIAL, showscale=False, zmin=lo, zmax=hi,
                                     hovertemplate=f"{row_titles[i] if row_titles else ''} "
                                                   f"{col_titles[j] if col_titles else ''}<br>"
                                                   "row %{y}, col %{x}: %{z:.3f}<extra></extra>"),
                          row=i + 1, col=j + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed", constrain="domain")
    for k in range(1, r * c + 1):  # square cells: a patch is a square, whatever width the page gives the chart
        suffix = "" if k == 1 else str(k)
        fig.layout[f"yaxis{suffix}"].update(scaleanchor=f"x{suffix}", scaleratio=1)
    fig.update_layout(title=title, height=80 + cell * r, width=None)
    apply_theme(fig, presenter)
    fig.update_annotations(font_size=11 if not presenter else 16)
    return fig


def position_similarity(similarity: np.ndarray, *, presenter: bool = False) -> go.Figure:
    """Position-embedding similarity (P, g, g) as a g × g grid of maps, tile (r, c) for patch (r, c)."""
    g = similarity.shape[-1]
    return map_grid(np.asarray(similarity).reshape(g, g, g, g),  # (P, g, g) -> (g, g, g, g)
                    title="Cosine similarity of each patch's position embedding with all others",
                    row_titles=[], col_titles=[], shared_scale=True, presenter=presenter, cell=max(40, 360 // g))


def head_maps(maps: np.ndarray, *, title: str, presenter: bool = False) -> go.Figure:
    """Per-layer, per-head maps (L, h, g, g), one row per layer."""
    layers, heads = maps.shape[:2]
    return map_grid(maps, title=title, row_titles=[f"layer {i + 1}" for i in range(layers)],
                    col_titles=[f"head {j + 1}" for j in range(heads)], presenter=presenter)


def overlay(image: np.ndarray, heat: np.ndarray, *, patch_size: int, title: str, opacity: float = 0.55,
            presenter: bool = False) -> go.Figure:
    """The image (H, W) or (H, W, 3) uint8 with a per-patch map (g, g) laid over it, one cell per patch."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)  # gray -> RGB for go.Image
    fig = go.Figure(go.Image(z=image, hoverinfo="skip"))
    centre = (patch_size - 1) / 2
    fig.add_trace(go.Heatmap(z=heat, x0=centre, dx=patch_size, y0=centre, dy=patch_size, opacity=opacity,
                             colorscale=SEQUENTIAL, showscale=False,
                             hovertemplate="patch row %{y}, col %{x}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(title=title, height=320)
    return apply_theme(fig, presenter)


def distance_by_layer(distance: np.ndarray, *, image_size: int, presenter: bool = False) -> go.Figure:
    """Mean attention distance (L, h) in pixels: one dot per head, x = layer (Dosovitskiy fig. 7)."""
    distance = np.asarray(distance, dtype=float)
    fig = go.Figure()
    for head in range(distance.shape[1]):
        fig.add_trace(go.Scatter(
            x=np.arange(1, distance.shape[0] + 1), y=distance[:, head], mode="markers+lines",
            name=f"head {head + 1}", marker=dict(size=10, color=PALETTE[head % len(PALETTE)]),
            line=dict(width=1, dash="dot"),
            hovertemplate=f"head {head + 1}, layer %{{x}}: %{{y:.1f}} px<extra></extra>"))
    fig.update_layout(title="Mean attention distance (pixels) by layer", height=340,
                      legend=dict(orientation="h", yanchor="top", y=-0.25))
    fig.update_xaxes(title="layer (block)", tickformat="d", dtick=1)
    fig.update_yaxes(title="distance (pixels)", range=[0, image_size])
    return apply_theme(fig, presenter)


def positional_encoding(pe: np.ndarray, *, presenter: bool = False) -> go.Figure:
    """Sinusoidal encoding (N, D) as a heatmap: each row a position, each column a frequency."""
    fig = go.Figure(go.Heatmap(z=pe, colorscale=DIVERGING, zmin=-1, zmax=1,
                               hovertemplate="position %{y}, dimension %{x}: %{z:.3f}<extra></extra>",
                               colorbar=dict(thickness=12)))
    fig.update_layout(title="Sinusoidal position encoding", height=360)
    fig.update_xaxes(title="dimension i (low i = fast wave)")
    fig.update_yaxes(title="position", autorange="reversed")
    return apply_theme(fig, presenter)


def accuracy_vs_data(results: Mapping[str, Mapping[int, float]], *, presenter: bool = False) -> go.Figure:
    """Test accuracy against the number of training images, one line per model (log x)."""
    fig = go.Figure()
    for i, (name, points) in enumerate(results.items()):
        sizes = sorted(points)
        fig.add_trace(go.Scatter(x=sizes, y=[points[n] for n in sizes], mode="lines+markers", name=name,
                                 marker=dict(size=10), line=dict(color=PALETTE[i % len(PALETTE)], width=3),
                                 hovertemplate=f"{name}<br>%{{x}} images: %{{y:.1%}}<extra></extra>"))
    fig.update_layout(title="Test accuracy vs training-set size", height=380,
                      legend=dict(orientation="h", yanchor="top", y=-0.25))
    fig.update_xaxes(title="training images", type="log")
    fig.update_yaxes(title="test accuracy", range=[0, 1.02], tickformat=".0%")
    return apply_theme(fig, presenter)


def cost_bars(rows: Mapping[str, Mapping[str, float]], *, presenter: bool = False) -> go.Figure:
    """Parameters and MACs per model, side by side (log y: they differ by orders of magnitude)."""
    fig = go.Figure()
    for i, metric in enumerate(("parameters", "MACs per image")):
        fig.add_trace(go.Bar(x=list(rows), y=[r[metric] for r in rows.values()], name=metric,
                             marker_color=PALETTE[i], texttemplate="%{y:.3s}", textposition="outside"))
    fig.update_layout(title="Size and compute", barmode="group", height=340)
    fig.update_yaxes(type="log", dtick=1, title="count (log scale)")
    return apply_theme(fig, presenter)
