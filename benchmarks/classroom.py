"""A classroom storm: N sessions press Train at once while one more keeps changing a control.

One server; N sessions (30 by default) open the Train Lab with its default preset, each types its
own seed into the sidebar, then all press Train at (nearly) the same moment. K of them (--browsers,
2 by default) are Playwright contexts in one headless Chromium; the rest are lightweight websocket
sessions (ws_session.py: Streamlit's own protocol without a browser, the job fragment's timed polls
included; tests/e2e/test_ws_session.py checks that one gets a browser's result). One more browser
keeps changing the Convolution page's "Out channels" (up, then down; --control-pause between
changes) and times each change until the page shows the new output shape and is idle: what a
student on another page feels. A session's result is the test accuracy of its ended job (a rerun
while the job runs would show its first epochs). Each session is its own asyncio task, so no
session's waiting delays another's clock.

In a classroom the browsers run on the students' machines. Here they share the server's 2 CPUs,
and with the kernel's autogroups Chromium's session gets a CPU of its own whatever its nice value:
measured, three tabs took 46 % of both CPUs and the job worker, runnable all along, got half of
one. So the browsers' scheduler group runs at --browser-nice 10 (they get what the server and its
workers leave); --browser-nice 0 shows the machine shared equally.

Before the storm, one browser run warms the server and its workers up (not counted); then each
seed trains alone in a websocket session, one after another: the result each seed gives alone,
one run alone (their median) and the runs one after another (their sum).

Prints: every session's result against its seed's alone, that no session has a run it did not
train, the time to the first, median and last result and to each k-th against its bound, the
storm's wall time against the runs one after another, the control's p50/p95, the peak resident
memory of the server and of its workers, and each part's share of the CPUs (other processes'
included) during each phase. Targets (issues 12 and 18): first result ≤ 1.5 × alone; the k-th ≤
k × alone ÷ slots × 1.2; storm ≤ the runs one after another; control p95 ≤ 1 s.

    python benchmarks/classroom.py [--sessions 30] [--browsers 2] [--slots N] [--ray] [--browser-nice 10]
                                   [--control-pause 0] [--unpinned] [--chromium PATH]

--ray runs the jobs on a local Ray (VISIONEXPLORER_RAY_ADDRESS=local: the server starts one with a
worker per CPU, 2 here) instead of the server's own worker processes. --unpinned lets the server's
workers run on any CPU (VISIONEXPLORER_PIN_WORKERS=0; by default they keep to CPUs of their own when
one is left for the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from playwright.async_api import async_playwright, expect  # requirements-dev.txt

from _procs import TreeMeter, allowed_cpus, child_pid, descendants, renice_other_autogroups
from _server import CHROMIUM_ARGS, chromium_path, streamlit_server
from ws_session import RESULT_METRICS, open_train_lab, run_names, train

IDLE = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'
TIMEOUT_S = 600
BASE_SEED = 100


# ---- browser sessions -------------------------------------------------------------------------------
async def open_browser_train_lab(browser, url: str, seed: int):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/train_lab", wait_until="domcontentloaded")
    await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_S * 1000)
    seed_box = page.get_by_label("Seed", exact=True).and_(page.locator("input"))
    await seed_box.fill(str(seed))
    await seed_box.press("Enter")
    await page.wait_for_timeout(300)
    await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_S * 1000)
    return context, page


async def browser_train(page, started: float) -> tuple[float, dict[str, str]]:
    """Press Train; (seconds from `started` until the test accuracy of the ended job shows, the result's
    metrics). While the job runs (its Cancel button shows), a rerun of the page shows its first epochs."""
    await page.get_by_role("button", name="Train", exact=True).click()
    metric = page.locator('[data-testid="stMetric"]', has_text=RESULT_METRICS[0]).first
    await metric.wait_for(timeout=TIMEOUT_S * 1000)
    await expect(page.get_by_role("button", name="Cancel")).to_have_count(0, timeout=TIMEOUT_S * 1000)
    seconds = time.monotonic() - started
    await page.wait_for_timeout(300)
    await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_S * 1000)
    values = {}
    for label in RESULT_METRICS:
        shown = page.locator('[data-testid="stMetric"]', has_text=label).first
        values[label] = await shown.locator('[data-testid="stMetricValue"]').inner_text()
    return seconds, values


async def browser_run_names(page) -> list[str]:
    """The options of the Train Lab's "Run" picker (opened, read, closed)."""
    picker = page.locator('[data-testid="stSelectbox"]', has_text="Run").first
    await picker.click()
    options = page.get_by_role("option")
    await options.first.wait_for(timeout=10_000)
    names = await options.all_inner_texts()
    await page.keyboard.press("Escape")
    return names


async def keep_changing(page, stop: asyncio.Event, pause: float) -> list[float]:
    """Seconds from each change of "Out channels" until the page shows the new output shape and is idle;
    `pause` seconds between one change's end and the next.

    The new shape proves that the change's run started: the page's run state alone says "notRunning"
    until the server's status message arrives, so waiting on it could end before the run began.
    """
    times = []
    shape = page.locator('[data-testid="stMetric"]', has_text="Output C×H×W")
    shape = shape.locator('[data-testid="stMetricValue"]')
    while not stop.is_set():
        button = "stNumberInputStepUp" if len(times) % 2 == 0 else "stNumberInputStepDown"
        before = await shape.inner_text()
        started = time.monotonic()
        step = page.locator(f'[data-testid="stMain"] [data-testid="{button}"]').first
        await step.click(timeout=TIMEOUT_S * 1000)
        await expect(shape).not_to_have_text(before, timeout=TIMEOUT_S * 1000)
        await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_S * 1000)
        times.append(time.monotonic() - started)
        await asyncio.sleep(pause)
    return times


# ---- the phases -------------------------------------------------------------------------------------
async def alone(url: str, seeds: list[int]) -> dict[int, tuple[float, dict[str, str]]]:
    """Each seed trained alone, one after another: {seed: (seconds, metrics)}."""
    results = {}
    for seed in seeds:
        session = await open_train_lab(url, seed, timeout=TIMEOUT_S)
        try:
            results[seed] = await train(session, time.monotonic(), timeout=TIMEOUT_S)
        finally:
            await session.close()
    return results


async def storm(browser, url: str, seeds: list[int], browsers: int, pause: float):
    """All sessions press Train at once while the control changes; (results, wall, moves, own runs)."""
    in_browser = [await open_browser_train_lab(browser, url, seed) for seed in seeds[:browsers]]
    lightweight = list(await asyncio.gather(*(open_train_lab(url, seed, timeout=TIMEOUT_S)
                                              for seed in seeds[browsers:])))
    control_context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    control = await control_context.new_page()
    await control.goto(f"{url}/conv_playground", wait_until="domcontentloaded")
    await control.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_S * 1000)

    stop = asyncio.Event()
    changing = asyncio.create_task(keep_changing(control, stop, pause))
    started = time.monotonic()
    results = await asyncio.gather(*(browser_train(page, started) for _, page in in_browser),
                                   *(train(session, started, timeout=TIMEOUT_S) for session in lightweight))
    wall = time.monotonic() - started
    stop.set()
    moves = await changing
    names = [await browser_run_names(page) for _, page in in_browser] + [run_names(s) for s in lightweight]
    for session in lightweight:
        await session.close()
    for context, _ in in_browser:
        await context.close()
    await control_context.close()
    return results, wall, moves, names


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def role_of(server_pid: int):
    def role(pid: int, cmdline: str, ancestors: list[int]) -> str:
        if pid == server_pid:
            return "server"
        if server_pid in ancestors:
            return "Ray services" if ("ray" in cmdline and "ray::" not in cmdline) else "workers"
        return "browsers" if "chrom" in cmdline else "benchmark"
    return role


def describe(meter: TreeMeter, phase: str) -> str:
    shares = meter.cpu_share()
    parts = ", ".join(f"{'other processes' if role == 'others' else role} {share:.0%}"
                      for role, share in sorted(shares.items(), key=lambda kv: -kv[1]) if share >= 0.005)
    return f"CPU share during {phase} (of both CPUs): {parts}"


async def run(url: str, server_pid: int, args, slots: int) -> None:
    seeds = [BASE_SEED + i for i in range(args.sessions)]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(args.chromium), headless=True,
                                                   args=CHROMIUM_ARGS)
        if args.browser_nice:
            groups = renice_other_autogroups(descendants("chrom"), args.browser_nice)
            print(f"browsers' scheduler group(s) at niceness {args.browser_nice}: {groups}")
        context, page = await open_browser_train_lab(browser, url, BASE_SEED - 1)
        warm_up, _ = await browser_train(page, time.monotonic())
        await context.close()
        print(f"warm-up run in a browser (not counted): {warm_up:.1f} s", flush=True)
        workers = descendants("spawn_main")  # the server's worker processes (multiprocessing's spawn)
        print(f"CPUs: server {allowed_cpus(server_pid)}, workers "
              + (", ".join(allowed_cpus(pid) for pid in workers) or "none here"), flush=True)

        with TreeMeter(role_of(server_pid)) as alone_meter:
            reference = await alone(url, seeds)
        times = [t for t, _ in reference.values()]
        one, sequential = statistics.median(times), sum(times)
        print(f"each seed alone, one after another: {sequential:.1f} s in all; one run alone: median {one:.1f} s "
              f"(range {min(times):.1f}–{max(times):.1f} s)")
        print(describe(alone_meter, "the runs alone"), flush=True)

        with TreeMeter(role_of(server_pid)) as storm_meter:
            results, wall, moves, names = await storm(browser, url, seeds, args.browsers, args.control_pause)
        await browser.close()

    own = [seed for seed, (_, values) in zip(seeds, results) if values == reference[seed][1]]
    print(f"sessions whose result is the one their seed gives alone: {len(own)} of {len(seeds)}")
    for seed, (_, values) in zip(seeds, results):
        if values != reference[seed][1]:
            print(f"  seed {seed}: {values} in the storm, {reference[seed][1]} alone")
    foreign = [(seed, n) for seed, n in zip(seeds, names) if len(n) != 1]
    print(f"sessions that have exactly one run, their own: {len(seeds) - len(foreign)} of {len(seeds)}"
          + "".join(f"\n  seed {seed}: runs {n}" for seed, n in foreign))
    print("test accuracy / loss by seed: " + ", ".join(
        f"{seed}: {values[RESULT_METRICS[0]]} / {values[RESULT_METRICS[1]]}"
        for seed, (_, values) in zip(seeds, results)))
    kinds = ["browser"] * args.browsers + ["websocket"] * (len(seeds) - args.browsers)
    ordered = sorted((t, kind) for (t, _), kind in zip(results, kinds))
    at = [t for t, _ in ordered]
    print(f"results at: first {at[0]:.1f} s, median {statistics.median(at):.1f} s, last {at[-1]:.1f} s; browsers' "
          + ", ".join(f"{t:.1f} s" for t, kind in ordered if kind == "browser"))
    missed = [(k, t, k * one / slots * 1.2) for k, t in enumerate(at, start=1) if t > k * one / slots * 1.2]
    print(f"k-th result ≤ k × alone ÷ {slots} slot(s) × 1.2: {len(at) - len(missed)} of {len(at)} within"
          + "".join(f"\n  result {k}: {t:.1f} s > {bound:.1f} s" for k, t, bound in missed))
    print(f"first result {at[0] / one:.2f} × alone (target ≤ 1.5)")
    print(f"storm wall time {wall:.1f} s vs {sequential:.1f} s one after another (target: no slower)")
    print(f"control changes during the storm: {len(moves)}, p50 {statistics.median(moves):.2f} s, "
          f"p95 {percentile(moves, 0.95):.2f} s (target p95 ≤ 1 s)")
    print("peak resident memory: " + ", ".join(
        f"{role} {storm_meter.peak_kb[role] / 1024:.0f} MiB"
        + (f" (largest process {storm_meter.peak_one_kb[role] / 1024:.0f} MiB)" if role != "server" else "")
        for role in ("server", "workers", "Ray services", "browsers") if storm_meter.peak_kb.get(role)))
    print(describe(storm_meter, "the storm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--browsers", type=int, default=2, help="sessions that are real browsers; the rest are "
                                                                "websocket sessions")
    parser.add_argument("--control-pause", type=float, default=0.0,
                        help="seconds the control waits after each change's result before the next (0: at once)")
    parser.add_argument("--slots", type=int, default=None, help="VISIONEXPLORER_SLOTS for the server")
    parser.add_argument("--ray", action="store_true", help="run the jobs on a local Ray (2 workers here)")
    parser.add_argument("--unpinned", action="store_true", help="worker processes may run on any CPU")
    parser.add_argument("--chromium", default=None)
    parser.add_argument("--browser-nice", type=int, default=10,
                        help="the browsers' scheduler group gets this niceness: in a classroom they run on the "
                             "students' machines, here they get the CPU the server and its workers leave "
                             "(0: they share the CPUs equally with the server's group)")
    args = parser.parse_args()
    env = {"VISIONEXPLORER_SLOTS": str(args.slots)} if args.slots else {}
    if args.ray:
        env["VISIONEXPLORER_RAY_ADDRESS"] = "local"
    if args.unpinned:
        env["VISIONEXPLORER_PIN_WORKERS"] = "0"
    # As engine.jobs.default_slots: a local Ray offers a slot per CPU (a job takes 1 thread), else half the CPUs.
    slots = args.slots or ((os.cpu_count() or 2) if args.ray else max(1, (os.cpu_count() or 2) // 2))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.sessions} sessions "
          f"({min(args.browsers, args.sessions)} in browsers), {slots} slot(s)"
          + (" on a local Ray" if args.ray else " (workers on any CPU)" if args.unpinned else ""))
    with tempfile.TemporaryDirectory() as logs, streamlit_server(Path(logs) / "server.log", env) as (url, _, _):
        asyncio.run(run(url, child_pid("streamlit"), args, slots))
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
