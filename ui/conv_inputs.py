"""Shared controls of the convolution pages: the input picker, small editable grids, conv and kernel settings.

Every numeric/choice control round-trips through the URL (ui.state.UrlField) under a short name;
editable grids (st.data_editor) and uploads stay in the session only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch
from torch import Tensor

from engine import data
from engine.layers import conv, kernels
from engine.layers.conv import ConvConfig, PoolConfig
from ui.images import signed_to_rgb, tile
from ui.state import UrlField, choice, flag, number
from ui.train_config import load_dataset
from ui.uploads import image_upload_ui

SOURCES = {"photo": "Photo", "sample": "Data-set sample", "upload": "Upload", "grid": "Small grid"}
SAMPLE_SETS = ("digits", "shapes")
SIDES = [32, 64, 128, 256]  # longest side of a photo, pixels
PADDINGS = [str(p) for p in range(11)] + ["same", "valid"]
WEIGHTS = kernels.names() + ["random", "edit"]
GRID_MAX = 12


# ---- URL fields ---------------------------------------------------------------------------------------

def input_fields(prefix: str, source: str = "photo", photo: str = "chelsea", side: int = 128) -> list[UrlField]:
    return [choice(f"{prefix}.src", "src", source, list(SOURCES)),
            choice(f"{prefix}.photo", "photo", photo, data.photo_names()),
            UrlField(f"{prefix}.side", "px", side, int, lambda v: v in SIDES),
            flag(f"{prefix}.gray", "gray", False),
            choice(f"{prefix}.set", "set", "digits", list(SAMPLE_SETS)),
            number(f"{prefix}.index", "idx", 0, 0, 999, int),
            number(f"{prefix}.grid", "grid", 7, 3, GRID_MAX, int)]


def conv_fields(prefix: str, **defaults) -> list[UrlField]:
    d = dict(oc=1, k=3, stride=1, pad="1", mode="zeros", dil=1, groups=1, bias=True, tr=False, op=0,
             w="sobel_x") | defaults
    return [number(f"{prefix}.out", "oc", d["oc"], 1, 16, int), number(f"{prefix}.k", "k", d["k"], 1, 11, int),
            number(f"{prefix}.stride", "stride", d["stride"], 1, 8, int),
            choice(f"{prefix}.pad", "pad", d["pad"], PADDINGS),
            choice(f"{prefix}.mode", "mode", d["mode"], list(conv.PADDING_MODES)),
            number(f"{prefix}.dil", "dil", d["dil"], 1, 5, int),
            number(f"{prefix}.groups", "groups", d["groups"], 1, 16, int),
            flag(f"{prefix}.bias", "bias", d["bias"]), flag(f"{prefix}.tr", "tr", d["tr"]),
            number(f"{prefix}.op", "op", d["op"], 0, 7, int), choice(f"{prefix}.w", "w", d["w"], WEIGHTS)]


# ---- inputs -------------------------------------------------------------------------------------------

@st.cache_data(max_entries=32, show_spinner=False)
def _photo(name: str, side: int, gray: bool) -> Tensor:
    image = conv.shrink(data.load_photo(name), side)
    return image.mean(0, keepdim=True) if gray and image.shape[0] == 3 else image


def default_grid(size: int) -> np.ndarray:
    """A hand-checkable pattern of small integers: a dark left half, a bright right half, a diagonal."""
    r, c = np.mgrid[0:size, 0:size]
    return (1 + 6 * (c >= size // 2) + (r == c) * 2 - (r + c) % 2).astype(np.int64)


def grid_editor_ui(key: str, size: int) -> Tensor:
    """An editable size×size grid of numbers (st.data_editor); returns it as a (1, H, W) tensor."""
    base = st.session_state.setdefault(f"{key}.base.{size}", pd.DataFrame(default_grid(size),
                                                                          columns=[str(c) for c in range(size)]))
    edited = st.data_editor(base, key=f"{key}.editor.{size}", hide_index=False, width="content",
                            column_config={c: st.column_config.NumberColumn(c, step=1, min_value=-99, max_value=99,
                                                                            width=40) for c in base.columns})
    values = np.array(edited.fillna(0).to_numpy(dtype=np.float32))
    return torch.from_numpy(values)[None]


def input_picker_ui(prefix: str) -> tuple[Tensor | None, str]:
    """Photo, data-set sample, upload or small grid; returns (image (C, H, W) in [0, 1] — or grid numbers, source)."""
    source = st.segmented_control("Input", list(SOURCES), format_func=SOURCES.get, key=f"{prefix}.src", required=True,
                                  help="A photo, a data-set image, your own image, or a small grid of numbers you "
                                       "can check by hand.") or "photo"
    if source == "photo":
        left, mid, right = st.columns([2, 1, 1])
        name = left.selectbox("Photo", data.photo_names(), key=f"{prefix}.photo",
                              help="Bundled scikit-image / scikit-learn photos.")
        side = mid.selectbox("Longest side (px)", SIDES, key=f"{prefix}.side",
                             help="The photo is scaled down to this; bigger shows more detail, smaller runs faster.")
        gray = right.toggle("Grayscale", key=f"{prefix}.gray", help="Average the colour channels into one.")
        return _photo(name, side, gray), source
    if source == "sample":
        left, right = st.columns(2)
        name = left.selectbox("Data set", SAMPLE_SETS, key=f"{prefix}.set",
                              help="digits: 8×8 handwritten digits; shapes: 32×32 drawn shapes.")
        split = load_dataset(name, None, 0).train
        index = right.number_input("Image number", 0, 999, key=f"{prefix}.index",
                                   help="Which training image to use.")
        return split.x[index % len(split)], source
    if source == "upload":
        image = image_upload_ui("Upload an image", key=f"{prefix}.upload")
        if image is None:
            st.info("Choose an image file to use it as the input.")
            return None, source
        side = st.selectbox("Longest side (px)", SIDES, key=f"{prefix}.side",
                            help="Your image is scaled down to this.")
        return conv.shrink(image, side), source
    size = st.number_input("Grid size", 3, GRID_MAX, key=f"{prefix}.grid",
                           help="Rows and columns of the grid. Click a cell to type a number.")
    return grid_editor_ui(f"{prefix}.cells", size), source


# ---- layer settings -------------------------------------------------------------------------------------

def _padding(text: str) -> int | str:
    return text if text in ("same", "valid") else int(text)


def conv_config_ui(prefix: str, in_channels: int) -> ConvConfig:
    """The nn.Conv2d / nn.ConvTranspose2d arguments; returns them unchecked (the engine checks)."""
    a, b, c, e = st.columns(4)
    out = a.number_input("Out channels", 1, 16, key=f"{prefix}.out", help="Number of filters = output maps.")
    k = b.number_input("Kernel size K", 1, 11, key=f"{prefix}.k", help="The filter is K×K pixels.")
    stride = c.number_input("Stride S", 1, 8, key=f"{prefix}.stride", help="How far the window moves each step.")
    dil = e.number_input("Dilation D", 1, 5, key=f"{prefix}.dil", help="Gap between kernel taps: D−1 pixels skipped.")
    pad = a.selectbox("Padding P", PADDINGS, key=f"{prefix}.pad",
                      help="Pixels added on every side; 'same' keeps the size (stride 1), 'valid' adds none.")
    mode = b.selectbox("Padding mode", conv.PADDING_MODES, key=f"{prefix}.mode",
                       help="What the padding holds: zeros, a mirror image (reflect), the edge pixel (replicate) "
                            "or the opposite side (circular).")
    groups = c.number_input("Groups", 1, 16, key=f"{prefix}.groups",
                            help="Split channels into groups that do not see each other; groups = channels is "
                                 "a depthwise convolution. Must divide in and out channels.")
    bias = e.toggle("Bias", key=f"{prefix}.bias", help="Add a learnable constant per output channel.")
    transposed = e.toggle("Transposed", key=f"{prefix}.tr",
                          help="nn.ConvTranspose2d: spreads each input pixel over a window — upsamples with stride > 1.")
    op = 0
    if transposed:
        op = a.number_input("Output padding", 0, 7, key=f"{prefix}.op",
                            help="Extra rows/columns on one side of a transposed output (< stride or dilation).")
    return ConvConfig(in_channels, out, k, stride, _padding(pad), dil, groups, bias, mode, transposed, op)


def kernel_ui(prefix: str, size: int) -> Tensor | None:
    """The filter: a preset, random (PyTorch's default init) or edited by hand; None means random."""
    titles = dict(kernels.KERNELS.items()) | {"random": "Random (PyTorch default init)", "edit": "Edit by hand"}
    name = st.selectbox("Weights", WEIGHTS, format_func=titles.get, key=f"{prefix}.w",
                        help="Presets put the same K×K kernel in every filter (averaged over input channels); "
                             "random draws every filter differently from the sidebar seed.")
    if name == "random":
        return None
    if name == "edit":
        start = kernels.kernel("sobel_x" if size >= 3 else "identity", size).numpy()
        base = st.session_state.setdefault(f"{prefix}.kbase.{size}", pd.DataFrame(start, columns=[str(c) for c in
                                                                                                  range(size)]))
        edited = st.data_editor(base, key=f"{prefix}.keditor.{size}", width="content",
                                column_config={c: st.column_config.NumberColumn(c, step=0.1, format="%.2f", width=50)
                                               for c in base.columns})
        return torch.from_numpy(np.array(edited.fillna(0).to_numpy(dtype=np.float32)))
    return kernels.kernel(name, size)


# ---- formulas -------------------------------------------------------------------------------------------

def output_size_latex(config: ConvConfig | PoolConfig, n: int, axis: str = "") -> str:
    """The output-size formula, then (on a line of its own, so it fits a projector's width) the same
    with this layer's numbers and the result."""
    is_pool = isinstance(config, PoolConfig)
    stride = config.step if is_pool else config.stride
    before, after = conv.padding_amounts(config.kernel_size, config.padding, config.dilation)
    k, d = config.kernel_size, config.dilation
    out = conv.output_size(n, k, stride, config.padding, d, transposed=not is_pool and config.transposed,
                           output_padding=0 if is_pool else config.output_padding,
                           ceil_mode=is_pool and config.ceil_mode)
    name = f"{axis}_{{out}}" if axis else "N_{out}"
    pads = f"2\\cdot {before}" if before == after else f"({before}+{after})"
    if not is_pool and config.transposed:
        return (f"\\begin{{aligned}}{name} &= (N-1)S - 2P + D(K-1) + P_{{out}} + 1 \\\\ &= ({n}-1)\\cdot {stride} - "
                f"{pads} + {d}\\cdot({k}-1) + {config.output_padding} + 1 = {out}\\end{{aligned}}")
    lo, hi = ("\\lceil", "\\rceil") if is_pool and config.ceil_mode else ("\\lfloor", "\\rfloor")
    top = n + before + after - d * (k - 1) - 1
    rounding = "rounded up" if is_pool and config.ceil_mode else "rounded down"
    formula = (f"{name} &= \\left{lo} \\frac{{N + 2P - D(K-1) - 1}}{{S}} \\right{hi} + 1 \\\\ &= \\left{lo} "
               f"\\frac{{{n} + {pads} - {d}\\cdot({k}-1) - 1}}{{{stride}}} \\right{hi} + 1 = {out}")
    if top % stride:
        formula += f" \\\\ & \\text{{({top}/{stride} is not a whole number: PyTorch {rounding})}}"
    return f"\\begin{{aligned}}{formula}\\end{{aligned}}"


# ---- showing maps ---------------------------------------------------------------------------------------

_LUT = signed_to_rgb(np.linspace(-1.0, 1.0, 256)[None], limit=1.0)[0]  # (256, 3) diverging colours


def maps_image(maps: Tensor, *, columns: int = 4, upscale_to: int = 200) -> tuple[np.ndarray, str]:
    """Output maps (C, H, W) as one tiled picture and a caption saying how values became colours.

    Maps smaller than `upscale_to` are enlarged by whole pixels; signed maps use the diverging map of
    ui.images through a 256-entry lookup table (a per-pixel interpolation is too slow for 8 × 256² values).
    """
    values = maps.detach().to("cpu", torch.float32).numpy()
    limit = float(np.abs(values).max())
    upscale = upscale_to if max(values.shape[-2:]) < upscale_to else None
    if limit == 0:
        return tile(values[:, None], columns, upscale_to=upscale), "every value is 0"
    if values.min() >= 0:
        return tile(values[:, None] / limit, columns, upscale_to=upscale), f"black = 0, white = {limit:.3g}"
    levels = np.clip(np.rint((values / limit + 1) * 127.5), 0, 255).astype(np.intp)
    return tile(_LUT[levels], columns, upscale_to=upscale), f"blue = −{limit:.3g}, white = 0, red = +{limit:.3g}"


def image_format(picture: np.ndarray) -> str:
    """JPEG for big pictures (PNG-encoding a megapixel photo costs a third of a second), PNG for small crisp grids."""
    return "JPEG" if picture.shape[0] * picture.shape[1] > 200_000 else "PNG"
