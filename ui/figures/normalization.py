"""Figures for normalization and preprocessing: train vs eval histograms, running statistics, norm groups, pixel histograms.

Pure builders: plain numbers in, `go.Figure` out.

References:
    Wu & He 2018, "Group Normalization", arXiv 1803.08494, Fig. 2 (the N × C × H·W cubes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import PALETTE, apply_theme

FAINT = "rgba(140, 140, 140, 0.45)"


def overlaid_histograms(samples: Mapping[str, Sequence[float]], *, title: str, x_title: str = "value",
                        presenter: bool = False) -> go.Figure:
    """Semi-transparent histograms of several samples on one axis."""
    fig = go.Figure()
    for i, (name, values) in enumerate(samples.items()):
        fig.add_trace(go.Histogram(x=list(values), name=name, opacity=0.6, nbinsx=60,
                                   marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(title=title, barmode="overlay", legend=dict(orientation="h", yanchor="top", y=-0.2))
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title="count")
    return apply_theme(fig, presenter)


def running_stats(trace, *, presenter: bool = False) -> go.Figure:
    """Batch mean/var (markers) and BatchNorm's running estimates (lines) step by step, with the data's values."""
    steps = list(range(1, len(trace.batch_mean) + 1))
    fig = make_subplots(rows=1, cols=2, subplot_titles=["mean of channel 0", "variance of channel 0"])
    for col, (batch, running, truth) in enumerate(((trace.batch_mean, trace.running_mean, trace.data_mean),
                                                   (trace.batch_var, trace.running_var, trace.data_var)), start=1):
        fig.add_trace(go.Scatter(x=steps, y=batch, mode="markers", name="this batch", legendgroup="b",
                                 showlegend=col == 1, marker=dict(color=PALETTE[1], size=5)), row=1, col=col)
        fig.add_trace(go.Scatter(x=steps, y=running, mode="lines", name="running estimate", legendgroup="r",
                                 showlegend=col == 1, line=dict(color=PALETTE[0], width=3)), row=1, col=col)
        fig.add_hline(y=truth, line=dict(color=PALETTE[2], dash="dash"), row=1, col=col,
                      annotation_text="all images", annotation_position="bottom right")
    fig.update_layout(title="Running statistics during training", legend=dict(orientation="h", yanchor="top", y=-0.2))
    fig.update_xaxes(title="training step")
    return apply_theme(fig, presenter)


def batch_dependence(sizes: Sequence[int], spread: Sequence[float], *, presenter: bool = False) -> go.Figure:
    """How much one image's BatchNorm output changes with its batch companions, per batch size."""
    fig = go.Figure(go.Scatter(x=list(sizes), y=list(spread), mode="lines+markers",
                               line=dict(color=PALETTE[0], width=3)))
    fig.update_layout(title="One image's BN output, std over random batch companions")
    fig.update_xaxes(title="batch size", type="log", tickvals=list(sizes), ticktext=[str(s) for s in sizes])
    fig.update_yaxes(title="std of its normalized values", rangemode="tozero")
    return apply_theme(fig, presenter)


def norm_groups(masks: Mapping[str, Sequence], *, presenter: bool = False) -> go.Figure:
    """Wu & He's N × C × H·W cube, unfolded: one panel per norm, channels down, each image's H·W positions across.

    `masks` maps a title to a nested (N, C, H·W) list of booleans: the cells normalized together with
    the first one are coloured.
    """
    titles = list(masks)
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.03)
    for col, title in enumerate(titles, start=1):
        mask = masks[title]
        n, c, p = len(mask), len(mask[0]), len(mask[0][0])
        # Columns: image 0's positions, a gap, image 1's positions, … (None draws the gap).
        z = [[None if j % (p + 1) == p else float(mask[j // (p + 1)][ch][j % (p + 1)])
              for j in range(n * (p + 1) - 1)] for ch in range(c)]
        fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=1, showscale=False, xgap=1, ygap=1,
                                 colorscale=[[0, FAINT], [1, PALETTE[5]]],
                                 hovertemplate="C=%{y}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(tickvals=[i * (p + 1) + (p - 1) / 2 for i in range(n)], ticktext=[f"N={i}" for i in range(n)],
                         showgrid=False, row=1, col=col)
        fig.update_yaxes(autorange="reversed", showgrid=False, dtick=1, title="C" if col == 1 else None,
                         row=1, col=col)
    fig.update_layout(height=290)
    return apply_theme(fig, presenter)


def channel_histograms(edges: Sequence[float], before: Sequence[Sequence[int]], after_edges: Sequence[float],
                       after: Sequence[Sequence[int]], *, channel_names: Sequence[str],
                       presenter: bool = False) -> go.Figure:
    """Pixel-value histograms per channel, before (left) and after (right) preprocessing."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["before", "after"])
    colours = ("#D55E00", "#009E73", "#0072B2") if len(channel_names) == 3 else PALETTE
    for col, (e, counts) in enumerate(((edges, before), (after_edges, after)), start=1):
        centres = [(a + b) / 2 for a, b in zip(e, e[1:])]
        for i, (name, values) in enumerate(zip(channel_names, counts)):
            fig.add_trace(go.Scatter(x=centres, y=list(values), mode="lines", name=name, legendgroup=name,
                                     showlegend=col == 1, line=dict(color=colours[i % len(colours)], width=2,
                                                                     shape="hvh")), row=1, col=col)
        fig.add_vline(x=0, line=dict(color="gray", dash="dot"), row=1, col=col)
    fig.update_layout(title="Pixel values per channel", legend=dict(orientation="h", yanchor="top", y=-0.2))
    fig.update_xaxes(title="value")
    fig.update_yaxes(title="pixels", row=1, col=1)
    return apply_theme(fig, presenter)
