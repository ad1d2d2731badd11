"""Browser tests of presenter mode on a 1280×720 projector: everything a lecturer shows reads from the back.

Issue 17 found headline numbers *shrinking* (36 → 25 px) with their labels cut ("Test accur…"),
confusion-matrix numbers and bar labels at about 8 px, the Convolution page's formulas and plot
titles cut at the right edge, and page names in the sidebar cut. These tests turn presenter mode
on in the sidebar, move between pages through the sidebar (a reload would start a new session,
and presenter mode is the session's), and measure what the browser computed.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import RUN_TIMEOUT_MS, assert_no_exception, open_and_wait, screenshot, wait_until_idle

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1280, "height": 720}
MIN_METRIC_PX = 40  # presenter metric values: larger than a laptop's 36 px, never smaller
MIN_PLOT_TEXT_PX = 16
OVERFLOW_SLACK_PX = 4  # KaTeX's struts stick out a pixel or two of any formula
MIN_TABLE_ZOOM = 1.25  # st.dataframe draws 14 px text on a canvas: the root font size does not reach it
PAGES = ("conv_playground", "pooling", "receptive_field", "normalization", "regularization", "optimizers",
         "architecture_gallery")

# What the browser computed, for every metric, chart text, formula and page name on screen. Sizes are
# the text's own element (a metric's <p>, not its box: a rule on the <p> once made values small).
MEASURE = """() => {
  const px = e => parseFloat(getComputedStyle(e).fontSize);
  const cut = e => e.scrollWidth > e.clientWidth + 1;
  const withText = root => [root, ...root.querySelectorAll('*')].filter(
    e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()));
  const main = document.querySelector('[data-testid="stMain"]');
  const out = {metrics: [], plotText: [], katex: [], nav: [], mainOverflow: main.scrollWidth - main.clientWidth};
  for (const part of ['stMetricValue', 'stMetricLabel'])
    for (const m of main.querySelectorAll(`[data-testid="${part}"]`))
      out.metrics.push({part, text: m.innerText, sizes: withText(m).map(px),
                        cut: [m, ...m.querySelectorAll('*')].some(cut)});
  const meets = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  out.covered = [];
  for (const plot of main.querySelectorAll('.js-plotly-plot')) {
    const box = plot.getBoundingClientRect();
    for (const legend of plot.querySelectorAll('g.legend .bg'))
      for (const title of plot.querySelectorAll('text.xtitle, text.ytitle, text.gtitle'))
        if (title.textContent.trim() && meets(legend.getBoundingClientRect(), title.getBoundingClientRect()))
          out.covered.push(title.textContent.slice(0, 60));
    for (const t of plot.querySelectorAll('svg text')) {
      const r = t.getBoundingClientRect();
      if (!t.textContent.trim() || r.width === 0) continue;
      out.plotText.push({text: t.textContent.slice(0, 60), size: px(t),
                         outside: Math.max(box.left - r.left, r.right - box.right)});
    }
  }
  const right = main.getBoundingClientRect().right;
  out.tables = [...main.querySelectorAll('[data-testid="stDataFrame"]')].map(
    d => ({zoom: d.currentCSSZoom || 1, outside: d.getBoundingClientRect().right - right}));
  for (const k of main.querySelectorAll('.katex-display'))
    out.katex.push({text: k.innerText.slice(0, 60), overflow: k.scrollWidth - k.clientWidth});
  for (const e of document.querySelectorAll('[data-testid="stSidebarNav"] *'))
    if (e.getAttribute('data-testid') !== 'stIconMaterial' && e.innerText && e.innerText.trim() && cut(e))
      out.nav.push(e.innerText.slice(0, 60));
  return out;
}"""


def readability_problems(measured: dict) -> list[str]:
    """Everything on screen that a room could not read, or that is cut, in words."""
    problems = []
    for metric in measured["metrics"]:
        if metric["cut"]:
            problems.append(f"metric {metric['part']} {metric['text']!r} is cut")
        if metric["part"] == "stMetricValue" and min(metric["sizes"]) < MIN_METRIC_PX:
            problems.append(f"metric value {metric['text']!r} at {min(metric['sizes'])} px < {MIN_METRIC_PX}")
    small = [f"{t['text']!r} {t['size']} px" for t in measured["plotText"] if t["size"] < MIN_PLOT_TEXT_PX]
    if small:
        problems.append(f"{len(small)} chart texts under {MIN_PLOT_TEXT_PX} px, e.g. {small[:5]}")
    problems += [f"chart text {t['text']!r} runs {t['outside']:.0f} px out of its chart"
                 for t in measured["plotText"] if t["outside"] > OVERFLOW_SLACK_PX]
    problems += [f"formula {k['text']!r} is {k['overflow']} px wider than the page"
                 for k in measured["katex"] if k["overflow"] > OVERFLOW_SLACK_PX]
    problems += [f"a legend covers the title {text!r}" for text in measured.get("covered", [])]
    for table in measured.get("tables", []):
        if table["zoom"] < MIN_TABLE_ZOOM:
            problems.append(f"a table's text is drawn at {table['zoom']:.2f}× (under {MIN_TABLE_ZOOM}×)")
        if table["outside"] > OVERFLOW_SLACK_PX:
            problems.append(f"a table runs {table['outside']:.0f} px out of the page")
    problems += [f"sidebar name {name!r} is cut" for name in measured["nav"]]
    if measured["mainOverflow"] > 0:
        problems.append(f"the page scrolls sideways by {measured['mainOverflow']} px")
    return problems


def presenter_mode_on(page, url: str) -> None:
    page.set_viewport_size(PROJECTOR)
    open_and_wait(page, url)
    page.get_by_text("Presenter mode", exact=True).click()
    page.wait_for_timeout(300)
    wait_until_idle(page)


def go_to(page, url_path: str) -> None:
    """Open a page through the sidebar: the same session, so presenter mode stays on."""
    nav = page.locator('[data-testid="stSidebarNav"]')
    more = nav.locator('[data-testid="stSidebarNavViewButton"]')
    if more.count() and "more" in more.inner_text().lower():
        more.click()
    nav.locator(f'a[href$="/{url_path}"]').click()
    page.wait_for_url(f"**/{url_path}*")
    page.wait_for_timeout(300)
    wait_until_idle(page)


def check_readable(page, name: str, screenshots) -> dict:
    assert_no_exception(page, name)
    page.wait_for_timeout(500)  # plotly lays out its text after the script run ends
    measured = page.evaluate(MEASURE)
    screenshot(page, screenshots / f"presenter_{name}.png")
    problems = readability_problems(measured)
    assert not problems, f"{name} in presenter mode at 1280×720:\n" + "\n".join(problems)
    return measured


def test_readability_check_catches_what_issue_17_found():
    """The check itself: each defect found by hand is one it reports."""
    found = {"metrics": [{"part": "stMetricValue", "text": "98.3%", "sizes": [25.3], "cut": False},
                         {"part": "stMetricLabel", "text": "Test accuracy", "sizes": [25.3], "cut": True}],
             "plotText": [{"text": "35", "size": 8, "outside": 0}, {"text": "Loss (dashed", "size": 26, "outside": 40}],
             "katex": [{"text": "H_out", "overflow": 168}], "nav": ["Receptive field & output size"],
             "covered": ["epoch"], "mainOverflow": 0,
             "tables": [{"zoom": 1.0, "outside": 0}, {"zoom": 1.3, "outside": 346}]}  # not enlarged; zoomed too wide
    assert len(readability_problems(found)) == 9
    assert readability_problems({**found, "metrics": [], "plotText": [], "katex": [], "nav": [], "covered": [],
                                 "tables": [{"zoom": 1.3, "outside": -80}]}) == []


@pytest.mark.timeout(600)
def test_presenter_train_lab_after_training_is_readable(page, streamlit_server, screenshots):
    presenter_mode_on(page, f"{streamlit_server.url}/train_lab")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Test accuracy").first.wait_for(timeout=RUN_TIMEOUT_MS)
    wait_until_idle(page)
    measured = check_readable(page, "train_lab", screenshots)
    values = [m for m in measured["metrics"] if m["part"] == "stMetricValue"]
    assert len(values) >= 5, "the five headline metrics are on the page"
    # the confusion matrix's counts (heatmap cells) were what shrank to 8 px
    assert sum(t["text"].isdigit() for t in measured["plotText"]) >= 100, "a 10×10 confusion matrix with counts"


@pytest.mark.timeout(900)
def test_presenter_pages_are_readable(page, streamlit_server, screenshots):
    presenter_mode_on(page, streamlit_server.url)
    failures = []
    for url_path in PAGES:
        go_to(page, url_path)
        try:
            measured = check_readable(page, url_path, screenshots)
        except AssertionError as error:
            failures.append(str(error))
            continue
        if url_path == "conv_playground":
            assert len(measured["katex"]) >= 3 and measured["plotText"], "formulas and grids on Convolution"
        if url_path == "architecture_gallery":
            assert measured["tables"], "the gallery's layer table"
    assert not failures, "\n\n".join(failures)
