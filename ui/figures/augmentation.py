"""Figures for the augmentation page: mixed images with their mixed labels, and accuracy with vs without.

Pure builders: plain numbers and uint8 pictures in, `go.Figure` out, in the shared theme of ui.figures.train.

References:
    Zhang et al. 2017, "mixup", arXiv 1710.09412; Yun et al. 2019, "CutMix", arXiv 1905.04899.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.train import PALETTE, apply_theme
from ui.images import DISPLAY_SIZE, to_display

SHOWN_SHARE = 0.005  # label probabilities below this are left out of a mixed image's bars
SPLITS = (("train", "training"), ("val", "validation"), ("test", "test"))


def mixed_labels(images: np.ndarray, targets: np.ndarray, class_names: Sequence[str], *,
                 title: str, presenter: bool = False) -> go.Figure:
    """Each mixed image ((N, C, H, W) in [0, 1]) above the bars of its label: the classes it mixes.

    `targets` is (N, K): one row of class probabilities per image, summing to 1.
    """
    pictures = [to_display(image, upscale_to=DISPLAY_SIZE) for image in images]
    count = len(pictures)
    fig = make_subplots(rows=2, cols=count, row_heights=[0.55, 0.45], vertical_spacing=0.08,
                        horizontal_spacing=0.03)
    for i, (picture, row) in enumerate(zip(pictures, np.asarray(targets, dtype=float)), start=1):
        rgb = picture if picture.ndim == 3 else np.repeat(picture[..., None], 3, axis=-1)
        fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), row=1, col=i)
        shown = [k for k in np.argsort(-row) if row[k] >= SHOWN_SHARE]
        fig.add_trace(go.Bar(
            x=[str(class_names[k]) for k in shown], y=[row[k] for k in shown],
            marker_color=[PALETTE[j % len(PALETTE)] for j in range(len(shown))],
            text=[f"{row[k]:.0%}" for k in shown], textposition="outside", cliponaxis=False,
            hovertemplate="%{x}: %{y:.1%}<extra></extra>", showlegend=False), row=2, col=i)
        fig.update_xaxes(visible=False, row=1, col=i)
        fig.update_yaxes(visible=False, row=1, col=i)
        fig.update_yaxes(range=[0, 1.25], tickformat=".0%", showticklabels=i == 1, row=2, col=i)
        fig.update_xaxes(type="category", tickangle=0, row=2, col=i)
    fig.update_layout(title=title, height=460 if presenter else 380, bargap=0.3)
    return apply_theme(fig, presenter)


def _final(history: Any, split: str) -> float | None:
    values = getattr(history, f"{split}_acc", None)
    return values if split == "test" else (values[-1] if values else None)


def accuracy_bars(histories: Mapping[str, Any], *, presenter: bool = False) -> go.Figure:
    """Grouped bars: the last training and validation accuracy and the test accuracy of each run (History-like:
    `train_acc`, `val_acc` lists, `test_acc`); the train–validation gap is what augmentation should shrink."""
    fig = go.Figure()
    for i, (key, label) in enumerate(SPLITS):
        values = [_final(history, key) for history in histories.values()]
        fig.add_trace(go.Bar(
            x=list(histories), y=values, name=label, marker_color=PALETTE[i],
            text=["—" if v is None else f"{v:.1%}" for v in values], textposition="outside", cliponaxis=False,
            hovertemplate=f"%{{x}}<br>{label}: %{{y:.1%}}<extra></extra>"))
    fig.update_layout(title="Final accuracy: the gap between training and validation is overfitting",
                      barmode="group", legend=dict(orientation="h", yref="container", yanchor="bottom", y=0))
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="accuracy", range=[0, 1.12], tickformat=".0%")
    return apply_theme(fig, presenter)
