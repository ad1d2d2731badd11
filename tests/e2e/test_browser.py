"""Browser tests: the real app in Chromium — home, every page in the sidebar, one training run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from engine.jobs import PIN_ENV
from ui.topics import TOPICS

pytestmark = pytest.mark.e2e


RUN_TIMEOUT_MS = 120_000
# The stApp element's own record of the connection and the script run ("initial" until the first
# run ends, then "running" / "notRunning" / …); Streamlit's own browser tests wait on it.
IDLE = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'


def wait_until_idle(page, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """Wait until the app is connected and no script run is going on or requested."""
    from playwright.sync_api import expect

    page.locator(IDLE).wait_for(state="attached", timeout=timeout_ms)
    # The "Running..." status widget fades out after the state changes; skeletons are elements
    # not drawn yet.
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=timeout_ms)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout_ms)


def open_and_wait(page, url: str) -> None:
    """A fresh load, so the run state starts at "initial" and "notRunning" means this page's run ended."""
    page.goto(url, wait_until="domcontentloaded")
    wait_until_idle(page)


def assert_no_exception(page, where: str) -> None:
    shown = page.locator(EXCEPTION)
    if shown.count():
        raise AssertionError(f"{where} shows an exception:\n" + "\n---\n".join(shown.all_inner_texts()))
    assert page.get_by_text("Page not found").count() == 0, f"{where}: Streamlit says 'Page not found'"


def screenshot(page, path: Path, max_height: int = 12_000) -> None:
    """A full-page screenshot. Streamlit scrolls inside stMain, not the document, so `full_page`
    alone gets one screen; grow the viewport to the content's height for the shot."""
    size = page.viewport_size
    height = page.locator('[data-testid="stMain"]').evaluate("main => main.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], height), max_height)})
    try:
        page.wait_for_timeout(300)  # let charts re-lay out to the new size
        page.screenshot(path=path, full_page=True)
    finally:
        page.set_viewport_size(size)


def page_name(url: str) -> str:
    return urlparse(url).path.strip("/") or "home"  # the default page's link is the bare base URL


def test_home_renders_title_and_topic_cards(page, streamlit_server, screenshots, record_timing):
    page.goto(streamlit_server.url, wait_until="domcontentloaded")
    main = page.locator('[data-testid="stMain"]')
    main.locator("h1", has_text="VisionExplorer").wait_for(timeout=RUN_TIMEOUT_MS)
    title_s = time.monotonic() - streamlit_server.launched
    wait_until_idle(page)
    idle_s = time.monotonic() - streamlit_server.launched
    record_timing(f"cold start: server healthy {streamlit_server.healthy_after_s:.1f} s, home title "
                  f"visible {title_s:.1f} s, home run finished {idle_s:.1f} s after launch")

    # A card is an innermost block (a bordered st.container) holding a topic's title and summary.
    blocks = main.locator('[data-testid="stVerticalBlock"]')
    cards = blocks.filter(has_not=page.locator('[data-testid="stVerticalBlock"]'))
    for topic in TOPICS:
        card = cards.filter(has_text=topic.title).filter(has_text=topic.summary[:40])
        assert card.count() == 1, f"{card.count()} topic cards for {topic.title!r}"
    assert_no_exception(page, "home")
    screenshot(page, screenshots / "home.png")


@pytest.mark.timeout(1800)  # every page, each up to RUN_TIMEOUT_MS, on two CPUs
def test_every_sidebar_page_runs_without_exception(page, streamlit_server, screenshots):
    open_and_wait(page, streamlit_server.url)
    nav = page.locator('[data-testid="stSidebarNav"]')
    more = nav.locator('[data-testid="stSidebarNavViewButton"]')  # "View more" in long navigations
    if more.count() and "more" in more.inner_text().lower():
        more.click()
    links = list(dict.fromkeys(a.get_attribute("href") for a in nav.locator("a").all()))
    assert len(links) >= 2, f"sidebar navigation lists {links}"

    for url in links:
        name = page_name(url)
        open_and_wait(page, url)
        assert_no_exception(page, f"page {name} ({url})")
        screenshot(page, screenshots / f"{name}.png")


def nav_labels(page) -> list[str]:
    """The sidebar's page names, without their icons' ligature text."""
    return [text.split("\n")[-1] for text in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]


# Every URL path the app has ever published: lessons, slides and shared links use them, so they never change.
PUBLISHED_PATHS = (
    "train_lab", "lessons", "conv_playground", "pooling", "receptive_field", "activations", "gradient_flow",
    "normalization", "preprocessing", "optimizers", "landscape", "losses", "minibatch", "feature_maps",
    "saliency", "robustness", "attention", "vit_inside", "cnn_vs_vit", "decision_boundaries", "backprop",
    "overfitting", "regularization", "augmentation", "data_pitfalls", "tuning", "architecture_gallery",
    "residual_learning", "classic_nets", "transfer_learning", "fine_tuning", "ensembles", "multitask",
)


def test_every_path_a_lesson_links_to_is_published():
    from ui.lessons import app_links, lesson_index

    linked = {path for lesson in lesson_index() for _, path, _ in app_links(lesson.body)}
    assert linked <= set(PUBLISHED_PATHS), f"lessons link to unpublished paths: {linked - set(PUBLISHED_PATHS)}"


@pytest.mark.timeout(1800)
def test_published_deep_links_open_their_pages_on_a_fresh_server(page, fresh_streamlit_server):
    """The first visitor of a new server may arrive by a link (a lesson's, a colleague's).

    Until some session has run app.py's st.navigation, Streamlit treats a `pages/` folder beside
    app.py as a legacy multipage app and runs the linked page on its own, without app.py's
    navigation and sidebar (https://docs.streamlit.io/develop/api-reference/navigation/st.navigation);
    that is why our pages live in app_pages/<group>/, each with its URL path set explicitly.
    """
    url_paths = {spec.url_path for topic in TOPICS for spec in topic.pages}
    assert set(PUBLISHED_PATHS) <= url_paths, f"published paths without a page: {set(PUBLISHED_PATHS) - url_paths}"
    headings: dict[str, str] = {}  # path -> the page's title (its h1)
    first_visit = None
    for path in PUBLISHED_PATHS:
        deep = f"{fresh_streamlit_server.url}/{path}"
        open_and_wait(page, deep)
        assert_no_exception(page, deep)
        assert urlparse(page.url).path.strip("/") == path, f"{deep} ended at {page.url}"
        headings[path] = page.locator('[data-testid="stMain"] h1').first.inner_text()
        first_visit = first_visit or nav_labels(page)
    open_and_wait(page, fresh_streamlit_server.url)
    assert first_visit == nav_labels(page), "a deep link as a server's first page shows another app"
    home = page.locator('[data-testid="stMain"] h1').first.inner_text()
    # Each link found a page of its own: not the home page, and no two links on one page.
    assert home not in headings.values() and len(set(headings.values())) == len(PUBLISHED_PATHS), headings


def test_train_lab_trains_with_defaults(page, streamlit_server, screenshots, record_timing):
    open_and_wait(page, f"{streamlit_server.url}/train_lab")
    assert_no_exception(page, "train_lab before training")
    started = time.monotonic()
    page.get_by_role("button", name="Train", exact=True).click()  # a material icon is not in the name
    page.get_by_text("Test accuracy").first.wait_for(timeout=RUN_TIMEOUT_MS)
    wait_until_idle(page)
    record_timing(f"train_lab: default training to 'Test accuracy' and idle {time.monotonic() - started:.1f} s")
    assert_no_exception(page, "train_lab after training")
    screenshot(page, screenshots / "train_lab_trained.png")
    if len(os.sched_getaffinity(0)) >= 2 and os.environ.get(PIN_ENV) != "0":
        server, workers = cpus_of_server_and_workers(streamlit_server.process.pid)
        assert server and workers and not server & workers, (server, workers)
        assert server | workers == os.sched_getaffinity(0)


def cpus_of_server_and_workers(pid: int) -> tuple[set[int], set[int]]:
    """The CPUs that every thread of the server `pid` may run on (one set for all, else the union), and
    those of every thread of its worker processes."""
    def threads_cpus(process: int) -> set[int]:
        return set().union(*(os.sched_getaffinity(int(t)) for t in os.listdir(f"/proc/{process}/task")))

    children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    workers = [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return threads_cpus(pid), set().union(*(threads_cpus(w) for w in workers))


def test_landscape_refines_with_one_click_after_a_change_of_plane(page, streamlit_server):
    """Issue 17: after a change of plane, "Refine" once needed two clicks."""
    open_and_wait(page, f"{streamlit_server.url}/landscape?res=5&n=64")
    page.get_by_role("button", name="Train a small CNN").first.click()
    page.get_by_text("Refine to 5×5").first.wait_for(timeout=RUN_TIMEOUT_MS)
    wait_until_idle(page)
    page.get_by_text("PCA of the training path").first.click()  # another plane: a new coarse grid first
    page.wait_for_timeout(1500)
    page.get_by_text("Refine to 5×5").first.wait_for(timeout=RUN_TIMEOUT_MS)
    wait_until_idle(page)
    assert page.get_by_text("Showing the coarse").count() == 1
    page.get_by_role("button", name="Refine to 5×5").first.click()
    page.get_by_text("Showing the coarse").wait_for(state="detached", timeout=RUN_TIMEOUT_MS)
    wait_until_idle(page)
    assert_no_exception(page, "landscape after refining")
