"""AppTests of the convolution pages: defaults, deep links, bad settings explained, random widgets, the quiz."""

import pytest

from engine.layers import receptive_field as rf
from ui.topics import page_file_for
from tests.apptest_helpers import assert_no_exception, chart_text, randomize_widgets, run_page

PLAYGROUND, POOLING, RF = "app_pages/convolution/conv_playground.py", "app_pages/convolution/pooling.py", "app_pages/convolution/receptive_field.py"
EDITORS = {"conv.cells.editor.7", "conv.keditor.3", "pool.cells.editor.7", "pool.mixer.luma"}


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def _latex(at) -> str:
    return " ".join(l.value for l in at.latex)


def test_playground_default_shows_a_real_conv_with_its_numbers():
    at = run_page(PLAYGROUND)
    assert _metric(at, "Output C×H×W") == "1×85×128"  # chelsea scaled to 128 wide, 3×3, padding 1
    assert _metric(at, "Parameters") == "28"  # 1 · 3 · 3² + 1
    assert "= 85" in _latex(at) and "= 128" in _latex(at)
    assert any("nn.Conv2d(3, 1, kernel_size=3, padding=1)" in c.value for c in at.code)
    assert any("nn.Conv2d gives" in c.value for c in at.caption)


def test_playground_stride_two_halves_the_map_and_shows_unvisited_rows():
    at = run_page(PLAYGROUND, query_params={"stride": "2", "src": "grid", "pad": "0"})
    assert _metric(at, "Output C×H×W") == "1×3×3"  # ⌊(7 − 3)/2⌋ + 1
    at = run_page(PLAYGROUND, query_params={"stride": "3", "src": "grid", "pad": "0"})
    assert _metric(at, "Output C×H×W") == "1×2×2"
    assert any("never read" in (p.proto.spec or "") for p in at.get("plotly_chart"))


def test_playground_window_sum_matches_the_conv_at_every_position():
    at = run_page(PLAYGROUND, query_params={"src": "grid", "w": "laplacian", "bias": "false"})
    for position in (0, 10, 48):
        at.slider(key="conv.pos").set_value(position).run()
        assert_no_exception(at)
        caption = next(c.value for c in at.caption if "nn.Conv2d gives" in c.value)
        total = next(l.value for l in at.latex if "y_{" in l.value)
        i, j = divmod(position, 7)
        assert f"at ({i}, {j})" in caption
        assert caption.split("gives ")[1].split(" at")[0] == total.rsplit("= ", 1)[1].strip("$\n ")


@pytest.mark.parametrize("query,words", [
    ({"groups": "2"}, "groups must divide in_channels"),
    ({"src": "grid", "k": "9", "pad": "0"}, "larger than the padded input"),
    ({"src": "grid", "mode": "reflect", "pad": "7"}, "reflect padding (7) must be smaller"),
    ({"stride": "2", "pad": "same"}, "padding='same' needs stride 1"),
    ({"tr": "true", "stride": "2", "op": "2"}, "output_padding (2) must be smaller"),
    ({"tr": "true", "mode": "circular"}, "only pads with zeros"),
    ({"w": "sobel_x", "k": "2"}, "kernel size must be ≥ 3"),
])
def test_playground_explains_what_pytorch_refuses(query, words):
    at = run_page(PLAYGROUND, query_params=query)
    assert any(words in e.value for e in at.error), [e.value for e in at.error]


def test_playground_transposed_upsamples():
    at = run_page(PLAYGROUND, query_params={"src": "grid", "tr": "true", "stride": "2", "pad": "1", "op": "1"})
    assert _metric(at, "Output C×H×W") == "1×14×14"  # (7 − 1)·2 − 2 + 2 + 1 + 1
    assert any("nn.ConvTranspose2d(1, 1, kernel_size=3, stride=2, padding=1, output_padding=1)" in c.value
               for c in at.code)


def test_playground_random_widgets():
    at = run_page(PLAYGROUND, query_params={"px": "64"}, timeout=90)
    randomize_widgets(at, rounds=6, seed=3, skip_keys={"global.seed", "conv.src", "conv.play"}, timeout=90)
    at.button_group(key="conv.src").set_value("grid").run()
    randomize_widgets(at, rounds=6, seed=4, skip_keys={"global.seed", "conv.src", "conv.play"}, timeout=90)


def test_playground_sample_and_play_toggle():
    at = run_page(PLAYGROUND, query_params={"src": "sample", "set": "digits", "w": "random", "oc": "8"})
    assert _metric(at, "Output C×H×W") == "8×8×8"
    at.toggle(key="conv.play").set_value(True).run()
    assert_no_exception(at, "after Play")
    assert at.slider(key="conv.pos").value == 1  # one step on


def test_pooling_shows_winners_and_pytorch_sizes():
    at = run_page(POOLING)
    specs = chart_text(at)
    assert "winners outlined" in specs
    assert "(1, 3, 3)" in specs  # 7×7 grid, 2×2 max pool, stride 2
    assert any("nn.MaxPool2d(kernel_size=2)" in c.value for c in at.code)
    at = run_page(POOLING, query_params={"ceil": "true"})
    assert "(1, 4, 4)" in chart_text(at)


def test_pooling_refuses_padding_over_half_the_kernel():
    at = run_page(POOLING, query_params={"k": "2", "pad": "2"})
    assert any("at most half the kernel size" in e.value for e in at.error)


def test_pooling_random_widgets():
    at = run_page(POOLING, timeout=90)
    randomize_widgets(at, rounds=4, seed=5, skip_keys={"global.seed", "pool.src"}, timeout=90)
    at.button_group(key="pool.src").set_value("photo").run()
    randomize_widgets(at, rounds=3, seed=6, skip_keys={"global.seed", "pool.src"}, timeout=90)


def test_receptive_field_table_and_deep_link():
    at = run_page(RF, query_params={"layers": "c3,c3d2,c3d4", "n": "32"})
    table = next(d.value for d in at.dataframe if "field" in d.value.columns)
    assert table["field"].tolist() == [1, 3, 7, 15]
    assert table["size"].tolist() == [32, 30, 26, 18]
    at = run_page(RF, query_params={"layers": "c3p1,c9", "n": "8"})
    assert any("layer 2:" in e.value and "larger than the padded input" in e.value for e in at.error)
    bad = run_page(RF, query_params={"layers": "x3"})
    assert any("Ignored ?layers=x3" in w.value for w in bad.warning)


def test_receptive_field_random_widgets():
    at = run_page(RF, timeout=90)
    randomize_widgets(at, rounds=4, seed=7, skip_keys={"global.seed"}, timeout=90)


def test_output_size_quiz_right_and_wrong():
    at = run_page(RF, query_params={"q": "5"})
    question = rf.random_question(5)
    at.number_input(key="rf.answer").set_value(question.answer + 1)
    at.button(key="rf.check").click().run()
    assert any("Not quite" in e.value for e in at.error)
    at.number_input(key="rf.answer").set_value(question.answer)
    at.button(key="rf.check").click().run()
    assert any("Correct" in s.value for s in at.success)
    at.button(key="rf.new").click().run()
    assert_no_exception(at)
    assert at.session_state["rf.q"] == 6 and at.number_input(key="rf.answer").value is None


def test_every_lesson_link_opens_its_page_cleanly():
    from ui.lessons import app_links, lesson_by_slug

    for label, path, query in app_links(lesson_by_slug("02_convolution").body):
        at = run_page(page_file_for(path), query_params=query)
        assert not at.warning and not at.error, (label, [w.value for w in at.warning], [e.value for e in at.error])


def test_conv_figures_are_valid_plotly():
    """The builders skip plotly's validation for speed; validate what they build here."""
    import numpy as np
    import plotly.graph_objects as go

    from ui.figures import conv as figs

    grid = np.arange(20.0).reshape(4, 5) - 7
    built = [figs.number_grid(grid, title="t", window=[(0, 0)], padding=(1, 2), winners=[(1, 1)]),
             figs.products_grid(np.ones((3, 3)), grid[:3, :3], grid[:3, :3], 3.0),
             figs.footprint(grid[:3, :3], 2), figs.coverage_bars(np.array([1, 1, 0]), 0, 3),
             figs.receptive_field_growth(["a", "b"], [1, 3], [1, 1]),
             figs.image_with_box(np.zeros((8, 8, 3), np.uint8), (-1, 3, 0, 4)),
             figs.mixing_matrix(grid[:2, :3], ["R", "G", "B"])]
    for fig in built:
        go.Figure(fig.to_dict())  # raises on any invalid property
    assert built[0].layout.yaxis.ticktext[0] == "-1" and built[0].data[0].zmin == -12


def test_playground_uses_the_edited_grid_and_kernel():
    import numpy as np
    import pandas as pd

    grid = pd.DataFrame(np.arange(25).reshape(5, 5), columns=[str(c) for c in range(5)])
    ones = pd.DataFrame(np.ones((3, 3)), columns=["0", "1", "2"])
    seeded = {"conv.cells.base.5": grid, "conv.kbase.3": ones}
    at = run_page(PLAYGROUND, query_params={"src": "grid", "grid": "5", "w": "edit", "pad": "0", "bias": "false"},
                  session_state=seeded)
    assert _metric(at, "Output C×H×W") == "1×3×3"
    caption = next(c.value for c in at.caption if "nn.Conv2d gives" in c.value)
    assert caption.startswith("nn.Conv2d gives 54 at (0, 0)")  # 0+1+2 + 5+6+7 + 10+11+12
    at.slider(key="conv.pos").set_value(8).run()
    caption = next(c.value for c in at.caption if "nn.Conv2d gives" in c.value)
    assert caption.startswith("nn.Conv2d gives 162 at (2, 2)")  # the 3×3 block around 18: 9 · 18


def test_playground_step_through_that_does_not_fit_is_a_message():
    """A photo takes kernel 6 at dilation 5 (span 26), the 7×7 step-through grid does not: say so, go on."""
    at = run_page(PLAYGROUND, query_params={"k": "6", "dil": "5", "pad": "0", "w": "random"})
    assert _metric(at, "Output C×H×W") == "1×60×103"  # (85 − 26) + 1, (128 − 26) + 1
    assert any("On the (7, 7) grid" in e.value and "larger than the padded input" in e.value for e in at.error)
    at.number_input(key="conv.dil").set_value(1).run()
    assert_no_exception(at)
    assert not at.error and any("nn.Conv2d gives" in c.value for c in at.caption)


def _png(side: int = 16) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.arange(side * side).reshape(side, side) % 256).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_playground_keeps_the_settings_through_rejected_uploads():
    """The layer's controls are not drawn while no usable image is uploaded; they come back as the user left them."""
    from tests.apptest_helpers import shown_by_browser

    at = run_page(PLAYGROUND)
    at.number_input(key="conv.k").set_value(5)
    at.selectbox(key="conv.pad").set_value("2")
    at.selectbox(key="conv.w").set_value("laplacian").run()
    at.button_group(key="conv.src").set_value("upload").run()
    rejected = [("a.png", b"not an image"), ("b.png", b"\x89PNG broken"), ("c.png", b"")]
    for uploads in (1, 3):  # hidden for 2 runs (with the switch to Upload), then for 3: Streamlit's clean-up of
        for name, content in rejected[:uploads] + [("d.png", _png())]:  # undrawn widgets goes in a two-run rhythm
            at.file_uploader(key="conv.upload.file").set_value((name, content, "image/png")).run()
            assert_no_exception(at, f"after uploading {name}")
        assert not at.error, [e.value for e in at.error]
        assert shown_by_browser(at.number_input(key="conv.k")) == 5
        assert shown_by_browser(at.selectbox(key="conv.pad")) == "2"
        assert shown_by_browser(at.selectbox(key="conv.w")) == at.selectbox(key="conv.w").format_func("laplacian")
    assert at.query_params["k"] == "5" and at.query_params["w"] == "laplacian"


def test_playground_settings_survive_a_visit_to_another_page():
    from tests.apptest_helpers import shown_by_browser

    at = run_page(PLAYGROUND)
    at.number_input(key="conv.k").set_value(5).run()
    at.query_params.clear()  # a page link carries no parameters: only the kept copy knows the kernel
    at.switch_page(RF).run()
    assert "conv.k" not in at.session_state  # Streamlit dropped the undrawn widget's state
    at.switch_page(PLAYGROUND).run()
    assert_no_exception(at)
    assert shown_by_browser(at.number_input(key="conv.k")) == 5 and _metric(at, "Output C×H×W") == "1×83×126"


def test_unread_rows_caption_names_the_rule_that_applies():
    """Issue 17: stride 2, dilation 2, padding 2 on the 85-row photo leaves every odd row, not the last ones."""
    at = run_page(PLAYGROUND, query_params={"stride": "2", "dil": "2", "pad": "2"})
    assert_no_exception(at)
    captions = " ".join(c.value for c in at.caption)
    assert "share the factor 2" in captions and "Rows 1, 3, 5" in captions and "(orange)" not in captions
