"""Figures for over-fitting and regularization: the gap between the curves, weight histograms, dropout masks,
MC-dropout, L2 vs decoupled decay, and the data pitfalls (imbalance, leakage).

Pure builders: histories, lists and arrays in, `go.Figure` out (ui/figures/train.py's palette and theme).

References:
    Plotly filled area plots (fill="tonexty"), https://plotly.com/python/filled-area-plots/
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import GRID, PALETTE, apply_theme, run_label

GAP_FILL = "rgba(213, 94, 0, 0.18)"  # Okabe–Ito vermilion, faint: the region between the curves
TRAIN_COLOUR, VAL_COLOUR = PALETTE[0], PALETTE[5]


def _flat(values: Any) -> list[float]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def gap_curves(history: Any, metric: str = "acc", *, patience: int = 0, presenter: bool = False) -> go.Figure:
    """Train and validation curves of one run with the gap between them shaded; early stopping marked.

    `history` is History-like (epoch, train_/val_<metric>, best_epoch, stopped_reason). With `patience`,
    the best epoch (whose weights were restored) and the epoch training stopped get a line each.
    """
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc'; got {metric!r}")
    epochs = list(history.epoch)
    train, val = _flat(getattr(history, f"train_{metric}")), _flat(getattr(history, f"val_{metric}"))
    number = ".1%" if metric == "acc" else ".3f"
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=epochs, y=train, name="train", mode="lines+markers",
                             line=dict(color=TRAIN_COLOUR, dash="dash", width=3),
                             hovertemplate=f"train, epoch %{{x}}: %{{y:{number}}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=epochs, y=val, name="validation (gap shaded)", mode="lines+markers", fill="tonexty",
                             fillcolor=GAP_FILL, line=dict(color=VAL_COLOUR, width=3),
                             hovertemplate=f"validation, epoch %{{x}}: %{{y:{number}}}<extra></extra>"))
    if patience and epochs and history.best_epoch:
        restored = "weights restored" if getattr(history, "stopped_reason", None) else "best"
        fig.add_vline(x=history.best_epoch, line=dict(color=PALETTE[2], width=3),
                      annotation_text=f"best val loss: epoch {history.best_epoch} ({restored})",
                      annotation_position="top left")
        if (getattr(history, "stopped_reason", None) or "").startswith("early stopping"):
            fig.add_vline(x=epochs[-1], line=dict(color=PALETTE[6], dash="dot", width=2),
                          annotation_text=f"stopped after {patience} worse epochs", annotation_position="bottom left")
    what = "Accuracy" if metric == "acc" else "Loss"
    fig.update_layout(title=f"{what}: train (dashed) vs validation", height=420, hovermode="x unified",
                      legend=dict(orientation="h", yanchor="top", y=-0.2))
    fig.update_xaxes(title="epoch", tickformat="d")
    if metric == "acc":
        fig.update_yaxes(title="accuracy", range=[0, 1.02], tickformat=".0%")
    else:
        fig.update_yaxes(title="loss", rangemode="tozero")
    return apply_theme(fig, presenter)


def weight_norms(histories: Mapping[str, Any], *, presenter: bool = False) -> go.Figure:
    """‖w‖₂ of the penalized weights after each epoch, one line per run."""
    fig = go.Figure()
    for i, (name, history) in enumerate(histories.items()):
        fig.add_trace(go.Scatter(x=list(history.epoch), y=_flat(history.weight_norm), mode="lines+markers",
                                 name=run_label(name, history), line=dict(color=PALETTE[i % len(PALETTE)], width=3),
                                 hovertemplate=f"{name}<br>epoch %{{x}}: ‖w‖ = %{{y:.2f}}<extra></extra>"))
    fig.update_layout(title="Weight norm ‖w‖₂ per epoch", height=360, legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title="epoch", tickformat="d")
    fig.update_yaxes(title="‖w‖₂", rangemode="tozero")
    return apply_theme(fig, presenter)


def gap_grid(points: Mapping[str, Mapping[int, tuple[float, float]]], *, presenter: bool = False) -> go.Figure:
    """Train (dashed) and validation (solid) accuracy against training images, one colour per width.

    `points`: width label -> {training images: (train accuracy, validation accuracy)}.
    """
    fig = go.Figure()
    for i, (label, by_size) in enumerate(points.items()):
        sizes = sorted(by_size)
        colour = PALETTE[i % len(PALETTE)]
        for j, (split, dash) in enumerate((("train", "dash"), ("validation", "solid"))):
            fig.add_trace(go.Scatter(x=sizes, y=[by_size[n][j] for n in sizes], mode="lines+markers",
                                     name=f"{label} · {split}", legendgroup=label, marker=dict(size=10),
                                     line=dict(color=colour, dash=dash, width=3),
                                     hovertemplate=f"{label} · {split}<br>%{{x}} images: %{{y:.1%}}<extra></extra>"))
    fig.update_layout(title="The gap against training-set size (dashed = train, solid = validation)", height=420,
                      legend=dict(orientation="h", yanchor="top", y=-0.25))
    fig.update_xaxes(title="training images", type="log")
    fig.update_yaxes(title="accuracy at the best epoch", range=[0, 1.02], tickformat=".0%")
    return apply_theme(fig, presenter)


def weight_histograms(histograms: Mapping[str, Any], *, presenter: bool = False) -> go.Figure:
    """One histogram of the weights per run (log y, so a spike of zeros and the tails both show)."""
    names = list(histograms)
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols) or 1
    titles = [f"{n}: {histograms[n].zero_fraction:.0%} zeros" for n in names]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_yaxes=True,
                        horizontal_spacing=0.04, vertical_spacing=0.16)
    for i, name in enumerate(names):
        h = histograms[name]
        centres = [(a + b) / 2 for a, b in zip(h.edges[:-1], h.edges[1:])]
        fig.add_trace(go.Bar(x=centres, y=[c or None for c in h.counts], width=h.edges[1] - h.edges[0],
                             marker_color=PALETTE[i % len(PALETTE)], name=name, showlegend=False,
                             hovertemplate="w ≈ %{x:.3f}: %{y} weights<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_yaxes(type="log", title="weights (log)", col=1)
    fig.update_xaxes(title="w")
    fig.update_layout(title="Weights of each run", height=300 * rows + 80, bargap=0)
    return apply_theme(fig, presenter)


def dropout_masks(inputs: Sequence[float], masks: Any, outputs: Any, mean_output: Sequence[float],
                  *, p: float, presenter: bool = False) -> go.Figure:
    """Left: the masks drawn (white = kept); right: what the layer passes on, the input and the mean on top."""
    masks, outputs = [_flat(m) for m in masks], [_flat(o) for o in outputs]
    rows = ["input", *[f"draw {i + 1}" for i in range(len(outputs))], "mean of 2000 draws", "eval (p off)"]
    values = [_flat(inputs), *outputs, _flat(mean_output), _flat(inputs)]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6], horizontal_spacing=0.14,
                        subplot_titles=[f"masks m (kept with probability {1 - p:.0%})",
                                        f"outputs h·m/(1−p): kept units ×{1 / (1 - p):.2f}"])
    fig.add_trace(go.Heatmap(z=masks, y=rows[1:1 + len(masks)], colorscale=[[0, "#111111"], [1, "#F5F5F5"]],
                             showscale=False, zmin=0, zmax=1, xgap=1, ygap=1,
                             hovertemplate="unit %{x}, %{y}: %{z:.0f}<extra></extra>"), row=1, col=1)
    top = max(1e-9, max(max(abs(v) for v in row) for row in values))
    fig.add_trace(go.Heatmap(z=values, y=rows, colorscale="Viridis", zmin=0, zmax=top, xgap=1, ygap=1,
                             colorbar=dict(title="value"),
                             hovertemplate="unit %{x}, %{y}: %{z:.3f}<extra></extra>"), row=1, col=2)
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title="unit of the layer", showgrid=False)
    fig.update_layout(title="Dropout on a real layer, one image", height=160 + 28 * len(rows))
    return apply_theme(fig, presenter)


def mc_dropout(accuracy_after: Sequence[float], pass_accuracies: Sequence[float], deterministic: float,
               *, presenter: bool = False) -> go.Figure:
    """Accuracy of the mean of the first k stochastic passes, each pass alone, and the eval pass."""
    k = list(range(1, len(accuracy_after) + 1))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=k, y=_flat(pass_accuracies), mode="markers", name="one stochastic pass",
                             marker=dict(color=PALETTE[6], size=8),
                             hovertemplate="pass %{x} alone: %{y:.1%}<extra></extra>"))
    fig.add_trace(go.Scatter(x=k, y=_flat(accuracy_after), mode="lines", name="mean of the first k passes",
                             line=dict(color=PALETTE[0], width=3),
                             hovertemplate="mean of %{x} passes: %{y:.1%}<extra></extra>"))
    fig.add_hline(y=deterministic, line=dict(color=PALETTE[5], dash="dash", width=3),
                  annotation_text=f"eval pass (dropout off): {deterministic:.1%}", annotation_position="bottom right")
    fig.update_layout(title="MC-dropout: averaging stochastic passes", height=380,
                      legend=dict(orientation="h", yanchor="top", y=-0.25))
    fig.update_xaxes(title="passes k", tickformat="d")
    fig.update_yaxes(title="test accuracy", tickformat=".0%")
    return apply_theme(fig, presenter)


def decay_paths(paths: Mapping[str, Any], expected: Sequence[float], scales: Sequence[float],
                *, presenter: bool = False) -> go.Figure:
    """Mean weight per step for each variant (colour) and weight (solid: large gradients, dotted: small)."""
    fig = go.Figure()
    steps = list(range(len(expected)))
    fig.add_trace(go.Scatter(x=steps, y=_flat(expected), mode="lines", name="(1 − ηλ)ᵗ",
                             line=dict(color=GRID.replace("0.25", "0.9"), width=6)))
    dashes = ("solid", "dot", "dash", "dashdot")
    for i, (variant, path) in enumerate(paths.items()):
        columns = list(zip(*[_flat(row) for row in path]))  # (steps + 1, P) -> P series
        for j, series in enumerate(columns):
            label = f"{variant} · weight with gradients ×{scales[j]:g}"
            fig.add_trace(go.Scatter(x=steps, y=list(series), mode="lines", name=label,
                                     line=dict(color=PALETTE[i % len(PALETTE)], dash=dashes[j % 4], width=3),
                                     hovertemplate=f"{label}<br>step %{{x}}: %{{y:.3f}}<extra></extra>"))
    fig.update_layout(title="Mean weight under noise-only gradients", height=420,
                      legend=dict(orientation="h", yanchor="top", y=-0.2))
    fig.update_xaxes(title="step t")
    fig.update_yaxes(title="mean weight")
    return apply_theme(fig, presenter)


def class_bars(values: Mapping[str, Sequence[float]], class_names: Sequence[str], *, title: str,
               percent: bool = True, presenter: bool = False) -> go.Figure:
    """Grouped bars per class, one colour per series (per-class accuracy, training images per class)."""
    fig = go.Figure()
    names = [str(n) for n in class_names]
    for i, (label, series) in enumerate(values.items()):
        shown = [None if isinstance(v, float) and math.isnan(v) else v for v in _flat(series)]
        fig.add_trace(go.Bar(x=names, y=shown, name=label, marker_color=PALETTE[i % len(PALETTE)],
                             texttemplate="%{y:.0%}" if percent else "%{y}", textposition="outside",
                             hovertemplate=f"{label}<br>%{{x}}: %{{y{':.1%' if percent else ''}}}<extra></extra>"))
    fig.update_layout(title=title, barmode="group", height=380, legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title="class", type="category")
    if percent:
        fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    return apply_theme(fig, presenter)


def leakage_bars(scores: Mapping[str, Mapping[str, float]], *, presenter: bool = False) -> go.Figure:
    """Accuracy of each model (colour) on each part of the test split (x)."""
    fig = go.Figure()
    for i, (model, parts) in enumerate(scores.items()):
        fig.add_trace(go.Bar(x=list(parts), y=list(parts.values()), name=model, marker_color=PALETTE[i % len(PALETTE)],
                             texttemplate="%{y:.1%}", textposition="outside",
                             hovertemplate=f"{model}<br>%{{x}}: %{{y:.1%}}<extra></extra>"))
    fig.update_layout(title="Accuracy on each part of the test split", barmode="group", height=400,
                      legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%", title="accuracy")
    return apply_theme(fig, presenter)
