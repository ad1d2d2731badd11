"""Session state shared by pages: the Run store, URL round-tripping of controls, and presets."""

from __future__ import annotations

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


# ---- URL state -----------------------------------------------------------------------------
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


def init_from_url(fields: list[UrlField], presets: Mapping[str, dict] | None = None) -> list[str]:
    """Give each control its first value: preset, then URL, then default. Returns problems to show.

    Runs once per widget key (later reruns keep what the user set). A `?preset=name` sets
    several controls at once; single parameters in the URL override the preset.
    """
    problems: list[str] = []
    params = st.query_params
    preset_name = params.get("preset")
    preset: dict = {}
    if preset_name and presets is not None:
        if preset_name in presets:
            preset = presets[preset_name]
        else:
            problems.append(f"Unknown preset {preset_name!r}; presets are {', '.join(presets)}.")
    for field in fields:
        if field.key in st.session_state and not preset_name:
            continue
        value = preset.get(field.param, field.default)
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
    """Mirror the controls that differ from their defaults into the address bar, for sharing."""
    for field in fields:
        value = st.session_state.get(field.key, field.default)
        text = str(value).lower() if isinstance(value, bool) else str(value)
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
    """Around a page's body: controls start from the URL, a UserInputError becomes st.error, the URL follows."""
    show_problems(init_from_url(fields, presets))
    try:
        yield
    except UserInputError as error:
        st.error(str(error))
    write_to_url(fields)
