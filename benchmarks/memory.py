"""Server memory: RSS after visiting every page (training on each), and growth over sessions that come and go.

One real server (`streamlit run app.py`); its RSS is the sum of VmRSS over the server process and
all its descendants (the job runner's worker processes are its children), read from /proc.

1. **Every page**: one browser session opens every page of the sidebar and, where a page has a
   button whose name starts with "Train", presses the first one and waits for its job to end.
   Prints the memory after each page and the peak. **Target: ≤ 1.5 GB** (PSS, see `Memory`).
2. **Sessions that come and go**: N sessions (20 by default) one after another, each opening the
   Train Lab, pressing Train (the default digits CNN), waiting for its test accuracy and closing its
   browser context. Prints the memory after each. Allocators keep freed memory, so what counts is the
   growth after the first few sessions (`--warmup`), not whether RSS returns to where it was.
   **Target: growth ≤ 100 MB.** Streamlit keeps a disconnected session for
   `server.disconnectedSessionTTL` seconds (default 120) so that a reconnecting browser gets its
   state back: `--ttl` shortens that here so a closed session's models are really released while
   the benchmark runs (the default keeps all 20 for the whole run and measures them instead).

    python benchmarks/memory.py [--sessions 20] [--warmup 3] [--ttl 5] [--skip-pages] [--pages train_lab,...]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from _server import CHROMIUM_ARGS, chromium_path, streamlit_server

IDLE = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'
TIMEOUT_MS = 300_000
JOB_TIMEOUT_S = 600  # one page's training job on a busy 2-CPU machine
TARGET_PEAK_MB, TARGET_GROWTH_MB = 1536, 100


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc/<pid>/stat (field 4 is the parent's pid)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # ended meanwhile
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ')'
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; PSS splits each shared page among the processes mapping it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0  # ended meanwhile
    rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    pss = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
    return int(rss.group(1)) if rss else 0, int(pss.group(1)) if pss else 0


@dataclass(frozen=True)
class Memory:
    """The server's memory in MB: its own RSS, and RSS and PSS summed over it and its descendants.

    Summed RSS counts torch's shared libraries (~340 MB of file pages) once per process; the PSS sum
    is what the processes hold together."""

    server_rss: float
    rss: float
    pss: float
    processes: int

    def __str__(self) -> str:
        return (f"PSS {self.pss:5.0f} MB (RSS: {self.rss:5.0f} MB summed over {self.processes} processes, "
                f"server alone {self.server_rss:4.0f} MB)")


def server_memory(pid: int) -> Memory:
    """Memory of `pid` and all its descendants (the job runner's workers are children of the server)."""
    tree, todo, rss, pss, count = _children(), [pid], 0, 0, 0
    while todo:
        current = todo.pop()
        one_rss, one_pss = _memory_kb(current)
        rss, pss, count = rss + one_rss, pss + one_pss, count + 1
        todo += tree.get(current, [])
    return Memory(_memory_kb(pid)[0] / 1024, rss / 1024, pss / 1024, count)


def server_pid() -> int:
    """The streamlit server this process started (benchmarks/_server.py keeps its handle to itself)."""
    mine = [child for child in _children().get(os.getpid(), [])
            if b"streamlit" in Path(f"/proc/{child}/cmdline").read_bytes()]
    if len(mine) != 1:
        raise RuntimeError(f"expected one streamlit child of this process, found {mine}")
    return mine[0]


def wait_idle(page, timeout_ms: int = TIMEOUT_MS) -> None:
    page.locator(IDLE).wait_for(state="attached", timeout=timeout_ms)


def wait_for_jobs(page, timeout_s: float = JOB_TIMEOUT_S) -> None:
    """Until no Cancel button is left (every job followed to its end) and the page is idle."""
    deadline = time.monotonic() + timeout_s
    page.wait_for_timeout(1500)  # the first poll of the job's fragment
    while time.monotonic() < deadline:
        wait_idle(page)
        if page.get_by_role("button", name="Cancel").count() == 0:
            page.wait_for_timeout(500)
            wait_idle(page)
            if page.get_by_role("button", name="Cancel").count() == 0:
                return
        page.wait_for_timeout(1000)
    raise TimeoutError(f"a job on {page.url} ran past {timeout_s} s")


def train_one_session(browser, url: str) -> str:
    """A session of its own: open the Train Lab, train the default model, read its test accuracy, close."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{url}/train_lab", wait_until="domcontentloaded")
        wait_idle(page)
        page.get_by_role("button", name="Train", exact=True).click()
        metric = page.locator('[data-testid="stMetric"]', has_text="Test accuracy").first
        metric.wait_for(timeout=TIMEOUT_MS)
        accuracy = metric.locator('[data-testid="stMetricValue"]').inner_text()
        wait_idle(page)
        return accuracy
    finally:
        context.close()


def visit_every_page(browser, url: str, pid: int, only: list[str] | None) -> list[tuple[str, Memory, bool]]:
    """(page, memory after it, whether it trained) for every page of the sidebar, in one session."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    wait_idle(page)
    nav = page.locator('[data-testid="stSidebarNav"]')
    more = nav.locator('[data-testid="stSidebarNavViewButton"]')
    if more.count() and "more" in more.inner_text().lower():
        more.click()
    # the home page's link is the bare base URL: its path is empty
    links = {urlparse(href).path.strip("/") or "home": href
             for href in dict.fromkeys(a.get_attribute("href") for a in nav.locator("a").all())}
    rows = []
    for path, href in links.items():
        if only and path not in only:
            continue
        started = time.monotonic()
        nav.locator(f'a[href="{href}"]').first.click()  # the same session: what it trained stays
        page.wait_for_timeout(500)
        wait_idle(page)
        train = page.locator('[data-testid="stMain"]').get_by_role("button", name=re.compile(r"^Train"))
        trained = train.count() > 0 and train.first.is_enabled()
        if trained:
            train.first.click()
            wait_for_jobs(page)
        memory = server_memory(pid)
        rows.append((path, memory, trained))
        print(f"  {path:28s} {memory}{'  trained' if trained else ''}  {time.monotonic() - started:5.1f} s",
              flush=True)
    context.close()
    return rows


def sessions_growth(browser, url: str, pid: int, sessions: int) -> list[Memory]:
    """Memory before the first session and after each one closed."""
    figures = [server_memory(pid)]
    for i in range(sessions):
        started = time.monotonic()
        accuracy = train_one_session(browser, url)
        time.sleep(1.0)  # the server notices the closed websocket
        figures.append(server_memory(pid))
        print(f"  session {i + 1:2d}: test accuracy {accuracy}, {figures[-1]}, "
              f"{time.monotonic() - started:4.1f} s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="sessions before growth is counted")
    parser.add_argument("--ttl", type=int, default=None, help="server.disconnectedSessionTTL in seconds")
    parser.add_argument("--skip-pages", action="store_true", help="only the sessions that come and go")
    parser.add_argument("--pages", default="", help="comma-separated URL paths instead of every page")
    parser.add_argument("--chromium", default=None)
    args = parser.parse_args()
    env = {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(args.ttl)} if args.ttl is not None else {}
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"disconnected sessions kept {args.ttl if args.ttl is not None else 'the default 120'} s")
    from playwright.sync_api import sync_playwright  # a dev requirement; imported only here

    with tempfile.TemporaryDirectory() as logs, streamlit_server(Path(logs) / "server.log", env) as (url, _, _), \
            sync_playwright() as playwright:
        pid = server_pid()
        browser = playwright.chromium.launch(executable_path=chromium_path(args.chromium), headless=True,
                                             args=CHROMIUM_ARGS)
        print(f"server started: {server_memory(pid)}")
        if not args.skip_pages:
            print("every page, training where the page trains:")
            rows = visit_every_page(browser, url, pid, [p for p in args.pages.split(",") if p] or None)
            peak = max(rows, key=lambda row: row[1].pss)
            print(f"pages: {len(rows)} ({sum(t for *_, t in rows)} trained); peak after {peak[0]}: {peak[1]}; "
                  f"after the last: {rows[-1][1]} (target: PSS ≤ {TARGET_PEAK_MB} MB)"
                  f"{'' if peak[1].pss <= TARGET_PEAK_MB else ' MISSED'}")
        print(f"{args.sessions} sessions that each train and close:")
        figures = sessions_growth(browser, url, pid, args.sessions)
        browser.close()

    warm = figures[min(args.warmup, len(figures) - 1)]
    growth, rss_growth = figures[-1].pss - warm.pss, figures[-1].rss - warm.rss
    per_session = growth / max(1, len(figures) - 1 - args.warmup)
    print(f"after {args.warmup} sessions: {warm}\nafter {args.sessions}: {figures[-1]}\n"
          f"growth: PSS {growth:+.0f} MB ({per_session:+.1f} MB per session), RSS {rss_growth:+.0f} MB "
          f"(target ≤ {TARGET_GROWTH_MB} MB){'' if max(growth, rss_growth) <= TARGET_GROWTH_MB else ' MISSED'}; "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
