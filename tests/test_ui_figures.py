"""ui/figures/train.py builders, ui/images.py conversions, ui/uploads.py decoding, and ui/results.py in AppTest."""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine import limits
from tests.apptest_helpers import assert_no_exception
from ui.figures import train as figures
from ui.images import GAP_GRAY, signed_colour, signed_to_rgb, tile, to_display, upscale
from ui.uploads import decode_upload, read_run, size_message

ROOT = Path(__file__).resolve().parent.parent


def _history(epochs: int = 3, **ending) -> SimpleNamespace:
    return SimpleNamespace(
        epoch=list(range(1, epochs + 1)), train_loss=[2.0 / e for e in range(1, epochs + 1)],
        val_loss=[2.2 / e for e in range(1, epochs + 1)], train_acc=[0.5 + 0.1 * e for e in range(epochs)],
        val_acc=[0.45 + 0.1 * e for e in range(epochs)], diverged_at=ending.get("diverged_at"),
        stopped_reason=ending.get("stopped_reason"))


# ---------------------------------------------------------------- figures
def test_learning_curves_two_traces_per_run_train_dashed():
    fig = figures.learning_curves({"a": _history(), "b": _history(2)}, "loss")
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 4
    dashes = {trace.name: trace.line.dash for trace in fig.data}
    assert dashes == {"a · train": "dash", "a · val": "solid", "b · train": "dash", "b · val": "solid"}
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color
    assert list(fig.data[0].x) == [1, 2, 3]
    assert fig.layout.xaxis.title.text == "epoch"
    assert tuple(fig.layout.xaxis.range) == (0.8, 3.2)


def test_learning_curves_accuracy_axis_is_zero_to_one():
    fig = figures.learning_curves({"a": _history()}, "acc")
    assert fig.layout.yaxis.range[0] == 0.0 and fig.layout.yaxis.range[1] >= 1.0
    assert list(fig.data[1].y) == pytest.approx([0.45, 0.55, 0.65])
    with pytest.raises(ValueError):
        figures.learning_curves({"a": _history()}, "f1")


def test_refilled_learning_curves_equal_the_curves_built_anew():
    for metric in ("loss", "acc"):
        fig = figures.learning_curves({"a": _history(2), "b": _history(3)}, metric, presenter=True)
        assert figures.refill_learning_curves(fig, {"a": _history(5), "b": _history(12)}, metric)
        fresh = figures.learning_curves({"a": _history(5), "b": _history(12)}, metric, presenter=True)
        assert fig.to_dict() == fresh.to_dict()


def test_refill_learning_curves_refuses_another_chart_and_leaves_it_alone():
    fig = figures.learning_curves({"a": _history(3)}, "loss")
    before = fig.to_dict()
    assert not figures.refill_learning_curves(fig, {"b": _history(4)}, "loss")  # another run
    assert not figures.refill_learning_curves(fig, {"a": _history(4)}, "acc")  # another metric
    assert not figures.refill_learning_curves(fig, {"a": _history(4, diverged_at=9)}, "loss")  # its legend changed
    assert not figures.refill_learning_curves(fig, {"a": _history(figures.MARKERS_UP_TO + 1)}, "loss")  # lines only
    assert fig.to_dict() == before


def test_learning_curves_names_how_a_run_ended():
    fig = figures.learning_curves({"hot": _history(diverged_at=17), "early": _history(stopped_reason="early stop"),
                                   "x": _history(stopped_reason="cancelled")}, "loss")
    names = [trace.name for trace in fig.data]
    assert "hot (diverged at step 17) · val" in names
    assert "early (stopped early) · train" in names
    assert "x (cancelled) · val" in names


def test_confusion_matrix_rows_true_columns_predicted_with_counts():
    matrix = torch.tensor([[3, 1], [0, 4]])
    fig = figures.confusion_matrix(matrix, ["cat", "dog"])
    heatmap = fig.data[0]
    assert isinstance(heatmap, go.Heatmap)
    assert [list(row) for row in heatmap.text] == [[3, 1], [0, 4]]
    np.testing.assert_allclose(np.array(heatmap.z, dtype=float), [[0.75, 0.25], [0.0, 1.0]])
    assert (heatmap.zmin, heatmap.zmax) == (0, 1)
    assert fig.layout.xaxis.title.text == "predicted class"
    assert fig.layout.yaxis.title.text == "true class"
    assert fig.layout.yaxis.autorange == "reversed"
    raw = figures.confusion_matrix(matrix, ["cat", "dog"], normalize=False)
    assert [list(row) for row in raw.data[0].z] == [[3, 1], [0, 4]]


def test_per_class_accuracy_bars_skip_missing_classes():
    fig = figures.per_class_accuracy(torch.tensor([0.5, math.nan, 1.0]), ["a", "b", "c"], overall=0.7)
    bar = fig.data[0]
    assert list(bar.x) == ["a", "b", "c"]
    assert list(bar.y) == [0.5, None, 1.0]
    assert fig.layout.yaxis.range[0] == 0.0 and fig.layout.yaxis.range[1] >= 1.0
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].layer == "below"  # the overall line, under the labels


def test_top_k_bars_horizontal_most_likely_on_top():
    fig = figures.top_k_bars([("cat", 0.7), ("dog", 0.2), ("fox", 0.1)])
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["cat", "dog", "fox"]
    assert fig.layout.yaxis.autorange == "reversed"
    assert tuple(fig.layout.xaxis.range)[0] == 0.0


def test_apply_theme_presenter_font_and_transparent_background():
    normal = figures.apply_theme(go.Figure(), presenter=False)
    big = figures.apply_theme(go.Figure(), presenter=True)
    assert big.layout.font.size > normal.layout.font.size >= 12
    assert big.layout.font.size >= 20
    assert big.layout.paper_bgcolor == big.layout.plot_bgcolor == "rgba(0,0,0,0)"


# ---------------------------------------------------------------- images
def test_to_display_gray_and_colour_shapes_dtype_and_upscaling():
    gray = to_display(torch.rand(1, 8, 8))
    assert gray.dtype == np.uint8 and gray.ndim == 2 and gray.shape[0] >= 96
    colour = to_display(torch.rand(3, 8, 6), upscale_to=None)
    assert colour.shape == (8, 6, 3) and colour.dtype == np.uint8
    assert to_display(torch.rand(40, 40), upscale_to=96).shape == (120, 120)
    assert to_display(torch.rand(3, 200, 100)).shape == (200, 100, 3)  # large enough already


def test_to_display_clips_and_upscales_by_repeating_pixels():
    image = torch.tensor([[[-1.0, 0.5], [1.0, 2.0]]])
    shown = to_display(image, upscale_to=4)
    assert shown.shape == (4, 4)
    assert shown[0, 0] == shown[1, 1] == 0 and shown[0, 2] == 128 and shown[3, 3] == 255
    assert upscale(np.zeros((3, 5), np.uint8), 10).shape == (6, 10)


def test_tile_grid_with_one_pixel_gaps():
    grid = tile(torch.rand(5, 3, 4, 4), columns=3)
    assert grid.shape == (2 * 4 + 1, 3 * 4 + 2, 3) and grid.dtype == np.uint8
    assert (grid[4] == GAP_GRAY).all()  # the row between the two rows of tiles
    gray = tile(torch.zeros(4, 1, 2, 2), columns=2)
    assert gray.shape == (5, 5)
    maps = np.stack([signed_to_rgb(torch.randn(3, 3)) for _ in range(2)])
    assert tile(maps, columns=2).shape == (3, 7, 3)


def test_signed_to_rgb_is_neutral_at_zero_and_symmetric():
    values = torch.tensor([[-1.0, -0.5, 0.0, 0.5, 1.0]])
    rgb = signed_to_rgb(values).astype(int)
    assert rgb.shape == (1, 5, 3)
    zero = rgb[0, 2]
    assert zero.min() >= 235 and zero.max() - zero.min() <= 5  # white-ish gray
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[0, 4, 0] > rgb[0, 4, 2]  # negative blue, positive red
    # ±v sit at equal distances from the centre of the map.
    distance = lambda a, b: np.abs(a - b).sum()  # noqa: E731
    assert distance(rgb[0, 1], zero) == pytest.approx(distance(rgb[0, 3], zero), rel=0.25)
    flipped = signed_to_rgb(-values).astype(int)
    assert (flipped[0, ::-1] == rgb[0]).all()
    assert signed_to_rgb(torch.zeros(2, 2)).shape == (2, 2, 3)  # all zero: no division by zero
    assert (signed_to_rgb(values, limit=10.0)[0, 4] != signed_to_rgb(values)[0, 4]).any()


def test_signed_colour_zero_is_mid_gray():
    rgb = signed_colour(torch.zeros(3, 2, 2))
    assert rgb.shape == (2, 2, 3) and (np.abs(rgb.astype(int) - 128) <= 1).all()
    with pytest.raises(ValueError):
        signed_colour(torch.zeros(2, 2))


# ---------------------------------------------------------------- uploads
def _png(size=(5, 4), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else 128).save(buffer, format="PNG")
    return buffer.getvalue()


def test_decode_upload_returns_image_for_good_bytes():
    upload = decode_upload(_png(), name="red.png")
    assert upload.error is None and upload.value.shape == (3, 4, 5)


@pytest.mark.parametrize("data", [b"not an image at all", _png()[:40], b""])
def test_decode_upload_reports_bad_bytes_instead_of_raising(data):
    upload = decode_upload(data, name="broken.png")
    assert upload.value is None
    assert "broken.png" in upload.error


def test_read_run_reports_foreign_file():
    upload = read_run(b"\x00" * 100, name="weights.pt")
    assert upload.value is None and "not a run saved by VisionExplorer" in upload.error


def test_size_message_names_the_limit():
    assert size_message(10) is None
    message = size_message(limits.MAX_UPLOAD_BYTES + 1, name="big.zip")
    assert "big.zip" in message and "200 MB" in message


# ---------------------------------------------------------------- results in AppTest
_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import streamlit as st
import torch

from engine.data.sets import Dataset, Split
from engine.training.trainer import Trainer, TrainConfig
from ui.results import results_ui, runs_table_ui, try_it_ui


def split(n, seed):
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = (torch.rand(n, {channels}, 8, 8, generator=gen) * 0.5 + 0.5 * y.view(-1, 1, 1, 1)).float()
    return Split(x, y)


if "test.dataset" not in st.session_state:
    dataset = Dataset(name="tiny", title="Tiny", train=split(32, 0), val=split(8, 1), test=split(16, 2),
                      class_names=["dark", "bright"], channels={channels}, image_size=8,
                      mean=(0.5,) * {channels}, std=(0.3,) * {channels})
    config = TrainConfig(data="tiny", model={model!r}, epochs=1, batch_size=8, lr=0.01)
    trainer = Trainer(config, dataset, device=torch.device("cpu"))
    st.session_state["test.dataset"] = dataset
    st.session_state["test.run"] = trainer.fit()
dataset, run = st.session_state["test.dataset"], st.session_state["test.run"]
results_ui(run, dataset)
try_it_ui(run, dataset)
runs_table_ui({{run.name: run}})
"""


@pytest.mark.parametrize("model, channels", [("linear", 1), ("tinyvgg", 3)])
def test_results_ui_draws_a_trained_run(tmp_path, model, channels):
    script = tmp_path / "results_app.py"
    script.write_text(textwrap.dedent(_SCRIPT.format(root=str(ROOT), model=model, channels=channels)))
    at = AppTest.from_file(str(script), default_timeout=120).run()
    assert_no_exception(at)
    labels = [metric.label for metric in at.metric]
    assert "Test accuracy" in labels
    assert any("FLOPs ≈ 2 × MACs" in caption.value for caption in at.caption)
    assert any(e.type == "plotly_chart" for e in at.get("plotly_chart"))
    if model == "linear":
        assert any(sub.value == "Class templates" for sub in at.subheader)
    else:
        assert not any(sub.value == "Class templates" for sub in at.subheader)
    # Pick another test image: the fragment reruns without an exception.
    number = next(n for n in at.number_input if n.key and n.key.startswith("try.index"))
    number.set_value(5).run()
    assert_no_exception(at)
    # Switch to upload: nothing uploaded, no prediction, no error.
    radio = next(r for r in at.radio if r.key and r.key.startswith("try.source"))
    radio.set_value("Upload or camera").run()
    assert_no_exception(at)
    assert not at.error
    # Deselect every run: the curves give way to a hint.
    at.multiselect(key="runs.selected").set_value([]).run()
    assert_no_exception(at)
    assert any("Pick runs above" in caption.value for caption in at.caption)


def test_runs_table_has_one_row_per_run():
    from engine.models import LayerSummary, ModelConfig
    from engine.training.runs import History, Run
    from ui.results import file_stem, runs_table, summary_table

    run = Run(name="a/b", config={"optimizer": "sgd", "lr": 0.1, "batch_size": 4},
              model_config=ModelConfig("linear", 1, 2, 8), class_names=["x", "y"], dataset_title="T",
              model=torch.nn.Linear(1, 1), history=History(epoch=[1, 2], test_acc=0.5, total_seconds=1.234))
    table = runs_table({"a/b": run})
    assert table.loc[0, "epochs"] == 2 and table.loc[0, "test acc"] == 0.5 and table.loc[0, "seconds"] == 1.2
    assert file_stem("a/b: c") == "a_b_ c"
    layers = summary_table([LayerSummary("fc", "Linear", (2,), 10, 8), LayerSummary("act", "ReLU", (2,), 0, 0)])
    assert list(layers["layer"]) == ["fc", "act", "total"]
    assert layers.iloc[-1]["parameters"] == 10 and layers.iloc[-1]["MACs"] == 8


def test_position_similarity_and_head_maps_lay_out_one_tile_per_patch_and_per_head():
    from ui.figures import attention

    g = 3
    similarity = np.arange(g**4, dtype=float).reshape(g * g, g, g)  # (P, g, g)
    fig = attention.position_similarity(similarity)
    assert len(fig.data) == g * g
    np.testing.assert_array_equal(fig.data[g + 2].z, similarity[g + 2])  # tile (1, 2) is patch 1·g + 2
    heads = attention.head_maps(np.zeros((2, 4, g, g)), title="t")
    assert len(heads.data) == 8
    assert {a.text for a in heads.layout.annotations} >= {"layer 1", "layer 2", "head 1", "head 4"}
    for k in range(1, 9):  # every tile square: its y axis scaled to its x axis
        suffix = "" if k == 1 else str(k)
        assert heads.layout[f"yaxis{suffix}"].scaleanchor == f"x{suffix}"


def test_learning_curve_legend_sits_below_in_container_coordinates():
    from types import SimpleNamespace

    history = SimpleNamespace(epoch=[1, 2], train_loss=[1.0, 0.5], val_loss=[1.1, 0.6])
    legend = figures.learning_curves({"a": history}).layout.legend
    assert (legend.yref, legend.yanchor, legend.y) == ("container", "bottom", 0)


def test_perturbation_is_framed_so_white_pixels_show_on_a_light_page():
    from ui.figures.inside import FRAME_PX, FRAME_RGB, perturbation_rgb

    rgb = perturbation_rgb(torch.full((3, 4, 4), 0.1), 0.1, 8)  # +ε everywhere: all white inside
    assert rgb.shape == (8 + 2 * FRAME_PX, 8 + 2 * FRAME_PX, 3)
    assert tuple(rgb[0, 0]) == FRAME_RGB and (rgb[FRAME_PX:-FRAME_PX, FRAME_PX:-FRAME_PX] == 255).all()


def test_enlarged_map_repeats_whole_pixels():
    from ui.figures.inside import enlarged_map, viridis

    values = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    big = enlarged_map(values, 9)
    assert big.shape == (8, 8, 3)  # 9 // 2 = 4 pixels per cell
    np.testing.assert_array_equal(big[::4, ::4], viridis(values))


_CURVES_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from types import SimpleNamespace
import streamlit as st
from ui.train_panel import curves_figure

def history(epochs):
    return SimpleNamespace(epoch=list(range(1, epochs + 1)), train_loss=[1.0] * epochs, val_loss=[2.0] * epochs,
                           diverged_at=None, stopped_reason=None)

polls = st.session_state["polls"] = st.session_state.get("polls", 0) + 1
drawn = st.session_state.setdefault("drawn", [])
for runs in ({{"a": history(polls)}}, {{"b": history(2)}}):
    figure = curves_figure(runs, "loss")
    drawn.append((id(figure), list(figure.data[0].x)))
    st.plotly_chart(figure)
"""


def test_curves_figure_puts_a_polls_new_epochs_into_the_figure_it_drew_last(tmp_path):
    """A training job's live chart is redrawn every poll: the figure is refilled, not rebuilt (~15 ms)."""
    script = tmp_path / "curves_app.py"
    script.write_text(textwrap.dedent(_CURVES_SCRIPT.format(root=str(ROOT))))
    at = AppTest.from_file(str(script), default_timeout=60).run()
    at.run()
    assert_no_exception(at)
    (a1, x1), (b1, _), (a2, x2), (b2, _) = at.session_state["drawn"]
    assert a2 == a1 and b2 == b1 and a1 != b1  # one figure per set of runs, kept across reruns
    assert x1 == [1] and x2 == [1, 2]
