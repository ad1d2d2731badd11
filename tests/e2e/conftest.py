"""Browser-test fixtures: the system's Chromium driven by Playwright, and a live `streamlit run app.py`.

Without Chromium or Playwright the browser tests skip, unless REQUIRE_E2E=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
STARTUP_TIMEOUT_S = 180  # two CPUs, a cold torch import
DEFAULT_TIMEOUT_MS = 60_000
# The machine's closed network refuses Chromium's background connections; don't make them.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_TIMINGS: list[str] = []


@dataclass
class StreamlitServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    launched: float  # time.monotonic() just before the process started
    healthy_after_s: float | None = None

    def log_tail(self, chars: int = 20_000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def _unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_E2E") == "1":
        pytest.fail(f"{reason} (REQUIRE_E2E=1 makes this a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """CHROMIUM_PATH when set (and then only it), else Debian's /usr/bin/chromium, else `chromium` on PATH."""
    wanted = os.environ.get("CHROMIUM_PATH")
    for candidate in [wanted] if wanted else ["/usr/bin/chromium", shutil.which("chromium")]:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(server: StreamlitServer) -> None:
    deadline = server.launched + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=5) as response:
                if response.status == 200:
                    server.healthy_after_s = time.monotonic() - server.launched
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"streamlit not healthy after {STARTUP_TIMEOUT_S} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def browser():
    """Chromium, launched once per session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed ({exc}); pip install -r requirements-dev.txt")
    path = chromium_path()
    if path is None:
        _unavailable(f"no Chromium at CHROMIUM_PATH={os.environ['CHROMIUM_PATH']}" if os.environ.get("CHROMIUM_PATH")
                     else "no Chromium: set CHROMIUM_PATH or `apt-get install chromium`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def _streamlit(log_path: Path) -> Iterator[StreamlitServer]:
    """`streamlit run app.py` on a free port from the repo root, stopped on exit."""
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--browser.gatherUsageStats", "false",
               # Other work may edit files meanwhile; a watcher would also poll on a 2-CPU machine.
               "--server.fileWatcherType", "none"]
    with log_path.open("wb") as log:
        launched = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = StreamlitServer(f"http://127.0.0.1:{port}", process, log_path, launched)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def streamlit_server(browser, tmp_path_factory) -> Iterator[StreamlitServer]:
    """The server shared by the browser tests.

    Takes `browser` first so a missing browser skips before a server starts, and so the browser's
    own launch stays out of the cold-start figure.
    """
    with _streamlit(tmp_path_factory.mktemp("streamlit") / "server.log") as server:
        yield server


@pytest.fixture
def fresh_streamlit_server(browser, tmp_path) -> Iterator[StreamlitServer]:
    """A server of its own, for tests about what the first visitor of a new server sees."""
    with _streamlit(tmp_path / "server.log") as server:
        yield server


@pytest.fixture
def page(browser):
    """A fresh browser context (no shared session state) and its page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def record_timing() -> Callable[[str], None]:
    """Note a timing line; all of them are printed in pytest's summary."""
    return _TIMINGS.append


def pytest_terminal_summary(terminalreporter) -> None:
    if _TIMINGS:
        terminalreporter.write_sep("-", "e2e timings")
        for line in _TIMINGS:
            terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server's log to every failed browser test."""
    report = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            if isinstance(value, StreamlitServer):
                report.sections.append((f"{name} log (tail)", value.log_tail()))
    return report
