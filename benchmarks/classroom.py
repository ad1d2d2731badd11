"""A classroom storm: N browser sessions press Train at once while one more moves a slider.

One server; N Playwright contexts (N = 8 by default) open the Train Lab with the default preset,
each types its own seed into the sidebar, then all press Train at (nearly) the same moment. One
more session keeps moving a slider on the Convolution page and times each move until its page is
idle again. Before the storm, one session trains alone (the baseline). Prints: sessions that got a
result of their own, one run alone, the time to each session's result, the storm's wall time and
the slider's p50/p95. Targets (issue 12): first result ≤ 1.5 × alone; the k-th ≤ k × alone ÷ slots
× 1.2; storm ≤ N × alone; slider p95 ≤ 1 s.

    python benchmarks/classroom.py [--sessions 8] [--slots 1] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _server import CHROMIUM_ARGS, chromium_path, streamlit_server

IDLE = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'
TIMEOUT_MS = 300_000
BASE_SEED = 100


def open_train_lab(browser, url: str, seed: int):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/train_lab", wait_until="domcontentloaded")
    page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)
    seed_box = page.get_by_label("Seed", exact=True).and_(page.locator("input"))
    seed_box.fill(str(seed))
    seed_box.press("Enter")
    page.wait_for_timeout(300)
    page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)
    return context, page


def press_train(page) -> None:
    page.get_by_role("button", name="Train", exact=True).click()


def result(page) -> str | None:
    """The Test accuracy metric's value once it is shown, else None."""
    metric = page.locator('[data-testid="stMetric"]', has_text="Test accuracy")
    if not metric.count():
        return None
    return metric.first.locator('[data-testid="stMetricValue"]').inner_text()


class ControlMover:
    """Changes the page's first number control (the Convolution page's "Out channels": up, then
    down) and times each change until the page is idle again, without blocking the caller."""

    def __init__(self, page):
        self.page, self.times, self._clicked = page, [], None

    def step(self) -> None:
        if self._clicked is None:
            button = "stNumberInputStepUp" if len(self.times) % 2 == 0 else "stNumberInputStepDown"
            self.page.locator(f'[data-testid="stMain"] [data-testid="{button}"]').first.click()
            self._clicked = time.monotonic()
        elif time.monotonic() - self._clicked > 0.05 and self.page.locator(IDLE).count():
            self.times.append(time.monotonic() - self._clicked)
            self._clicked = None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--slots", type=int, default=None, help="VISIONEXPLORER_SLOTS for the server")
    parser.add_argument("--chromium", default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright  # a dev requirement; imported only here

    env = {"VISIONEXPLORER_SLOTS": str(args.slots)} if args.slots else {}
    slots = args.slots or max(1, (os.cpu_count() or 2) // 2)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.sessions} sessions, {slots} slot(s)")
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        browser = playwright.chromium.launch(executable_path=chromium_path(args.chromium), headless=True,
                                             args=CHROMIUM_ARGS)
        with streamlit_server(Path(logs) / "server.log", env) as (url, _, _):
            context, page = open_train_lab(browser, url, BASE_SEED - 1)
            started = time.monotonic()
            press_train(page)
            page.locator('[data-testid="stMetric"]', has_text="Test accuracy").first.wait_for(timeout=TIMEOUT_MS)
            alone = time.monotonic() - started
            context.close()
            print(f"one run alone: {alone:.1f} s")

            storm = [open_train_lab(browser, url, BASE_SEED + i) for i in range(args.sessions)]
            slider_context = browser.new_context(viewport={"width": 1400, "height": 1000})
            slider = slider_context.new_page()
            slider.goto(f"{url}/conv_playground", wait_until="domcontentloaded")
            slider.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)

            started = time.monotonic()
            for _, train_page in storm:
                press_train(train_page)
            finished: dict[int, tuple[float, str]] = {}
            mover = ControlMover(slider)
            while len(finished) < len(storm) and time.monotonic() - started < TIMEOUT_MS / 1000:
                mover.step()
                for i, (_, train_page) in enumerate(storm):
                    if i not in finished and (value := result(train_page)) is not None:
                        finished[i] = (time.monotonic() - started, value)
                time.sleep(0.05)
            wall = time.monotonic() - started
            for context_, _ in storm:
                context_.close()
            slider_context.close()
        browser.close()

    times = sorted(t for t, _ in finished.values())
    print(f"sessions with a result of their own: {len(finished)} of {len(storm)} "
          f"(test accuracy by seed: {', '.join(f'{BASE_SEED + i}: {v}' for i, (_, v) in sorted(finished.items()))})")
    print("time to each result: " + " ".join(f"{t:.1f}" for t in times) + " s")
    for k, t in enumerate(times, start=1):
        bound = k * alone / slots * 1.2
        print(f"  result {k}: {t:.1f} s, target ≤ {bound:.1f} s{'' if t <= bound else ' MISSED'}")
    print(f"first result {times[0] / alone:.2f} × alone (target ≤ 1.5)" if times else "no result")
    print(f"storm wall time {wall:.1f} s vs {len(storm) * alone:.1f} s one after another (target: no slower)")
    moves = mover.times
    print(f"slider: {len(moves)} moves, p50 {statistics.median(moves):.2f} s, p95 {percentile(moves, 0.95):.2f} s "
          f"(target p95 ≤ 1 s); load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
