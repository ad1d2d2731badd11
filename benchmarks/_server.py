"""Shared by the browser benchmarks: start `streamlit run app.py` on a free port, launch Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120  # give up on one start after this long
# The machine's closed network refuses Chromium's background connections; don't make them.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path(wanted: str | None = None) -> str:
    wanted = wanted or os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
    found = wanted if os.access(wanted, os.X_OK) else shutil.which("chromium")
    if found is None:
        sys.exit(f"no Chromium at {wanted}; pass --chromium PATH")
    return found


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


@contextmanager
def streamlit_server(log_path: Path, env: dict | None = None):
    """A running server; yields (url, seconds from spawn until healthy, time.monotonic() at spawn)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--browser.gatherUsageStats", "false",
               # as in tests/e2e: other work edits files meanwhile, and a watcher costs CPU on 2 cores
               "--server.fileWatcherType", "none"]
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    try:
        wait_healthy(url, process, started + TIMEOUT_S)
        yield url, time.monotonic() - started, started
    except Exception:
        print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        stop(process)
