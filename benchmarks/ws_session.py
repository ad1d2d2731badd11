"""A Streamlit session without a browser: the `/_stcore/stream` websocket a browser tab speaks, for load tests.

Speaks Streamlit's own protocol — protobuf `BackMsg`s up, `ForwardMsg`s down — the way its web client
does (streamlit/static's app: `sendRerunBackMsg`, `handleAutoRerun`, `handleScriptFinished`, the
ForwardMsg cache):
- connects with the subprotocols ["streamlit", "PLACEHOLDER_AUTH_TOKEN"] and asks for a first run of
  the page's URL path and query string; later runs name the page by the hash the server sent;
- keeps the page as the browser does: elements by delta path, pruned of what a finished run (or
  fragment run) did not redraw, and the URL's query string as the server rewrites it;
- sends every widget value it has set on each rerun (the server keeps the others' values), a button
  press as a one-off trigger;
- runs each fragment's `run_every` timer as the browser's `setInterval` does: a `rerun_script` with
  the fragment's id and `is_auto_rerun` every interval, whether or not the last one finished; a
  `stop_auto_rerun` or the next full run stops it;
- keeps the cacheable messages and names them in `cached_message_hashes`, so the server sends a
  `ref_hash` for what this session already has, expiring them after `max_cached_message_age` runs.
It draws nothing and runs no components; it cannot upload files.

    async with WebsocketSession(url, "train_lab") as session:
        await session.set_number("Seed", 7)
        await session.click("Train")
        metric = await session.wait_for(lambda s: s.metric("Test accuracy"), timeout=120)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

SUBPROTOCOLS = ["streamlit", "PLACEHOLDER_AUTH_TOKEN"]  # the browser's, without an XSRF cookie
CONTEXT = {"timezone": "UTC", "timezone_offset": 0, "locale": "en-US", "is_embedded": False,
           "color_scheme": "light"}


@dataclass
class _Node:
    """One element or block of the page, and the run that last drew it."""

    kind: str  # the element's type ("metric", "button", …) or "block"
    proto: Any
    run_id: str
    fragment_id: str


@dataclass
class _Cached:
    payload: bytes
    used_at: int  # the session's run count when the message was last sent or used
    fragment_id: str


class SessionError(RuntimeError):
    """The page shows an exception, or the server closed the connection."""


class WebsocketSession:
    """One browser tab's session on a running Streamlit server, as an async context manager."""

    def __init__(self, url: str, page: str = "", query: str = ""):
        self.url = url.rstrip("/")
        self.page_name, self.query_string = page, query
        self.page_script_hash = ""
        self.nodes: dict[tuple[int, ...], _Node] = {}
        self.runs_finished = 0  # script runs (full or fragment) that ended, for callers that wait on change
        self.auto_reruns = 0  # fragment reruns this session's timers asked for
        self.script_running = False
        # A rerun this session asked for: (its fragment id or "" for the page, whether its run started).
        # Until that run ends the session is not idle; the browser's own state lags here (it says
        # "notRunning" until the server's status message arrives), so waiting on it could end early.
        self._asked: tuple[str, bool] | None = None
        self._run_id = ""
        self._widgets: dict[str, WidgetState] = {}
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}
        self._cache: dict[str, _Cached] = {}
        self._run_count = 0
        self._max_age = 2  # runs a cached message survives unused (the server's new_session says)
        self._changed = asyncio.Condition()
        self._closed: BaseException | None = None

    async def __aenter__(self) -> WebsocketSession:
        return await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def open(self) -> WebsocketSession:
        """Connect and ask for the page's first run, as a browser tab that loads the URL."""
        parts = urlsplit(self.url)
        self._ws = await connect(f"ws://{parts.netloc}{parts.path}/_stcore/stream", subprotocols=SUBPROTOCOLS,
                                 origin=f"{parts.scheme}://{parts.netloc}", max_size=None)
        self._reader = asyncio.create_task(self._read())
        await self._rerun()
        return self

    async def close(self) -> None:
        """Close the tab: the server ends the session."""
        for _, timer in self._timers.values():
            timer.cancel()
        self._reader.cancel()
        await self._ws.close()

    # ---- what the page shows -------------------------------------------------------------------------
    def elements(self, kind: str) -> list[Any]:
        """The shown elements of one type ("metric", "button", "number_input", …), in page order."""
        return [self.nodes[path].proto for path in sorted(self.nodes) if self.nodes[path].kind == kind]

    def element(self, kind: str, label: str) -> Any | None:
        """The first shown element of type `kind` labelled `label`."""
        return next((e for e in self.elements(kind) if e.label == label), None)

    def metric(self, label: str) -> str | None:
        """The value shown by the metric labelled `label`, if there is one."""
        found = self.element("metric", label)
        return None if found is None else found.body

    def exceptions(self) -> list[str]:
        return [f"{e.type}: {e.message}" for e in self.elements("exception")]

    @property
    def polls(self) -> dict[str, float]:
        """The fragments this session reruns on a timer, and their intervals in seconds."""
        return {fragment_id: interval for fragment_id, (interval, _) in self._timers.items()}

    @property
    def idle(self) -> bool:
        """No script run is going on or asked for (the browser's "notRunning")."""
        return not self.script_running and self._asked is None

    async def wait_for(self, predicate: Callable[[WebsocketSession], Any], timeout: float) -> Any:
        """The first truthy `predicate(self)`, checked after every message; SessionError on an exception shown."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                if self._closed is not None:
                    raise SessionError(f"the connection closed: {self._closed!r}")
                if self.exceptions():
                    raise SessionError("the page shows an exception: " + "; ".join(self.exceptions()))
                value = predicate(self)
                if value:
                    return value
                await self._changed.wait()

    async def wait_idle(self, timeout: float = 120) -> None:
        await self.wait_for(lambda s: s.idle, timeout)

    # ---- what a user does ----------------------------------------------------------------------------
    async def set_number(self, label: str, value: float) -> None:
        """Type `value` into the number input labelled `label` (and press Enter: a rerun)."""
        widget, fragment_id = self._widget("number_input", label)
        state = WidgetState(id=widget.id)
        if widget.data_type == widget.INT:
            state.int_value = int(value)
        else:
            state.double_value = float(value)
        self._widgets[widget.id] = state
        await self._rerun(fragment_id=fragment_id)

    async def click(self, label: str) -> None:
        """Press the button labelled `label`."""
        widget, fragment_id = self._widget("button", label)
        await self._rerun(trigger=WidgetState(id=widget.id, trigger_value=True), fragment_id=fragment_id)

    def _widget(self, kind: str, label: str) -> tuple[Any, str]:
        """The widget and the fragment it is in: its change reruns only that fragment, as in a browser."""
        for path in sorted(self.nodes):
            node = self.nodes[path]
            if node.kind == kind and node.proto.label == label:
                return node.proto, node.fragment_id
        raise SessionError(f"no {kind} labelled {label!r} on the page")

    # ---- the protocol --------------------------------------------------------------------------------
    async def _rerun(self, *, trigger: WidgetState | None = None, fragment_id: str = "", auto: bool = False) -> None:
        message = BackMsg()
        state = message.rerun_script
        state.query_string = self.query_string
        state.widget_states.widgets.extend([*self._widgets.values(), *([trigger] if trigger else [])])
        if self.page_script_hash:
            state.page_script_hash = self.page_script_hash
        else:
            state.page_name = self.page_name
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        state.cached_message_hashes.extend(self._cache)
        for name, value in CONTEXT.items():
            setattr(state.context_info, name, value)
        state.context_info.url = f"{self.url}/{self.page_name}" + (f"?{self.query_string}" if self.query_string else "")
        if not auto:
            self._asked = (fragment_id, False)
        await self._ws.send(message.SerializeToString())

    async def _read(self) -> None:
        try:
            async for payload in self._ws:
                message = ForwardMsg()
                message.ParseFromString(payload)
                if message.WhichOneof("type") == "ref_hash":
                    cached = self._cache[message.ref_hash]
                    cached.used_at = self._run_count
                    metadata = message.metadata
                    message = ForwardMsg()
                    message.ParseFromString(cached.payload)
                    message.metadata.CopyFrom(metadata)  # where this copy goes: its own delta path
                elif message.metadata.cacheable and message.hash not in self._cache:
                    self._cache[message.hash] = _Cached(payload, self._run_count, message.delta.fragment_id)
                self._handle(message)
                async with self._changed:
                    self._changed.notify_all()
        except Exception as error:  # the server went away: every waiter hears it
            self._closed = error
        else:
            self._closed = ConnectionError("closed by the server")
        async with self._changed:
            self._changed.notify_all()

    def _handle(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        if kind == "new_session":
            fragments = message.metadata.run.fragment_ids
            if self._asked is not None and (self._asked[0] in fragments if self._asked[0] else not fragments):
                self._asked = (self._asked[0], True)
            self._run_id = message.metadata.run.script_run_id
            self._max_age = message.new_session.config.max_cached_message_age or self._max_age
            if not message.metadata.run.fragment_ids:  # a full run: the browser drops every timer
                for _, timer in self._timers.values():
                    timer.cancel()
                self._timers.clear()
        elif kind == "delta":
            self._delta(message)
        elif kind == "session_status_changed":
            self.script_running = message.session_status_changed.script_is_running
        elif kind == "script_finished":
            self._finished(message)
        elif kind == "navigation":  # st.navigation names the page this run shows
            self.page_script_hash = message.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = message.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._auto_rerun(message.auto_rerun.fragment_id, message.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in message.stop_auto_rerun.fragment_ids:
                if fragment_id in self._timers:
                    self._timers.pop(fragment_id)[1].cancel()

    def _delta(self, message: ForwardMsg) -> None:
        delta, path = message.delta, tuple(message.metadata.delta_path)
        if delta.HasField("new_element"):
            element = delta.new_element
            kind = element.WhichOneof("type")
            self.nodes[path] = _Node(kind, getattr(element, kind), self._run_id, delta.fragment_id)
        elif delta.HasField("add_block"):
            self.nodes[path] = _Node("block", delta.add_block, self._run_id, delta.fragment_id)

    def _finished(self, message: ForwardMsg) -> None:
        """Drop what the finished run did not redraw (a fragment run: only inside its fragments), and
        age the cache, as the browser's `clearStaleNodes` and `incrementRunCount` do."""
        status, run = message.script_finished, message.metadata.run
        if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            return
        self.runs_finished += 1
        if self._asked is not None and self._asked[1]:
            self._asked = None
        fragments = set(run.fragment_ids)
        if status in (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
            self.nodes = {path: node for path, node in self.nodes.items() if node.run_id == run.script_run_id
                          or (fragments and node.fragment_id not in fragments)}
        self._run_count += 1
        self._cache = {key: entry for key, entry in self._cache.items()
                       if (fragments and entry.fragment_id not in fragments)
                       or self._run_count - entry.used_at <= self._max_age}

    def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        if fragment_id in self._timers:
            if self._timers[fragment_id][0] == interval:
                return
            self._timers.pop(fragment_id)[1].cancel()

        async def tick() -> None:
            next_at = time.monotonic()
            while True:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                self.auto_reruns += 1
                await self._rerun(fragment_id=fragment_id, auto=True)

        self._timers[fragment_id] = (interval, asyncio.create_task(tick()))


# ---- the Train Lab, as the classroom benchmark and its test drive it ------------------------------------
RESULT_METRICS = ("Test accuracy", "Test loss", "Epochs")  # what a finished run shows, for comparing runs


async def open_train_lab(url: str, seed: int, *, query: str = "", timeout: float = 300) -> WebsocketSession:
    """A session on the Train Lab (URL parameters `query`) with `seed` typed into the sidebar, idle."""
    session = await WebsocketSession(url, "train_lab", query).open()
    await session.wait_for(lambda s: s.runs_finished and s.idle, timeout)
    await session.set_number("Seed", seed)
    await session.wait_idle(timeout)
    return session


async def train(session: WebsocketSession, started: float, *, timeout: float = 300) -> tuple[float, dict[str, str]]:
    """Press Train; (seconds from `started` until the test accuracy of the ended job shows, the result's
    metrics). While the job runs (its Cancel button shows), a rerun of the page shows its first epochs."""
    await session.click("Train")
    await session.wait_for(lambda s: s.metric(RESULT_METRICS[0]) and not s.element("button", "Cancel"), timeout)
    seconds = time.monotonic() - started
    await session.wait_idle(timeout)  # the metrics of the same (full) run
    return seconds, {label: session.metric(label) for label in RESULT_METRICS}


def run_names(session: WebsocketSession) -> list[str]:
    """The runs this session has: the options of the Train Lab's "Run" picker."""
    picker = session.element("selectbox", "Run")
    return [] if picker is None else list(picker.options)
