"""A classroom storm: N browser sessions press Train at once while one more keeps changing a control.

One server; N Playwright contexts (N = 8 by default) open the Train Lab with the default preset,
each types its own seed into the sidebar, then all press Train at (nearly) the same moment. One
more session keeps changing the Convolution page's first number control ("Out channels", up then
down) and times each change until its page is idle again. Each session is its own asyncio task,
so no session's waiting delays another's clock. Before the storm, one session trains alone (the
baseline). Prints: sessions that got a result of their own, one run alone, the time to each
session's result, the storm's wall time and the control's p50/p95. Targets (issue 12): first
result ≤ 1.5 × alone; the k-th ≤ k × alone ÷ slots × 1.2; storm ≤ N × alone; control p95 ≤ 1 s.

    python benchmarks/classroom.py [--sessions 8] [--slots 1] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from _server import CHROMIUM_ARGS, chromium_path, streamlit_server

IDLE = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'
TIMEOUT_MS = 300_000
BASE_SEED = 100


async def open_train_lab(browser, url: str, seed: int):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/train_lab", wait_until="domcontentloaded")
    await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)
    seed_box = page.get_by_label("Seed", exact=True).and_(page.locator("input"))
    await seed_box.fill(str(seed))
    await seed_box.press("Enter")
    await page.wait_for_timeout(300)
    await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)
    return context, page


async def train_and_wait(page, started: float) -> tuple[float, str]:
    """Press Train; (seconds from `started` until the test accuracy shows, that accuracy)."""
    await page.get_by_role("button", name="Train", exact=True).click()
    metric = page.locator('[data-testid="stMetric"]', has_text="Test accuracy").first
    await metric.wait_for(timeout=TIMEOUT_MS)
    return time.monotonic() - started, await metric.locator('[data-testid="stMetricValue"]').inner_text()


async def keep_changing(page, stop: asyncio.Event) -> list[float]:
    """Seconds from each change of the page's first number control until the page is idle again."""
    times = []
    while not stop.is_set():
        button = "stNumberInputStepUp" if len(times) % 2 == 0 else "stNumberInputStepDown"
        started = time.monotonic()
        await page.locator(f'[data-testid="stMain"] [data-testid="{button}"]').first.click()
        await page.wait_for_timeout(50)  # let the rerun start before waiting for idle
        await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)
        times.append(time.monotonic() - started)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def storm(url: str, sessions: int, chromium: str):
    from playwright.async_api import async_playwright  # a dev requirement; imported only here

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context, page = await open_train_lab(browser, url, BASE_SEED - 1)
        alone, _ = await train_and_wait(page, time.monotonic())
        await context.close()
        print(f"one run alone: {alone:.1f} s")

        opened = [await open_train_lab(browser, url, BASE_SEED + i) for i in range(sessions)]
        slider_context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        slider = await slider_context.new_page()
        await slider.goto(f"{url}/conv_playground", wait_until="domcontentloaded")
        await slider.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)

        stop = asyncio.Event()
        changing = asyncio.create_task(keep_changing(slider, stop))
        started = time.monotonic()
        results = await asyncio.gather(*(train_and_wait(page, started) for _, page in opened))
        wall = time.monotonic() - started
        stop.set()
        moves = await changing
        await browser.close()
    return alone, results, wall, moves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--slots", type=int, default=None, help="VISIONEXPLORER_SLOTS for the server")
    parser.add_argument("--chromium", default=None)
    args = parser.parse_args()
    env = {"VISIONEXPLORER_SLOTS": str(args.slots)} if args.slots else {}
    slots = args.slots or max(1, (os.cpu_count() or 2) // 2)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.sessions} sessions, {slots} slot(s)")
    with tempfile.TemporaryDirectory() as logs, streamlit_server(Path(logs) / "server.log", env) as (url, _, _):
        alone, results, wall, moves = asyncio.run(storm(url, args.sessions, chromium_path(args.chromium)))

    print(f"sessions with a result of their own: {len(results)} of {args.sessions} (test accuracy by seed: "
          + ", ".join(f"{BASE_SEED + i}: {value}" for i, (_, value) in enumerate(results)) + ")")
    times = sorted(t for t, _ in results)
    print("time to each result: " + " ".join(f"{t:.1f}" for t in times) + " s")
    for k, t in enumerate(times, start=1):
        bound = k * alone / slots * 1.2
        print(f"  result {k}: {t:.1f} s, target ≤ {bound:.1f} s{'' if t <= bound else ' MISSED'}")
    print(f"first result {times[0] / alone:.2f} × alone (target ≤ 1.5)")
    print(f"storm wall time {wall:.1f} s vs {len(results) * alone:.1f} s one after another (target: no slower)")
    print(f"control changes: {len(moves)}, p50 {statistics.median(moves):.2f} s, p95 {percentile(moves, 0.95):.2f} s "
          f"(target p95 ≤ 1 s); load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
