"""The classroom benchmark's lightweight sessions (benchmarks/ws_session.py) train as a browser does.

A websocket session speaks Streamlit's protocol without a browser, and keeps its training job's
fragment polling going as the browser's timers do; its result for a seed must be the browser's.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks.ws_session import RESULT_METRICS, open_train_lab, run_names, train
from tests.e2e.test_browser import RUN_TIMEOUT_MS, assert_no_exception, open_and_wait, wait_until_idle

pytestmark = pytest.mark.e2e

SHORT = "ep=3"  # three epochs of the default digits recipe: one short training each
SEED = 11


def _in_a_browser(page, url: str) -> dict[str, str]:
    open_and_wait(page, f"{url}/train_lab?{SHORT}")
    seed_box = page.get_by_label("Seed", exact=True).and_(page.locator("input"))
    seed_box.fill(str(SEED))
    seed_box.press("Enter")
    page.wait_for_timeout(300)  # let the rerun start before waiting for idle
    wait_until_idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(RESULT_METRICS[0]).first.wait_for(timeout=RUN_TIMEOUT_MS)
    wait_until_idle(page)
    assert_no_exception(page, "train_lab after training")
    values = {}
    for label in RESULT_METRICS:
        metric = page.locator('[data-testid="stMetric"]', has_text=label).first
        values[label] = metric.locator('[data-testid="stMetricValue"]').inner_text()
    return values


async def _lightweight(url: str) -> tuple[dict[str, str], list[str], int]:
    session = await open_train_lab(url, SEED, query=SHORT, timeout=RUN_TIMEOUT_MS / 1000)
    try:
        _, values = await train(session, time.monotonic(), timeout=RUN_TIMEOUT_MS / 1000)
        return values, run_names(session), session.auto_reruns
    finally:
        await session.close()


def test_websocket_session_gets_the_browsers_result_for_a_seed(page, streamlit_server):
    in_browser = _in_a_browser(page, streamlit_server.url)
    # Its own thread: Playwright's sync API owns this thread's event loop.
    with ThreadPoolExecutor(1) as thread:
        lightweight, names, polls = thread.submit(asyncio.run, _lightweight(streamlit_server.url)).result()
    assert lightweight == in_browser
    assert in_browser["Epochs"] == "3"
    assert len(names) == 1, f"the session sees runs that are not its own: {names}"
    # The result arrives only through the job fragment's timed reruns (the last one reruns the page).
    assert polls >= 1
