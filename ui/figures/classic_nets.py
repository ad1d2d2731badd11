"""Figures for the classic nets trained side by side: test accuracy against cost, one labelled point per net.

Pure builders: plain numbers in, `go.Figure` out, themed with ui.figures.train.apply_theme.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go

from ui.figures.train import PALETTE, apply_theme


def _label_positions(points: Mapping[str, tuple[float, float]], x_room: float, y_room: float) -> dict[str, str]:
    """Above each point, but below one with a higher point nearby: there a label above would run into
    the higher point and its label.

    `points` are (log10 cost, accuracy); two labels collide when their points are closer than
    `x_room` and `y_room` (about a label's width and height in axis units).
    """
    positions: dict[str, str] = {}
    for name in sorted(points, key=lambda n: -points[n][1]):  # highest first
        x, y = points[name]
        crowded = any(abs(points[o][0] - x) < x_room and abs(points[o][1] - y) < y_room for o in positions)
        positions[name] = "bottom center" if crowded else "top center"
    return positions


def accuracy_vs_cost(points: Mapping[str, tuple[float, float]], *, cost: str, presenter: bool = False) -> go.Figure:
    """`points` maps a net's name to (cost, test accuracy); `cost` names the x axis (log scale)."""
    fig = go.Figure()
    logs = {name: math.log10(max(x, 1.0)) for name, (x, _) in points.items()}
    accuracies = [a for _, a in points.values()] or [0.5]
    # Room around the points for their labels: half a decade left and right, 8 points above and below.
    x_range = [min(logs.values(), default=0.0) - 0.5, max(logs.values(), default=0.0) + 0.5]
    y_range = [max(0.0, min(accuracies) - 0.08), min(1.0, max(accuracies)) + 0.08]
    # a label is about half the plot wide and a tenth of it high
    positions = _label_positions({n: (logs[n], a) for n, (_, a) in points.items()},
                                 0.5 * (x_range[1] - x_range[0]), 0.1 * (y_range[1] - y_range[0]))
    for i, (name, (x, accuracy)) in enumerate(points.items()):
        fig.add_trace(go.Scatter(
            x=[x], y=[accuracy], mode="markers+text", text=[name], textposition=positions[name], name=name,
            marker=dict(size=16 if presenter else 12, color=PALETTE[i % len(PALETTE)]),
            hovertemplate=f"{name}<br>{cost}: %{{x:,.0f}}<br>test accuracy: %{{y:.1%}}<extra></extra>"))
    fig.update_layout(title=f"Test accuracy against {cost}", showlegend=False, height=380)
    fig.update_xaxes(type="log", title=f"{cost} (log scale)", range=x_range)
    fig.update_yaxes(title="test accuracy", tickformat=".0%", range=y_range)
    return apply_theme(fig, presenter)
