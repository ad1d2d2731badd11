"""Figures for the classic nets trained side by side: test accuracy against cost, one labelled point per net.

Pure builders: plain numbers in, `go.Figure` out, themed with ui.figures.train.apply_theme.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go

from ui.figures.train import PALETTE, apply_theme


def accuracy_vs_cost(points: Mapping[str, tuple[float, float]], *, cost: str, presenter: bool = False) -> go.Figure:
    """`points` maps a net's name to (cost, test accuracy); `cost` names the x axis (log scale)."""
    fig = go.Figure()
    for i, (name, (x, accuracy)) in enumerate(points.items()):
        fig.add_trace(go.Scatter(
            x=[x], y=[accuracy], mode="markers+text", text=[name], textposition="top center", name=name,
            marker=dict(size=16 if presenter else 12, color=PALETTE[i % len(PALETTE)]),
            hovertemplate=f"{name}<br>{cost}: %{{x:,.0f}}<br>test accuracy: %{{y:.1%}}<extra></extra>"))
    logs = [math.log10(max(x, 1.0)) for x, _ in points.values()] or [0.0]
    accuracies = [a for _, a in points.values()] or [0.5]
    # Room around the points for their labels: half a decade left and right, 8 points above.
    fig.update_layout(title=f"Test accuracy against {cost}", showlegend=False, height=380)
    fig.update_xaxes(type="log", title=f"{cost} (log scale)", range=[min(logs) - 0.5, max(logs) + 0.5])
    fig.update_yaxes(title="test accuracy", tickformat=".0%",
                     range=[max(0.0, min(accuracies) - 0.08), min(1.0, max(accuracies)) + 0.08])
    return apply_theme(fig, presenter)
