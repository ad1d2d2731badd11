"""Figures for hyperparameter search: parallel coordinates, optimization history, importances, validation curve.

Pure builders: trial records (dicts with params, val_acc, train_acc, state, as
engine.training.tuning.TrialResult.to_dict gives them) in, `go.Figure` out.

References:
    Inselberg 1985, "The plane with parallel coordinates", The Visual Computer 1(2).
    Optuna's plot_optimization_history and plot_param_importances (the same views, drawn here from the records).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from ui.figures.train import PALETTE, SEQUENTIAL, apply_theme

STATE_MARKERS = {"complete": ("circle", PALETTE[0]), "pruned": ("x", PALETTE[1]),
                 "failed": ("triangle-down", PALETTE[5])}


def _scored(trials: Sequence[Mapping]) -> list[Mapping]:
    return [t for t in trials if t.get("val_acc") is not None]


def _dimension(name: str, values: list, log: bool, title: str) -> dict:
    """One parallel-coordinates axis: numbers (log10 with readable ticks on a log range) or named choices."""
    if any(isinstance(v, str) for v in values):
        names = list(dict.fromkeys(values))
        return dict(label=title, values=[names.index(v) for v in values], tickvals=list(range(len(names))),
                    ticktext=names)
    if log and all(v > 0 for v in values):
        low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
        ticks = list(range(low, high + 1))
        return dict(label=title, values=[math.log10(v) for v in values], tickvals=ticks,
                    ticktext=[f"1e{t}" for t in ticks], range=[low, high])
    return dict(label=title, values=values)


def parallel_coordinates(trials: Sequence[Mapping], params: Sequence[str], *, log: Sequence[str] = (),
                         titles: Mapping[str, str] | None = None, presenter: bool = False) -> go.Figure:
    """One line per scored trial through its parameter values to its validation accuracy, coloured by accuracy."""
    scored = _scored(trials)
    titles = titles or {}
    scores = [t["val_acc"] for t in scored]
    dimensions = [_dimension(p, [t["params"][p] for t in scored], p in log, titles.get(p, p)) for p in params]
    dimensions.append(dict(label="validation accuracy", values=scores, range=[min(scores, default=0), 1]))
    fig = go.Figure(go.Parcoords(line=dict(color=scores, colorscale=SEQUENTIAL, showscale=True,
                                           colorbar=dict(title="val acc")), dimensions=dimensions))
    fig.update_layout(title="Every trial as a line: where do the good ones pass?", height=460 if not presenter else 560)
    apply_theme(fig, presenter)
    fig.update_layout(margin=dict(l=70, r=40, t=120, b=30))  # axis names sit above the axes, tick labels left
    return fig


def optimization_history(trials: Sequence[Mapping], *, presenter: bool = False) -> go.Figure:
    """Validation accuracy per trial, marked by how it ended, and the best complete trial so far."""
    fig = go.Figure()
    for state, (symbol, colour) in STATE_MARKERS.items():
        shown = [t for t in trials if t["state"] == state]
        if shown:
            fig.add_trace(go.Scatter(x=[t["number"] for t in shown], y=[t["val_acc"] or 0 for t in shown],
                                     mode="markers", name=state, marker=dict(symbol=symbol, size=11, color=colour),
                                     hovertemplate="trial %{x}: %{y:.3f}<extra>" + state + "</extra>"))
    best, xs, ys = -1.0, [], []
    for t in sorted(trials, key=lambda t: t["number"]):
        if t["state"] == "complete":
            best = max(best, t["val_acc"])
        if best >= 0:
            xs.append(t["number"])
            ys.append(best)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="best so far", line=dict(color=PALETTE[2], width=3,
                                                                                     shape="hv")))
    fig.update_layout(title="Optimization history", xaxis_title="trial", yaxis_title="validation accuracy",
                      height=380)
    return apply_theme(fig, presenter)


def importances(values: Mapping[str, float], *, titles: Mapping[str, str] | None = None,
                presenter: bool = False) -> go.Figure:
    """Each parameter's share of the variation in validation accuracy, largest on top."""
    titles = titles or {}
    ordered = sorted(values.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in ordered], y=[titles.get(k, k) for k, _ in ordered], orientation="h",
                           marker_color=PALETTE[0], text=[f"{v:.0%}" for _, v in ordered], textposition="auto"))
    fig.update_layout(title="Parameter importances (PED-ANOVA)", xaxis_title="share", xaxis_range=[0, 1],
                      height=140 + 45 * len(ordered))
    return apply_theme(fig, presenter)


def validation_curve(trials: Sequence[Mapping], param: str, *, log: bool = False, title: str | None = None,
                     presenter: bool = False) -> go.Figure:
    """Training and validation accuracy against one parameter (a λ sweep); pruned trials drawn open."""
    scored = sorted(_scored(trials), key=lambda t: t["params"][param])
    complete = [t for t in scored if t["state"] == "complete"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[t["params"][param] for t in complete], y=[t["train_acc"] for t in complete],
                             mode="lines+markers", name="training", line=dict(color=PALETTE[1], dash="dash")))
    fig.add_trace(go.Scatter(x=[t["params"][param] for t in complete], y=[t["val_acc"] for t in complete],
                             mode="lines+markers", name="validation", line=dict(color=PALETTE[0], width=3)))
    pruned = [t for t in scored if t["state"] == "pruned"]
    if pruned:
        fig.add_trace(go.Scatter(x=[t["params"][param] for t in pruned], y=[t["val_acc"] for t in pruned],
                                 mode="markers", name="validation (pruned)",
                                 marker=dict(symbol="circle-open", size=11, color=PALETTE[0])))
    fig.update_layout(title=f"Validation curve: accuracy against {title or param}", xaxis_title=title or param,
                      yaxis_title="accuracy", height=400)
    if log:
        fig.update_xaxes(type="log", dtick=1, exponentformat="power")  # one tick a decade: 10⁻⁶ … 10⁻¹
    return apply_theme(fig, presenter)


def fold_accuracies(accuracies: Sequence[float], *, presenter: bool = False) -> go.Figure:
    """k-fold validation accuracy per fold, with their mean."""
    folds = list(range(1, len(accuracies) + 1))
    fig = go.Figure(go.Bar(x=folds, y=list(accuracies), marker_color=PALETTE[0], name="fold",
                           text=[f"{a:.1%}" for a in accuracies], textposition="inside",
                           insidetextanchor="middle"))  # clear of the mean line near the bars' tops
    if accuracies:
        mean = sum(accuracies) / len(accuracies)
        fig.add_hline(y=mean, line=dict(color=PALETTE[1], dash="dash", width=3),
                      annotation_text=f"mean {mean:.1%}", annotation_position="top left")
        fig.update_yaxes(range=[max(0.0, min(accuracies) - 0.05), 1])
    fig.update_layout(title="Validation accuracy of each fold", xaxis_title="fold", yaxis_title="accuracy",
                      height=340, xaxis=dict(tickvals=folds))
    return apply_theme(fig, presenter)
