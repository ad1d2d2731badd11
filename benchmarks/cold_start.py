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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 8.0
TIMEOUT_S = 120  # give up on one start after this long
# The machine's closed network refuses Chromium's background connections; don't make them.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"streamlit was not healthy within {TIMEOUT_S} s")


def stop(process: subprocess.Popen) -> None:
    """Stop the server this script started (by its own pid), politely first."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def one_start(browser, log_dir: Path, index: int) -> tuple[float, float]:
    """(seconds until healthy, seconds until the title is visible), both from process start."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--browser.gatherUsageStats", "false",
               # as in tests/e2e: other work edits files meanwhile, and a watcher costs CPU on 2 cores
               "--server.fileWatcherType", "none"]
    log_path = log_dir / f"server{index}.log"
    context = None
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_healthy(url, process, started + TIMEOUT_S)
        healthy = time.monotonic() - started
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{url}/", timeout=TIMEOUT_S * 1000)
        page.locator("h1", has_text="VisionExplorer").first.wait_for(state="visible", timeout=TIMEOUT_S * 1000)
        return healthy, time.monotonic() - started
    except Exception:
        print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        if context is not None:
            context.close()
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright  # a dev requirement; imported only here

    chromium = args.chromium if os.access(args.chromium, os.X_OK) else shutil.which("chromium")
    if chromium is None:
        sys.exit(f"no Chromium at {args.chromium}; pass --chromium PATH")
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
