"""Figures for ensembles and multi-task learning: member vs vote bars, accuracy against k, task curves.

Pure builders: plain numbers in, `go.Figure` out, themed with ui.figures.train.apply_theme.

References:
    Okabe & Ito, "Color Universal Design", https://jfly.uni-koeln.de/color/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from ui.figures.train import PALETTE, apply_theme

MEMBER, SOFT, HARD = PALETTE[6], PALETTE[0], PALETTE[1]  # gray members, blue soft vote, orange hard vote


def _accuracy_range(values: Sequence[float]) -> list[float]:
    """A y-range that shows the differences: from a little below the worst value to 100 %."""
    low = min(values) if values else 0.0
    return [max(0.0, low - max(0.02, (1 - low) * 0.5)), 1.005]


def vote_bars(member_acc: Mapping[str, float], soft: float, hard: float, *, presenter: bool = False) -> go.Figure:
    """Each member's test accuracy (gray), then the soft and the hard vote's."""
    names = [*member_acc, "soft vote", "hard vote"]
    values = [*member_acc.values(), soft, hard]
    colours = [MEMBER] * len(member_acc) + [SOFT, HARD]
    mean = sum(member_acc.values()) / max(1, len(member_acc))
    # the mean named in the legend and drawn behind the bars: a label inside the plot sat on the bars' own labels
    fig = go.Figure(go.Scatter(x=[names[0], names[-1]], y=[mean, mean], mode="lines", name=f"mean member ({mean:.1%})",
                               line=dict(color=MEMBER, dash="dot", width=2), hoverinfo="skip"))
    fig.add_trace(go.Bar(x=names, y=values, marker_color=colours, text=[f"{v:.1%}" for v in values],
                         textposition="outside", cliponaxis=False, showlegend=False,
                         hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    fig.update_layout(title="Test accuracy: members and their votes", height=440,
                      legend=dict(orientation="h", yref="container", yanchor="bottom", y=0))
    fig.update_xaxes(categoryorder="array", categoryarray=names)  # the line, drawn first, names only two of them
    fig.update_yaxes(title="test accuracy", tickformat=".0%", range=_accuracy_range(values))
    return apply_theme(fig, presenter)


def accuracy_vs_k(vs_k: Sequence[Mapping[str, float]], member_acc: Sequence[float], *,
                  presenter: bool = False) -> go.Figure:
    """Soft and hard vote of the first k members against k, with member k's own accuracy as a dot."""
    ks = [row["k"] for row in vs_k]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ks, y=list(member_acc), mode="markers", name="member k alone",
                             marker=dict(color=MEMBER, size=10), hovertemplate="member %{x}: %{y:.2%}<extra></extra>"))
    for name, colour, dash in (("soft_vote", SOFT, "solid"), ("hard_vote", HARD, "dash")):
        fig.add_trace(go.Scatter(x=ks, y=[row[name] for row in vs_k], mode="lines+markers",
                                 name=name.replace("_", " ") + " of the first k", line=dict(color=colour, dash=dash, width=3),
                                 hovertemplate="k = %{x}: %{y:.2%}<extra></extra>"))
    values = list(member_acc) + [row[n] for row in vs_k for n in ("soft_vote", "hard_vote")]
    fig.update_layout(title="Accuracy against the number of members k", height=420,
                      legend=dict(orientation="h", yanchor="top", y=-0.2))
    fig.update_xaxes(title="k (members voting)", dtick=1)
    fig.update_yaxes(title="test accuracy", tickformat=".0%", range=_accuracy_range(values))
    return apply_theme(fig, presenter)


def task_curves(curves: Mapping[str, Sequence[float]], *, task: str, metric: str = "accuracy",
                presenter: bool = False) -> go.Figure:
    """One task's validation curve per network (net name -> value per epoch): the multi-task head solid, others dashed."""
    fig = go.Figure()
    for i, (net, values) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=list(values), mode="lines+markers", name=net,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=3, dash="solid" if i == 0 else "dash"),
                                 hovertemplate=f"{net}<br>epoch %{{x}}: %{{y:{'.1%' if metric == 'accuracy' else '.3f'}}}"
                                               "<extra></extra>"))
    fig.update_layout(title=f"Task “{task}”: validation {metric}", height=380,
                      legend=dict(orientation="h", yanchor="top", y=-0.22))
    fig.update_xaxes(title="epoch", tickformat="d", dtick=1)
    if metric == "accuracy":
        fig.update_yaxes(title="validation accuracy", tickformat=".0%", range=[0, 1.02])
    else:
        fig.update_yaxes(title="validation loss", rangemode="tozero")
    return apply_theme(fig, presenter)


def loss_terms(terms: Mapping[str, Sequence[float]], *, presenter: bool = False) -> go.Figure:
    """The multi-task net's weighted training losses per epoch (term name -> values), stacked: the top is the sum."""
    fig = go.Figure()
    for i, (name, values) in enumerate(terms.items()):
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=list(values), name=name, stackgroup="loss",
                                 mode="lines", line=dict(color=PALETTE[i % len(PALETTE)], width=2),
                                 hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.3f}}<extra></extra>"))
    fig.update_layout(title="What the multi-task net minimizes (training, stacked)", height=380,
                      legend=dict(orientation="h", yanchor="top", y=-0.22))
    fig.update_xaxes(title="epoch", tickformat="d", dtick=1)
    fig.update_yaxes(title="weighted loss", rangemode="tozero")
    return apply_theme(fig, presenter)
