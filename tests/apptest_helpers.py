"""AppTest helpers: open a page through app.py, and push every widget to random valid values.

`randomize_widgets` is a small fuzzer for pages: each round sets every widget it knows to a random
value the browser could send, reruns, and fails with the values it set, so a failure can be replayed.

References:
    https://docs.streamlit.io/develop/api-reference/app-testing
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamlit.proto.ButtonGroup_pb2 import ButtonGroup as ButtonGroupProto
from streamlit.proto.NumberInput_pb2 import NumberInput as NumberInputProto
from streamlit.proto.Slider_pb2 import Slider as SliderProto
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

APP_FILE = Path(__file__).resolve().parent.parent / "app.py"
UNBOUNDED_STEPS = 10  # a number_input without min or max stays this many steps around its default
EXTREME_SHARE = 1 / 3  # of the numbers drawn, this share is the widget's minimum or maximum
BUTTON_SHARE = 0.5  # of the rounds, this share also clicks a button


def assert_no_exception(at: AppTest, context: str = "") -> None:
    """Fail with the exception's type, message and stack trace if the last run showed one."""
    if not at.exception:
        return
    shown = "\n\n".join(
        f"{e.proto.type or 'Exception'}: {e.message}\n" + "\n".join(e.stack_trace) for e in at.exception
    )
    raise AssertionError((f"{context}\n" if context else "") + f"the app raised:\n{shown}")


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")
TEXT_KINDS = ("markdown", "caption", "text", "code", "error", "warning", "info", "success", "toast")


def assert_no_traceback_text(at: AppTest, context: str = "") -> None:
    """Fail if any text the page shows looks like a Python traceback (a message must speak the user's language)."""
    for kind in TEXT_KINDS:
        for element in at.get(kind):
            text = str(getattr(element, "value", "") or "")
            if TRACEBACK.search(text):
                raise AssertionError((f"{context}\n" if context else "") + f"the page shows a traceback as {kind}:\n{text}")


def run_page(
    page_file: str,
    *,
    query_params: dict | None = None,
    session_state: dict | None = None,
    timeout: float = 60,
    script: str | Path = APP_FILE,
) -> AppTest:
    """Open `page_file` (relative to app.py, e.g. "app_pages/start/train_lab.py") the way a link to it would.

    Session state is set before the first run (sidebar globals read it); query parameters are set
    just before the page runs, as in a URL like /train_lab?epochs=3.
    """
    at = AppTest.from_file(str(script), default_timeout=timeout)
    for key, value in (session_state or {}).items():
        at.session_state[key] = value
    # AppTest needs one run to learn the st.navigation pages before it can switch to one.
    at.run()
    assert_no_exception(at, f"{Path(script).name}'s default page, run before switching to {page_file}")
    at.query_params.update(query_params or {})
    at.switch_page(page_file).run()
    assert_no_exception(at, page_file)
    return at


def chart_text(at: AppTest) -> str:
    """Every plotly chart's JSON as one string, readable: unicode as is and titles unwrapped (a title too
    long for its column is wrapped with <br>, so its words are searched as one line)."""
    specs = (json.dumps(json.loads(chart.proto.spec), ensure_ascii=False, separators=(",", ":"))
             for chart in at.get("plotly_chart"))
    return " ".join(specs).replace("<br>", " ")


def shown_by_browser(widget) -> Any:
    """The value a browser shows for `widget` when it mounts it afresh (after runs where it was not drawn).

    AppTest reads a widget's value from session state; a browser that had removed the widget only
    has the element's proto: the value the script set this run (`set_value`), else the default.
    """
    p = widget.proto
    if widget.type == "selectbox":
        index = p.default if isinstance(p.default, int) else p.default[0]
        return p.raw_value if p.set_value else widget.options[index]
    if widget.type == "select_slider":
        return p.raw_value[0] if p.set_value else p.options[int(p.default[0])]
    if widget.type == "slider":
        return (p.value if p.set_value else p.default)[0]
    if widget.type in ("number_input", "checkbox", "toggle"):
        return p.value if p.set_value else p.default
    raise NotImplementedError(f"shown_by_browser: {widget.type}")


def randomize_widgets(
    at: AppTest,
    *,
    rounds: int = 3,
    seed: int = 0,
    skip_keys: Collection[str] = (),
    click_buttons: bool = True,
    allowed_errors: Collection[str] | None = None,
    text_values: Mapping[str, Sequence[str]] | None = None,
    timeout: float | None = None,
    narrow: Mapping[str, tuple[float, float] | Collection[str]] | None = None,
) -> list[str]:
    """Set every enabled widget to a random valid value, rerun, and require no exception; `rounds` times.

    Covers number_input, slider (single and range), select_slider, selectbox, radio, multiselect,
    pills/segmented_control, checkbox, toggle and color_picker. About a third of the numbers drawn
    are a widget's minimum or maximum, where pages break most. Text inputs and text areas change
    only when their key is in `text_values` (key → candidate strings). `skip_keys` holds keys, or
    labels for widgets without a key, to leave alone; `narrow` keeps a widget (by key) inside a
    smaller range, (low, high) for numbers, a collection of option labels for option widgets (what
    a pressed Train button trains stays small, yet the control still moves). Unless `click_buttons`
    is False, about every other round also clicks one random button, then waits for the jobs it
    started. With `allowed_errors`, every st.error shown must contain one of these fragments (or
    match one of these compiled regular expressions): the rules a page explains; any other message
    is a value the widgets allow but the page cannot handle. No text on the page may look like a
    traceback. Deterministic for a given page and `seed`. A failure lists what each widget was set
    to (option widgets by their on-screen label), then the app's exception. Returns the st.error
    texts seen.
    """
    rng = random.Random(seed)
    skip = set(skip_keys)
    texts = dict(text_values or {})
    bounds = dict(narrow or {})
    seen: list[str] = []
    for round_ in range(1, rounds + 1):
        changes = [_randomize(w, rng, texts, bounds.get(w.key)) for w in _widgets(at) if not _skipped(w, skip)]
        clicked = False
        if click_buttons and rng.random() < BUTTON_SHARE:
            buttons = [b for b in at.button if not b.disabled and not _skipped(b, skip)]
            if buttons:
                button = rng.choice(buttons)
                button.click()
                clicked = True
                changes.append(f"clicked {_name(button)}")
        what = (f"randomize_widgets(seed={seed}) round {round_}/{rounds}, after setting:\n  "
                + ("\n  ".join(c for c in changes if c) or "(no widgets)"))
        try:
            at.run(timeout=timeout)
            if clicked:
                finish_jobs(at, timeout=timeout or 600)
        except Exception as exc:  # a timeout or a crash of the test runner itself
            raise AssertionError(f"{what}\nthe run failed: {exc!r}") from exc
        assert_no_exception(at, what)
        assert_no_traceback_text(at, what)
        errors = [str(e.value) for e in at.error]
        seen += errors
        unexplained = [e for e in errors if allowed_errors is not None and not any(_explains(a, e) for a in allowed_errors)]
        if unexplained:
            raise AssertionError(f"{what}\nthe page showed an error no rule explains:\n  " + "\n  ".join(unexplained))
    return seen


def _explains(allowed: str | re.Pattern, error: str) -> bool:
    return bool(allowed.search(error)) if isinstance(allowed, re.Pattern) else allowed in error


@dataclass(frozen=True)
class _Wire:
    """A value in the form the browser sends it: option labels, or slider positions in proto units."""

    field: str  # a WidgetState field
    data: Any


@functools.cache
def _wire_class(cls: type) -> type:
    """`cls` that sends a `_Wire` value as is.

    AppTest's `set_value` wants the script's option objects, but an element only shows their
    formatted labels; the browser sends labels, so for option widgets we do the same.
    """

    def _widget_state(self) -> WidgetState:
        if not isinstance(self._value, _Wire):  # e.g. an unsubmitted form's marker
            return cls._widget_state.fget(self)
        ws = WidgetState(id=self.id)
        if isinstance(self._value.data, list):
            getattr(ws, self._value.field).data[:] = self._value.data
        else:
            setattr(ws, self._value.field, self._value.data)
        return ws

    return type(cls.__name__, (cls,), {"_widget_state": property(_widget_state)})


def _send(widget, field: str, data: Any) -> None:
    widget.__class__ = _wire_class(type(widget))
    widget._value = _Wire(field, data)


def _widgets(at: AppTest) -> list:
    """Every widget randomize_widgets can drive, in a fixed order (the rng depends on it)."""
    kinds = ("number_input", "slider", "select_slider", "selectbox", "radio", "multiselect",
             "button_group", "checkbox", "toggle", "color_picker", "text_input", "text_area")
    return [w for kind in kinds for w in getattr(at, kind) if not w.disabled]


def _name(widget) -> str:
    label = getattr(widget, "label", "")
    return f"{widget.type} {label!r}" + (f" [key={widget.key}]" if widget.key else "")


def _skipped(widget, skip: set[str]) -> bool:
    return widget.key in skip or getattr(widget, "label", None) in skip


def _grid(rng: random.Random, lo: float, hi: float, step: float, count: int = 1) -> list[float]:
    """`count` sorted random points of lo, lo + step, … ≤ hi; each one an end of the range a third of the time."""
    last = math.floor((hi - lo) / step + 1e-9) if step > 0 else 0
    picks = sorted(rng.choice((0, last)) if rng.random() < EXTREME_SHARE else rng.randint(0, last)
                   for _ in range(count))
    return [min(hi, float(f"{lo + k * step:.12g}")) for k in picks]  # .12g drops 0.30000000000000004


def _is_range(bounds) -> bool:
    """(low, high) numbers, as opposed to a collection of option labels."""
    return isinstance(bounds, tuple) and len(bounds) == 2 and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)


def _within(lo: float, hi: float, bounds) -> tuple[float, float]:
    """lo…hi cut to `bounds` (low, high) where they overlap."""
    if not _is_range(bounds):
        return lo, hi
    low, high = max(lo, bounds[0]), min(hi, bounds[1])
    return (low, high) if low <= high else (lo, hi)


def _randomize(w, rng: random.Random, texts: dict[str, Sequence[str]], bounds=None) -> str | None:
    """Give `w` a random valid value (inside `bounds` where given); describe what was set, or None where nothing was."""
    options = list(getattr(w, "options", None) or [])
    if bounds is not None and not _is_range(bounds) and options:
        kept = [o for o in options if o in bounds]
        assert kept, f"narrow: none of {sorted(bounds)} is an option of {_name(w)}; its options are {options}"
        options = kept
    if w.type == "number_input":
        p = w.proto
        step = p.step or 1
        around = p.default if p.HasField("default") else 0  # the default, so no random walk
        lo = p.min if p.has_min else min(around, p.max if p.has_max else around) - UNBOUNDED_STEPS * step
        hi = p.max if p.has_max else max(around, lo) + UNBOUNDED_STEPS * step
        if _is_range(bounds):  # stay on the widget's grid: start at its first step inside
            low, hi = _within(lo, hi, bounds)
            lo = lo + math.ceil((low - lo) / step - 1e-9) * step
        (value,) = _grid(rng, lo, hi, step)
        w.set_value(int(value) if p.data_type == NumberInputProto.INT else value)
        return f"{_name(w)} = {w.value!r}"
    if w.type == "slider":
        p = w.proto
        lo, hi = _within(p.min, p.max, bounds)
        lo = p.min + math.ceil((lo - p.min) / p.step - 1e-9) * p.step if p.step > 0 else lo
        values = _grid(rng, lo, hi, p.step, count=len(p.default))
        _send(w, "double_array_value", values)
        if p.data_type == SliderProto.INT:
            shown: Any = [int(v) for v in values]
        elif p.data_type == SliderProto.FLOAT:
            shown = values
        else:
            shown = f"{values} (microseconds, Streamlit's unit for dates and times)"
        return f"{_name(w)} = {shown[0] if len(values) == 1 else shown}"
    if w.type in ("select_slider", "selectbox", "radio"):
        if not options:
            return None
        if w.type == "select_slider":
            order = {o: i for i, o in enumerate(w.options)}
            labels = sorted((rng.choice(options) for _ in w.proto.default), key=order.__getitem__)
            _send(w, "string_array_value", labels)
        else:
            labels = [rng.choice(options)]
            _send(w, "string_value", labels[0])
        return f"{_name(w)} = {labels[0] if len(labels) == 1 else labels}"
    if w.type in ("multiselect", "button_group"):
        if w.type == "button_group" and w.proto.click_mode == ButtonGroupProto.ClickMode.SINGLE_SELECT:
            labels = [rng.choice(options)] if options else []
        else:
            most = getattr(w.proto, "max_selections", 0) or len(options)
            labels = rng.sample(options, rng.randint(0, min(most, len(options))))
        _send(w, "string_array_value", labels)
        return f"{_name(w)} = {labels}"
    if w.type in ("checkbox", "toggle"):
        w.set_value(rng.random() < 0.5)
        return f"{_name(w)} = {w.value}"
    if w.type == "color_picker":
        w.set_value(f"#{rng.randrange(2**24):06x}")
        return f"{_name(w)} = {w.value}"
    if w.type in ("text_input", "text_area") and w.key in texts:
        w.set_value(rng.choice(list(texts[w.key])))
        return f"{_name(w)} = {w.value!r}"
    return None


def finish_jobs(at: AppTest, *, timeout: float = 600) -> AppTest:
    """Wait until every job this session started has ended, then rerun, as the page's polling fragment would."""
    from engine.jobs import Job

    rerun = False
    for _ in range(20):  # a finished job's page may start the next (e.g. a two-stage experiment)
        # A finished job stays in the session until its page section is drawn again: not pending.
        pending = [job for _, job in at.session_state.items() if isinstance(job, Job) and not job.finished_state]
        if rerun and not pending:
            return at
        for job in pending:
            assert job.wait(timeout), f"{job.label} still {job.state} after {timeout} s"
        at.run(timeout=timeout)  # what the polling fragment does: results drawn, the job let go
        assert_no_exception(at, "after the jobs ended")
        rerun = True
    raise AssertionError("jobs kept starting")
