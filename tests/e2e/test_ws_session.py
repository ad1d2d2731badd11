"""The classroom benchmark's lightweight sessions (benchmarks/ws_session.py) train as a browser does.

A websocket session speaks Streamlit's protocol without a browser, and keeps its training job's
fragment polling going as the browser's timers do; its result for a seed must be the browser's.
Through such sessions: a job that waits for a slot polls less often than one that starts at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks.ws_session import RESULT_METRICS, open_train_lab, run_names, train
from ui.jobs import POLL_S, QUEUED_POLL_S
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


def _slots(session) -> int:
    """The server's job slots, from the sidebar ("Jobs: 0 of 1 slot busy, 0 waiting")."""
    texts = [m.body for m in session.elements("markdown") if "slot" in m.body]
    return int(re.search(r"of (\d+) slots?", texts[0]).group(1))


async def _poll_intervals(url: str) -> tuple[list[float], float]:
    """The poll interval of jobs that start at once (one per slot), then of one that waits for a slot."""
    first = await open_train_lab(url, 1, query="ep=200", timeout=RUN_TIMEOUT_MS / 1000)
    sessions = [first] + [await open_train_lab(url, 2 + i, query="ep=200", timeout=RUN_TIMEOUT_MS / 1000)
                          for i in range(_slots(first))]  # one more than the slots: the last one waits
    try:
        for session in sessions:
            await session.click("Train")
            await session.wait_for(lambda s: s.polls, RUN_TIMEOUT_MS / 1000)
        return [next(iter(s.polls.values())) for s in sessions[:-1]], next(iter(sessions[-1].polls.values()))
    finally:
        for session in sessions:
            if session.element("button", "Cancel") is not None:
                await session.click("Cancel")
            await session.close()


def test_a_job_that_waits_for_a_slot_polls_less_often(streamlit_server):
    with ThreadPoolExecutor(1) as thread:
        running, waiting = thread.submit(asyncio.run, _poll_intervals(streamlit_server.url)).result()
    assert set(running) == {POLL_S} and waiting == QUEUED_POLL_S > POLL_S
