"""Figures for residual learning: training curves of plain vs residual nets, the lesion study, path lengths.

Pure builders: plain numbers (and engine.training.residual's dataclasses) in, `go.Figure` out.
Plain nets are dashed, residual nets solid; one colour per depth.

References:
    He et al. 2016, arXiv 1512.03385, fig. 1 and 6; Veit et al. 2016, arXiv 1605.06431, fig. 2, 3 and 5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ui.figures.train import PALETTE, apply_theme

KIND_COLOUR = {"residual": PALETTE[0], "plain": PALETTE[5]}
KIND_DASH = {"residual": "solid", "plain": "dash"}


def _legend_below(fig: go.Figure) -> None:
    fig.update_layout(legend=dict(orientation="h", yref="container", yanchor="bottom", y=0), hovermode="closest")


def _chance_line(fig: go.Figure, lesions: Mapping[str, Any], x: Sequence) -> None:
    """Chance accuracy as a gray dashed line named in the legend (a label inside the plot sits on the data)."""
    chance = next(iter(lesions.values())).chance if lesions else 0.0
    fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[chance, chance], mode="lines", name=f"chance ({chance:.0%})",
                             line=dict(color=PALETTE[6], dash="dash", width=1.5), hoverinfo="skip"))


def training_curves(curves: Mapping[tuple[str, int], Sequence[float]], *, presenter: bool = False) -> go.Figure:
    """Training loss per epoch of each (kind, depth) net: plain dashed, residual solid, one colour per depth."""
    fig = go.Figure()
    depths = sorted({depth for _, depth in curves})
    for (kind, depth), losses in sorted(curves.items(), key=lambda item: (item[0][1], item[0][0])):
        colour = PALETTE[depths.index(depth) % len(PALETTE)]
        fig.add_trace(go.Scatter(
            x=list(range(1, len(losses) + 1)), y=list(losses), mode="lines+markers", name=f"{kind}-{depth}",
            line=dict(color=colour, dash=KIND_DASH[kind], width=3 if kind == "residual" else 2),
            hovertemplate=f"{kind}, {depth} layers<br>epoch %{{x}}: training loss %{{y:.4f}}<extra></extra>"))
    fig.update_layout(title="Training loss (dashed = plain, solid = residual)")
    _legend_below(fig)
    fig.update_xaxes(title="epoch", tickformat="d", dtick=1)
    fig.update_yaxes(title="training loss (log)", type="log", dtick=1, tickformat=".2~g")
    return apply_theme(fig, presenter)


def final_loss_by_depth(plain: Mapping[int, float], residual: Mapping[int, float], *,
                        presenter: bool = False) -> go.Figure:
    """Final training loss against depth, one line for plain and one for residual nets (He et al. fig. 1)."""
    fig = go.Figure()
    for kind, losses in (("plain", plain), ("residual", residual)):
        fig.add_trace(go.Scatter(
            x=list(losses), y=list(losses.values()), mode="lines+markers", name=kind, marker=dict(size=10),
            line=dict(color=KIND_COLOUR[kind], dash=KIND_DASH[kind], width=3),
            hovertemplate=f"{kind}, %{{x}} layers: final training loss %{{y:.4f}}<extra></extra>"))
    fig.update_layout(title="Final training loss against depth")
    _legend_below(fig)
    fig.update_xaxes(title="layers", tickvals=sorted({*plain, *residual}))
    fig.update_yaxes(title="final training loss (log)", type="log", dtick=1, tickformat=".2~g")
    return apply_theme(fig, presenter)


def lesion_bars(lesions: Mapping[str, Any], *, presenter: bool = False) -> go.Figure:
    """Test accuracy with one block deleted, grouped by block, one bar colour per net (residual, plain).

    Each lesion is an engine.training.residual.Lesion; dotted lines mark each net's intact accuracy,
    the gray dashed line chance; a block a net cannot lose is shown as a gap with its reason on hover.
    """
    fig = go.Figure()
    blocks = list(dict.fromkeys(b for lesion in lesions.values()
                                for b in [*(r.block for r in lesion.removed), *(r.block for r in lesion.not_removable)]))
    blocks.sort(key=lambda name: [int(p) if p.isdigit() else p for p in name.replace("stage", "").split(".")])
    for kind, lesion in lesions.items():
        accuracy = {r.block: r.acc for r in lesion.removed}
        reasons = {r.block: r.reason for r in lesion.not_removable}
        fig.add_trace(go.Bar(
            x=blocks, y=[accuracy.get(b) for b in blocks], name=f"{kind} (intact {lesion.baseline_acc:.1%})",
            marker_color=KIND_COLOUR.get(kind, PALETTE[2]),
            customdata=[reasons.get(b, "") for b in blocks],
            hovertemplate=f"{kind} without %{{x}}: %{{y:.1%}}<br>%{{customdata}}<extra></extra>"))
        fig.add_hline(y=lesion.baseline_acc, line=dict(color=KIND_COLOUR.get(kind, PALETTE[2]), dash="dot"))
    if blocks:
        _chance_line(fig, lesions, blocks)
    fig.update_layout(title="Test accuracy with one block deleted", barmode="group")
    _legend_below(fig)
    fig.update_xaxes(title="deleted block", type="category")
    fig.update_yaxes(title="test accuracy", range=[0, 1.05], tickformat=".0%")
    return apply_theme(fig, presenter)


def random_k_curve(lesions: Mapping[str, Any], *, presenter: bool = False) -> go.Figure:
    """Mean test accuracy (± one standard deviation over the draws) with k random blocks deleted.

    The bars stop at 0 and 100 %: a spread of accuracies near the top is lopsided, and a bar past
    100 % would show an accuracy no draw can have."""
    fig = go.Figure()
    for kind, lesion in lesions.items():
        points = [(0, lesion.baseline_acc, 0.0)] + [(p.k, p.acc_mean, p.acc_std) for p in lesion.random_k]
        fig.add_trace(go.Scatter(
            x=[k for k, _, _ in points], y=[m for _, m, _ in points], mode="lines+markers", name=kind,
            error_y=dict(type="data", array=[min(s, 1 - m) for _, m, s in points],
                         arrayminus=[min(s, m) for _, m, s in points], symmetric=False, visible=True),
            line=dict(color=KIND_COLOUR.get(kind, PALETTE[2]), dash=KIND_DASH.get(kind, "solid"), width=3),
            hovertemplate=f"{kind}, %{{x}} blocks deleted: %{{y:.1%}}<extra></extra>"))
    _chance_line(fig, lesions, [0, max((p.k for lesion in lesions.values() for p in lesion.random_k), default=1)])
    fig.update_layout(title="Test accuracy with k random blocks deleted")
    _legend_below(fig)
    fig.update_xaxes(title="blocks deleted k", tickformat="d")
    fig.update_yaxes(title="test accuracy", range=[0, 1.05], tickformat=".0%")
    return apply_theme(fig, presenter)


def path_histogram(counts: Sequence[int], *, presenter: bool = False) -> go.Figure:
    """Bars of C(n, k): how many of the 2ⁿ paths pass through k residual branches."""
    n, total = len(counts) - 1, sum(counts)
    fig = go.Figure(go.Bar(
        x=list(range(n + 1)), y=[c / total for c in counts], marker_color=PALETTE[0],
        customdata=[str(c) for c in counts],  # exact integers: C(54, 27) is beyond float precision
        hovertemplate="length %{x}: %{customdata} paths (%{y:.2%})<extra></extra>"))
    fig.update_layout(title=f"Path lengths of a ResNet with {n} blocks: {total:,} paths" if n <= 40 else
                      f"Path lengths of a ResNet with {n} blocks: 2^{n} ≈ {float(total):.2e} paths", showlegend=False)
    fig.update_xaxes(title="path length k (residual branches passed)", tickformat="d")
    fig.update_yaxes(title="share of paths", tickformat=".0%")
    return apply_theme(fig, presenter)
