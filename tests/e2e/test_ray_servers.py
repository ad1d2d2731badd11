"""Two app servers sharing one Ray cluster for their jobs, as replicas behind a proxy would (docs/deploy.md):
a browser trains in Train Lab on each, at the same time, and each gets its own result."""

from __future__ import annotations

import time

import pytest

from engine.device import RAY_ADDRESS_ENV
from tests.e2e.conftest import _streamlit
from tests.e2e.test_browser import RUN_TIMEOUT_MS, assert_no_exception, open_and_wait, screenshot, wait_until_idle

pytestmark = pytest.mark.e2e
ray = pytest.importorskip("ray", reason="ray is not installed: pip install -r requirements-dev.txt")


@pytest.fixture
def ray_address(browser):
    """A Ray of the test's own with 2 CPUs; its address is what the servers are given."""
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.mark.timeout(900)
def test_two_app_servers_train_on_one_ray_cluster(browser, ray_address, tmp_path, monkeypatch, screenshots,
                                                   record_timing):
    monkeypatch.setenv(RAY_ADDRESS_ENV, ray_address)
    with _streamlit(tmp_path / "first.log") as first, _streamlit(tmp_path / "second.log") as second:
        contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(2)]
        pages = [context.new_page() for context in contexts]
        for page, server in zip(pages, (first, second)):
            page.set_default_timeout(RUN_TIMEOUT_MS)
            open_and_wait(page, f"{server.url}/train_lab")
            page.locator('[data-testid="stSidebar"]').get_by_text("Ray cluster: 1 worker, 2 CPUs").wait_for()
        started = time.monotonic()
        for page in pages:
            page.get_by_role("button", name="Train", exact=True).click()
        for name, page in zip(("first", "second"), pages):
            page.get_by_text("Test accuracy").first.wait_for(timeout=RUN_TIMEOUT_MS)
            wait_until_idle(page)
            assert_no_exception(page, f"train_lab on the {name} server")
            assert page.get_by_text("failed").count() == 0
            seconds = time.monotonic() - started
            record_timing(f"ray: two servers, default Train Lab training, {name} result {seconds:.1f} s")
        screenshot(pages[0], screenshots / "train_lab_on_ray.png")
        for context in contexts:
            context.close()
