"""Session state shared by pages: the Run store, URL round-tripping of controls, and presets."""

from __future__ import annotations

import functools

from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import streamlit as st

from engine.errors import UserInputError

RUNS_KEY = "runs"


# ---- the Run store -------------------------------------------------------------------------
def runs() -> dict:
    """The session's trained Runs, by name, oldest first (a user's models live only here)."""
    if RUNS_KEY not in st.session_state:
        st.session_state[RUNS_KEY] = {}
    return st.session_state[RUNS_KEY]


def unique_run_name(base: str) -> str:
    existing = runs()
    if base not in existing:
        return base
    n = 2
    while f"{base} #{n}" in existing:
        n += 1
    return f"{base} #{n}"


def store_run(run, dataset=None) -> None:
    """Keep `run` (and the data set it was trained on, for its test results)."""
    runs()[run.name] = run
    if dataset is not None:
        st.session_state.setdefault("run_datasets", {})[run.name] = dataset


def run_dataset(name: str):
    """The data set a run of this session was trained on, or None (e.g. an uploaded run)."""
    return st.session_state.get("run_datasets", {}).get(name)


# ---- URL state and the page frame ---------------------------------------------------------
KEPT_KEY = "state.kept"  # {widget key: last value}: a plain session key, which Streamlit never drops


@dataclass(frozen=True)
class UrlField:
    """A control whose value round-trips through `?param=value` under a short name."""

    key: str  # the widget's session-state key
    param: str  # the short URL name
    default: Any
    parse: Callable[[str], Any] = str
    valid: Callable[[Any], bool] = lambda value: True


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def choice(key: str, param: str, default: str, options: list[str]) -> UrlField:
    return UrlField(key, param, default, str, lambda v: v in options)


def number(key: str, param: str, default: float, low: float, high: float, kind: type = float) -> UrlField:
    return UrlField(key, param, kind(default), kind, lambda v: low <= v <= high)


def flag(key: str, param: str, default: bool) -> UrlField:
    return UrlField(key, param, default, _parse_bool)


def items(key: str, param: str, default: list, options: list, *, kind: type = str,
          most: int | None = None) -> UrlField:
    """A multiselect's list, in the URL as `?param=a,b,c`; every item one of `options`, at most `most`."""
    def parse(text: str) -> list:
        return [kind(item) for item in text.split(",") if item.strip()]

    return UrlField(key, param, list(default), parse,
                    lambda v: all(item in options for item in v) and (most is None or len(v) <= most))


def _url_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def init_from_url(fields: list[UrlField], presets: Mapping[str, dict] | None = None) -> list[str]:
    """Give each control its value for this run: preset, then URL, then the kept value, then default.

    Streamlit drops the state of a widget that was not drawn in a run, and a widget drawn again
    shows its own default unless its value was set in that very run. So every run re-sets each
    control that still has a value (the browser then shows the user's value, not the minimum),
    and one that lost its value gets back the copy kept under a plain session key. A
    `?preset=name` sets several controls at once; single parameters in the URL override it.
    """
    problems: list[str] = []
    params = st.query_params
    kept = st.session_state.setdefault(KEPT_KEY, {})
    preset_name = params.get("preset")
    preset: dict = {}
    if preset_name and presets is not None:
        if preset_name in presets:
            preset = presets[preset_name]
        else:
            problems.append(f"Unknown preset {preset_name!r}; presets are {', '.join(presets)}.")
    for field in fields:
        if field.key in st.session_state and not preset_name:
            st.session_state[field.key] = st.session_state[field.key]
            continue
        value = preset.get(field.param, field.default) if preset_name else kept.get(field.key, field.default)
        raw = params.get(field.param)
        if raw is not None:
            try:
                parsed = field.parse(raw)
                if not field.valid(parsed):
                    raise ValueError(raw)
                value = parsed
            except ValueError:
                problems.append(f"Ignored ?{field.param}={raw}: not a valid value here.")
        st.session_state[field.key] = value
    if preset_name:
        del st.query_params["preset"]  # applied once; the single parameters now carry the state
    return problems


def write_to_url(fields: list[UrlField]) -> None:
    """Mirror the controls that differ from their defaults into the address bar, for sharing, and keep them."""
    kept = st.session_state.setdefault(KEPT_KEY, {})
    for field in fields:
        value = st.session_state.get(field.key, field.default)
        if field.key in st.session_state:
            kept[field.key] = value
        text = _url_text(value)
        if value == field.default:
            if field.param in st.query_params:
                del st.query_params[field.param]
        elif st.query_params.get(field.param) != text:
            st.query_params[field.param] = text


def show_problems(problems: list[str]) -> None:
    for problem in problems:
        st.warning(problem)


@contextmanager
def url_state(fields: list[UrlField], presets: Mapping[str, dict] | None = None):
    """The page frame, around a page's whole body (its last statement): controls start from the URL or the
    user's kept values; a UserInputError shows as st.error and ends the page there; the URL follows.

    Not st.stop(): that would also end app.py, which draws the sidebar's device line after the page.
    """
    show_problems(init_from_url(fields, presets))
    with _errors_then_url(fields):
        yield


@contextmanager
def _errors_then_url(fields: list[UrlField]):
    try:
        yield
    except UserInputError as error:
        st.error(str(error))
    finally:
        write_to_url(fields)


def framed_fragment(fields: list[UrlField]) -> Callable:
    """`st.fragment` with the frame's second half: a fragment's own rerun never reaches the page's frame,
    so the fragment shows its UserInputError and writes its controls to the URL itself."""

    def decorate(body: Callable) -> Callable:
        @functools.wraps(body)
        def framed(*args, **kwargs):
            with _errors_then_url(fields):
                body(*args, **kwargs)
        return st.fragment(framed)

    return decorate
