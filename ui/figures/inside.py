"""Figures and display images for the inside-the-CNN pages: map grids, heat overlays, occlusion and ε curves.

Pure builders: tensors or numbers in, uint8 arrays or `go.Figure` out. Heat maps use Viridis
(perceptually uniform, colour-blind safe); signed maps use the blue–white–red map of ui.images.

References:
    Wang et al. 2020, "CNN Explainer", https://poloclub.github.io/cnn-explainer/ (one tile per channel).
    Crameri et al. 2020, "The misuse of colour in science communication", Nature Communications.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import torch
from torch import Tensor

from ui.figures.train import PALETTE, SEQUENTIAL, apply_theme
from ui.images import signed_colour, signed_to_rgb, tile, to_display, upscale

MAX_TILES = 64  # channels drawn per layer grid
_VIRIDIS = np.array([plotly.colors.hex_to_rgb(c) if c.startswith("#") else plotly.colors.unlabel_rgb(c)
                     for c in plotly.colors.sequential.Viridis], dtype=np.float64)


def viridis(values: Tensor | np.ndarray, *, low: float | None = None, high: float | None = None) -> np.ndarray:
    """(H, W) values → uint8 (H, W, 3) on Viridis, `low`…`high` (default: the map's range) to dark…yellow."""
    array = np.nan_to_num(np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=np.float64))
    low = float(array.min()) if low is None else low
    high = float(array.max()) if high is None else high
    position = np.clip((array - low) / (high - low), 0, 1) if high > low else np.zeros_like(array)
    stops = np.linspace(0, 1, len(_VIRIDIS))
    return np.stack([np.interp(position, stops, _VIRIDIS[:, c]) for c in range(3)], -1).round().astype(np.uint8)


def map_grid(maps: Tensor, *, columns: int = 8, shared_scale: bool = False, tile_px: int = 64) -> np.ndarray:
    """A layer's maps (C, H, W) as a grid of Viridis tiles, each scaled to its own range unless `shared_scale`."""
    maps = maps[:MAX_TILES]
    low, high = (float(maps.min()), float(maps.max())) if shared_scale else (None, None)
    cells = np.stack([viridis(m, low=low, high=high) for m in maps])
    return tile(cells, columns, gap=4, upscale_to=tile_px)


def enlarged_map(values: Tensor, size: int) -> np.ndarray:
    """One map (H, W) on Viridis, enlarged by whole pixels (nearest) to about `size` pixels, so cells stay sharp."""
    factor = max(1, size // values.shape[-1])
    return viridis(values).repeat(factor, 0).repeat(factor, 1)


def filter_grid(weights: Tensor, *, columns: int = 8, tile_px: int = 48) -> np.ndarray:
    """Conv weights (O, I, k, k) as images: colour for 3 input channels, else the first input channel signed."""
    weights = weights[:MAX_TILES]
    if weights.shape[1] == 3:
        limit = float(weights.abs().max())
        cells = np.stack([signed_colour(w, limit=limit) for w in weights])
    else:
        limit = float(weights[:, 0].abs().max())
        cells = np.stack([signed_to_rgb(w[0], limit=limit) for w in weights])
    return tile(cells, columns, gap=4, upscale_to=tile_px)


def input_rgb(x: Tensor, size: int) -> np.ndarray:
    """One model input (C, H, W) in [0, 1] as uint8 (H', W', 3), upscaled to at least `size` pixels."""
    pixels = to_display(x, upscale_to=None)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    return upscale(pixels, size)


def heat_rgb(heat: Tensor, *, signed: bool) -> np.ndarray:
    """An attribution (H, W): signed ones on blue–white–red around 0, the others on Viridis from 0."""
    if signed:
        return signed_to_rgb(heat)
    return viridis(heat, low=0.0)


def overlay(x: Tensor, heat: Tensor, *, signed: bool, opacity: float, size: int = 224) -> np.ndarray:
    """The heat map laid over the input at `opacity` (0 = only the image, 1 = only the map), upscaled."""
    base = input_rgb(x, 1).astype(np.float64)
    colour = heat_rgb(heat, signed=signed).astype(np.float64)
    mixed = ((1 - opacity) * base + opacity * colour).round().astype(np.uint8)
    return upscale(mixed, size)


FRAME_PX, FRAME_RGB = 2, (96, 96, 96)  # a dark gray border: white (+ε) pixels must not melt into a light page


def perturbation_rgb(delta: Tensor, eps: float, size: int) -> np.ndarray:
    """An adversarial perturbation (C, H, W), magnified so ±ε spans the whole colour range (gray = 0), framed."""
    shown = torch.full_like(delta, 0.5) if eps <= 0 else (0.5 + delta / (2 * eps)).clamp(0, 1)
    rgb = input_rgb(shown, size)  # (H, W, 3)
    framed = np.empty((rgb.shape[0] + 2 * FRAME_PX, rgb.shape[1] + 2 * FRAME_PX, 3), dtype=np.uint8)
    framed[:] = FRAME_RGB
    framed[FRAME_PX:-FRAME_PX, FRAME_PX:-FRAME_PX] = rgb
    return framed


def occlusion_figure(probabilities: Tensor, class_name: str, *, patch: int, stride: int, unoccluded: float,
                     presenter: bool = False) -> go.Figure:
    """P(class) with the patch's top-left corner at each position: (rows, cols).

    The colour scale runs from 0 to the larger of the unoccluded probability and the map's maximum,
    so a drop shows even when the model was unsure to begin with.
    """
    values = probabilities.numpy()
    top = max(unoccluded, float(np.nan_to_num(values).max()), 1e-6)
    fig = go.Figure(go.Heatmap(
        z=values, x=[c * stride for c in range(values.shape[1])], y=[r * stride for r in range(values.shape[0])],
        colorscale=SEQUENTIAL, zmin=0.0, zmax=top, colorbar=dict(title="P", tickformat=".0%"),
        hovertemplate="patch at x=%{x}, y=%{y}: P=%{z:.1%}<extra></extra>"))
    fig.update_layout(title=f"P({class_name}) with a {patch}×{patch} gray patch at each position "
                            f"(without: {unoccluded:.0%})", height=420)
    fig.update_xaxes(title="patch left (px)", constrain="domain")
    fig.update_yaxes(title="patch top (px)", autorange="reversed", scaleanchor="x")
    return apply_theme(fig, presenter)


def eps_curve(eps: Sequence[float], curves: dict[str, Sequence[float]], *, chosen: float,
              presenter: bool = False) -> go.Figure:
    """Probabilities against ε (one line per class), with the chosen ε marked."""
    fig = go.Figure()
    for i, (name, values) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(eps), y=list(values), mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=3)))
    fig.add_vline(x=chosen, line_dash="dot", line_color=PALETTE[6])
    fig.update_layout(title="FGSM: probability against ε", height=360, legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(title="ε (pixel units, 1 = full range)")
    fig.update_yaxes(title="probability", range=[0, 1.02], tickformat=".0%")
    return apply_theme(fig, presenter)
