"""AppTests of the architecture gallery page, and its figures' layout: boxes that do not overlap, labels that do not
cover each other."""

import pytest

from engine.models import gallery
from tests.apptest_helpers import assert_no_exception, chart_text, randomize_widgets, run_page
from ui import gallery as blocks
from ui.figures import gallery as figs
from ui.figures.train import CHAR_WIDTH, LINE_HEIGHT, text_size

PAGE = "app_pages/architectures/gallery.py"


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture(scope="module")
def page():
    return run_page(PAGE, timeout=120)


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "densenet121", "lenet5", "vit_tiny"])
def test_choosing_a_network_shows_its_layers_and_totals(page, name):
    page.selectbox(key="gal.net").set_value(name).run()
    assert_no_exception(page, name)
    summary = gallery.describe(name)
    table = page.dataframe[0].value
    total, layers = table.iloc[-1], table.iloc[:-1]
    assert total["layer"] == "total" and total["parameters"] == summary.params and total["MACs"] == summary.macs
    assert layers["parameters"].sum() == summary.params and layers["MACs"].sum() == summary.macs
    assert len(layers) == len(summary.layers)
    shown = _metrics(page)
    assert shown["Parameters"] == figs.count(summary.params) and shown["MACs per image"] == figs.count(summary.macs)
    assert shown["ImageNet top-1"] == ("—" if summary.acc1 is None else f"{summary.acc1:.1f} %")
    assert f"{summary.title}: {figs.count(summary.params)} parameters" in chart_text(page)  # the diagram's title


def test_a_vit_says_its_receptive_field_is_the_whole_image(page):
    page.selectbox(key="gal.net").set_value("vit_b_16").run()
    assert _metrics(page)["Receptive field"] == "whole image"
    assert any("whole image: self-attention" in c.value for c in page.caption)
    assert page.dataframe[0].value.iloc[-1]["receptive field"] == "whole image"
    page.selectbox(key="gal.net").set_value("resnet18").run()
    assert _metrics(page)["Receptive field"] == "435 px"


def _lesson_links() -> list[dict]:
    from ui.lessons import app_links, lesson_by_slug

    return [query for _, path, query in app_links(lesson_by_slug("09_cnn_history").body) if path == "architecture_gallery"]


def test_the_lesson_links_open_the_views_they_promise():
    links = {query["preset"]: query for query in _lesson_links()}
    assert set(links) == {"timeline", "two_3x3", "googlenet"}
    opened = {}
    for preset, query in links.items():
        at = run_page(PAGE, query_params=query, timeout=120)
        assert not at.warning and not at.error, (preset, [w.value for w in at.warning], [e.value for e in at.error])
        opened[preset] = at
    timeline = chart_text(opened["timeline"])
    assert "top-5 error of the winners" in timeline and "human ≈ 5.1 %" in timeline and "ResNet: 3.57 %" in timeline
    assert "ImageNet top-1 against compute" in timeline and "ViT-B/16" in timeline
    overview = opened["timeline"].dataframe[0].value.set_index("network")
    assert len(overview) == len(gallery.names())
    assert overview.loc["AlexNet", "weights"] == "IMAGENET1K_V1"
    assert overview.loc["LeNet-5", "weights"].startswith("— (this app's")  # not a bare None
    two = _metrics(opened["two_3x3"])
    assert two["2 stacked 3×3: weights"] == "73,728" and two["One 5×5: weights"] == "102,400"  # the lesson's quiz
    googlenet = opened["googlenet"]
    assert googlenet.selectbox(key="gal.net").value == "googlenet"
    assert "Inception module" in [s.value for s in googlenet.subheader]
    assert "concatenate channels" in chart_text(googlenet) and "5×5 conv" in chart_text(googlenet)


@pytest.mark.parametrize("channels, stacked", [(128, 2), (3, 3), (512, 5)])
def test_two_3x3_numbers_follow_the_channel_count(channels, stacked):
    at = run_page(PAGE, query_params={"view": "stacks"})
    at.number_input(key="gal.channels").set_value(channels)
    at.number_input(key="gal.stacked").set_value(stacked).run()
    assert_no_exception(at)
    kernel = 2 * stacked + 1
    shown = _metrics(at)
    assert shown[f"{stacked} stacked 3×3: weights"] == f"{stacked * 9 * channels**2:,}"
    assert shown[f"One {kernel}×{kernel}: weights"] == f"{kernel**2 * channels**2:,}"
    assert shown["Fewer weights"] == f"{1 - 9 * stacked / kernel**2:.0%}"
    assert f"{channels}^2" in at.latex[0].value
    assert f"{stacked} stacked 3×3 convs: {stacked} ReLUs" in chart_text(at)


def test_building_blocks_are_drawn_with_their_formulas():
    at = run_page(PAGE, query_params={"view": "blocks"})
    assert [s.value for s in at.subheader] == [b.title for b in blocks.BLOCKS.values()]
    formulas = " ".join(l.value for l in at.latex)
    for part in (r"F(x) + x", r"H_\ell\big([x_0, x_1, \ldots, x_{\ell-1}]\big)", r"\sigma\big(W_2\,\delta(W_1 z)\big)",
                 r"s_c\, x_c", r"\operatorname{pool}(x)"):
        assert part in formulas
    assert "concatenate channels" in chart_text(at) and "squeeze: global avg pool" in chart_text(at)


@pytest.mark.parametrize("name, expected", [("vgg16", []), ("googlenet", ["inception"]), ("inception_v3", ["inception"]),
                                            ("resnet18", ["residual"]), ("resnet50", ["bottleneck"]),
                                            ("densenet121", ["dense"]), ("mobilenet_v3_small", ["residual", "se"]),
                                            ("densenet_mini", ["dense"]), ("inception_mini", ["inception"])])
def test_each_network_gets_the_blocks_it_is_built_from(name, expected):
    assert blocks.blocks_in(gallery.describe(name)) == expected


def test_random_widgets():
    at = run_page(PAGE, timeout=120)
    randomize_widgets(at, rounds=6, seed=5, timeout=120, allowed_errors=[])
    assert_no_exception(at)


# ---- the figures' layout ---------------------------------------------------------------------------------------------

def _boxes(fig) -> list[tuple[float, float, float, float, str]]:
    """Every box of a diagram in its pixel coordinates (x0, y0, x1, y1, text)."""
    found = []
    for note in fig.layout.annotations:
        if note.bgcolor and not note.showarrow:
            lines = note.text.replace("<b>", "").replace("</b>", "").split("<br>")
            w = max(map(len, lines)) * CHAR_WIDTH * note.font.size + 2 * figs.PAD
            h = len(lines) * LINE_HEIGHT * note.font.size + 2 * figs.PAD
            found.append((note.x - w / 2, note.y - h / 2, note.x + w / 2, note.y + h / 2, note.text))
    return found


@pytest.mark.parametrize("presenter", [False, True])
@pytest.mark.parametrize("block", list(blocks.BLOCKS))
def test_block_drawings_boxes_do_not_overlap_and_fit(block, presenter):
    fig = blocks.BLOCKS[block].draw(presenter=presenter)
    boxes = _boxes(fig)
    assert len(boxes) >= 5
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not figs._rect_overlap(a, b), (a[4], b[4])
    (x0, x1), (y1, y0) = fig.layout.xaxis.range, fig.layout.yaxis.range  # y runs down
    assert all(x0 <= b[0] and b[2] <= x1 and y0 <= b[1] and b[3] <= y1 for b in boxes)
    assert fig.layout.height >= y1 - y0  # one pixel per unit: the text sizes the layout assumed


def test_network_diagram_has_a_box_and_a_bar_per_block():
    summary = gallery.describe("resnet50")
    fig = figs.network_diagram(summary)
    texts = [b[4] for b in _boxes(fig)]
    assert texts[0] == "<b>input</b><br>3×224×224" and "<b>Bottleneck ×6</b><br>1024×14×14" in texts
    params, macs, field = (list(trace.x) for trace in fig.data)
    assert params == [b.params for b in summary.blocks] and macs == [b.macs for b in summary.blocks]
    assert field[-1] == 224 and fig.data[2].text[-1] == "whole image" and fig.data[2].text[2] == "35"


@pytest.mark.parametrize("presenter", [False, True])
@pytest.mark.parametrize("chart, width", [(figs.accuracy_vs_macs, figs.ACCURACY_PLOT_PX),
                                          (figs.params_vs_macs, figs.PARAMS_PLOT_PX)])
def test_scatter_labels_cover_no_other_label_and_stay_inside(chart, width, presenter):
    """At the plot size the labels were placed for, in pixels: every network named once, no two names overlap."""
    fig = chart(gallery.describe_all(), presenter=presenter)
    size, font = (width, fig.layout.height - figs.TITLES_PX), text_size(presenter)
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    rects = []
    for note in fig.layout.annotations:
        px, py = (note.x - x0) / (x1 - x0) * size[0], (1 - (note.y - y0) / (y1 - y0)) * size[1]
        dx, dy = (note.ax, note.ay) if note.showarrow else (note.xshift, -note.yshift)
        w, h = len(note.text) * CHAR_WIDTH * font, LINE_HEIGHT * font
        rects.append((px + dx - w / 2, py + dy - h / 2, px + dx + w / 2, py + dy + h / 2))
        assert 0 <= rects[-1][0] and rects[-1][2] <= size[0] and 0 <= rects[-1][1] and rects[-1][3] <= size[1], note.text
    assert sorted(n.text for n in fig.layout.annotations) == sorted(t for trace in fig.data for t in trace.text)
    assert not [(a, b) for i, a in enumerate(rects) for b in rects[i + 1:] if figs._rect_overlap(a, b)]
    assert sum(not n.showarrow for n in fig.layout.annotations) >= len(rects) // 2  # most sit beside their point
