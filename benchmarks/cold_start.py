"""Cold start: seconds from launching `streamlit run app.py` until the home page's title is visible.

Each repeat starts a fresh server on a free port, waits for its health endpoint, opens the home
page in a new Chromium context (no cache) and waits for the "VisionExplorer" heading. The clock
starts just before the server process is spawned; Chromium itself is launched once, beforehand,
and is not counted. Prints every repeat (health and title times) and the median. Target: ≤ 8 s.

    python benchmarks/cold_start.py [--repeats 3] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _server import CHROMIUM_ARGS, TIMEOUT_S, chromium_path, streamlit_server

TARGET_S = 8.0


def one_start(browser, log_dir: Path, index: int) -> tuple[float, float]:
    """(seconds until healthy, seconds until the title is visible), both from process start."""
    with streamlit_server(log_dir / f"server{index}.log") as (url, healthy, started):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.goto(f"{url}/", timeout=TIMEOUT_S * 1000)
            page.locator("h1", has_text="VisionExplorer").first.wait_for(state="visible", timeout=TIMEOUT_S * 1000)
            return healthy, time.monotonic() - started
        finally:
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chromium", default=None, help="default: $CHROMIUM_PATH or /usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright  # a dev requirement; imported only here

    chromium = chromium_path(args.chromium)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; Chromium {chromium}; "
          f"{args.repeats} fresh servers")
    titles = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            for i in range(args.repeats):
                healthy, title = one_start(browser, Path(logs), i)
                titles.append(title)
                print(f"  start {i + 1}: healthy after {healthy:.2f} s, title visible after {title:.2f} s")
        finally:
            browser.close()
    median = statistics.median(titles)
    print(f"cold start, median of {len(titles)}: {median:.2f} s until the title is visible "
          f"(target ≤ {TARGET_S:.0f} s: {'met' if median <= TARGET_S else 'MISSED'}); load average now "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
