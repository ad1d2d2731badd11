"""Four students press Train at the same moment (issue 18): each gets a result, and sees only their own run."""

from __future__ import annotations

import pytest

from tests.e2e.test_browser import RUN_TIMEOUT_MS, assert_no_exception, open_and_wait, wait_until_idle

pytestmark = pytest.mark.e2e

LEARNING_RATES = ("0.004", "0.005", "0.006", "0.007")  # one per session: each run's name carries its own


@pytest.mark.timeout(900)
def test_four_simultaneous_sessions_each_see_only_their_own_run(browser, streamlit_server):
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in LEARNING_RATES]
    try:
        pages = [context.new_page() for context in contexts]
        for page, lr in zip(pages, LEARNING_RATES):
            page.set_default_timeout(RUN_TIMEOUT_MS)
            open_and_wait(page, f"{streamlit_server.url}/train_lab?lr={lr}&ep=5")
        for page in pages:  # as close to the same moment as one driver gets
            page.get_by_role("button", name="Train", exact=True).click()
        for page, lr in zip(pages, LEARNING_RATES):
            page.get_by_text("Test accuracy").first.wait_for(timeout=RUN_TIMEOUT_MS)
            wait_until_idle(page)
            assert_no_exception(page, f"train_lab (lr {lr}) after training")
            # "Runs to compare" holds a chip per run of this session
            chips = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare") \
                .locator(".react-aria-ComboBox [data-tag]").all_inner_texts()
            assert len(chips) == 1 and f"(lr {float(lr):g})" in chips[0], chips
    finally:
        for context in contexts:
            context.close()
