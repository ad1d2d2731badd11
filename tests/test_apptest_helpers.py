"""Tests of tests/apptest_helpers.py on throwaway Streamlit scripts."""

from __future__ import annotations

import math
import textwrap

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import assert_no_exception, randomize_widgets, run_page

WIDGETS_SCRIPT = """
import streamlit as st

values = dict(
    n=st.number_input("n", min_value=-5, max_value=5, value=0, step=1, key="n"),
    f=st.number_input("f", min_value=0.0, max_value=1.0, value=0.5, step=0.25, key="f"),
    free=st.number_input("free", value=100, step=3, key="free"),
    s=st.slider("s", 0, 100, 50, step=5, key="s"),
    rng=st.slider("rng", 0.0, 1.0, (0.2, 0.8), step=0.1, key="rng"),
    sb=st.selectbox("sb", ["a", "b", "c"], key="sb"),
    act=st.selectbox("act", ["relu", "gelu"], format_func=str.upper, key="act"),
    ms=st.multiselect("ms", [1, 2, 3, 4], max_selections=2, key="ms"),
    cb=st.checkbox("cb", key="cb"),
    rd=st.radio("rd", [10, 20, 30], key="rd"),
    ss=st.select_slider("ss", options=["lo", "mid", "hi"], key="ss"),
    ssr=st.select_slider("ssr", options=[1, 2, 3, 4, 5], value=(2, 4), key="ssr"),
    tg=st.toggle("tg", key="tg"),
    ti=st.text_input("ti", "keep", key="ti"),
    cp=st.color_picker("cp", key="cp"),
    boom=st.button("boom", key="boom"),
)
st.session_state.setdefault("seen", []).append(values)
if st.session_state.get("explode") and values["n"] > 2:
    raise ValueError(f"n too large: {values['n']}")
if values["s"] == 100:
    st.error("s = 100 is refused: the rule says at most 95")
if values["s"] == 0:
    st.error("s = 0 fell through")
"""


@pytest.fixture
def widgets_app(tmp_path) -> AppTest:
    script = tmp_path / "widgets.py"
    script.write_text(WIDGETS_SCRIPT)
    return AppTest.from_file(str(script), default_timeout=30).run()


def _on_grid(value: float, lo: float, step: float) -> bool:
    k = (value - lo) / step
    return math.isclose(k, round(k), abs_tol=1e-9)


def test_randomize_widgets_sets_values_within_bounds(widgets_app):
    randomize_widgets(widgets_app, rounds=12, seed=1, click_buttons=False)
    seen = widgets_app.session_state["seen"][1:]  # after the first, default run
    assert len(seen) == 12
    for v in seen:
        assert -5 <= v["n"] <= 5 and isinstance(v["n"], int)
        assert 0.0 <= v["f"] <= 1.0 and _on_grid(v["f"], 0.0, 0.25)
        assert 70 <= v["free"] <= 130 and _on_grid(v["free"], 100, 3)
        assert 0 <= v["s"] <= 100 and v["s"] % 5 == 0
        lo, hi = v["rng"]
        assert 0.0 <= lo <= hi <= 1.0 and _on_grid(lo, 0.0, 0.1) and _on_grid(hi, 0.0, 0.1)
        assert v["sb"] in ("a", "b", "c")
        assert v["act"] in ("relu", "gelu")  # options with a format_func come back as values
        assert set(v["ms"]) <= {1, 2, 3, 4} and len(v["ms"]) <= 2
        assert v["rd"] in (10, 20, 30)
        assert v["ss"] in ("lo", "mid", "hi")
        assert v["ssr"][0] <= v["ssr"][1] and set(v["ssr"]) <= {1, 2, 3, 4, 5}
        assert isinstance(v["cb"], bool) and isinstance(v["tg"], bool)
        assert v["cp"].startswith("#") and len(v["cp"]) == 7
        assert v["ti"] == "keep"  # text is left alone without an allow-list entry
        assert v["boom"] is False  # buttons left alone
    for key in ("n", "f", "free", "s", "rng", "sb", "act", "ms", "cb", "rd", "ss", "ssr", "tg", "cp"):
        assert len({repr(v[key]) for v in seen}) > 1, f"{key} never changed"


def test_randomize_widgets_is_deterministic_by_seed(tmp_path):
    def seen_with(seed: int) -> list:
        script = tmp_path / "widgets.py"
        script.write_text(WIDGETS_SCRIPT)
        at = AppTest.from_file(str(script), default_timeout=30).run()
        randomize_widgets(at, rounds=3, seed=seed)
        return at.session_state["seen"]

    assert seen_with(7) == seen_with(7)
    assert seen_with(7) != seen_with(8)


def test_randomize_widgets_options(widgets_app):
    randomize_widgets(widgets_app, rounds=6, seed=2, skip_keys={"s", "cb"}, click_buttons=True,
                      text_values={"ti": ["typed"]})
    seen = widgets_app.session_state["seen"][1:]
    assert all(v["s"] == 50 and v["cb"] is False for v in seen)
    assert all(v["ti"] == "typed" for v in seen)
    assert any(v["boom"] for v in seen)


def test_randomize_widgets_reports_an_exception_with_the_values_set(widgets_app):
    widgets_app.session_state["explode"] = True
    with pytest.raises(AssertionError) as failure:
        randomize_widgets(widgets_app, rounds=20, seed=0)
    message = str(failure.value)
    assert "ValueError: n too large" in message
    assert "randomize_widgets(seed=0) round" in message
    # The message names the culprit with the value that was set, so the failure can be replayed.
    n = widgets_app.session_state["seen"][-1]["n"]
    assert f"number_input 'n' [key=n] = {n}" in message


MULTIPAGE_APP = """
import streamlit as st
page = st.navigation([st.Page("app_pages/one.py", default=True), st.Page("app_pages/two.py")])
st.sidebar.caption("frame")
page.run()
"""
PAGE_TWO = """
import streamlit as st
st.markdown(f"x={st.query_params.get('x')} who={st.session_state.get('who')}")
if st.query_params.get("x") == "boom":
    raise RuntimeError("page two exploded")
"""


@pytest.fixture
def multipage_app(tmp_path):
    (tmp_path / "app_pages").mkdir()
    (tmp_path / "app.py").write_text(textwrap.dedent(MULTIPAGE_APP))
    (tmp_path / "app_pages" / "one.py").write_text("import streamlit as st\nst.title('one')\n")
    (tmp_path / "app_pages" / "two.py").write_text(textwrap.dedent(PAGE_TWO))
    return tmp_path / "app.py"


def test_run_page_opens_the_page_with_state_and_params(multipage_app):
    at = run_page("app_pages/two.py", query_params={"x": "2"}, session_state={"who": "me"},
                  script=multipage_app, timeout=30)
    assert at.markdown[0].value == "x=2 who=me"
    assert at.sidebar.caption[0].value == "frame"  # the page ran inside app.py, not on its own


def test_run_page_fails_with_the_exception_text(multipage_app):
    with pytest.raises(AssertionError, match=r"(?s)app_pages/two.py.*RuntimeError: page two exploded"):
        run_page("app_pages/two.py", query_params={"x": "boom"}, script=multipage_app, timeout=30)


def test_assert_no_exception_passes_on_a_clean_run(multipage_app):
    at = AppTest.from_file(str(multipage_app), default_timeout=30).run()
    assert_no_exception(at)


def test_randomize_widgets_draws_the_ends_of_every_range_often(widgets_app):
    randomize_widgets(widgets_app, rounds=30, seed=4, click_buttons=False)
    seen = widgets_app.session_state["seen"][1:]
    ends = {"n": (-5, 5), "f": (0.0, 1.0), "s": (0, 100), "free": (70, 130)}
    for key, (lo, hi) in ends.items():
        at_ends = sum(v[key] in (lo, hi) for v in seen)
        # a third drawn at an end, plus what a uniform draw lands there: far above the uniform share alone
        assert at_ends >= 6, (key, [v[key] for v in seen])
        assert {lo, hi} <= {v[key] for v in seen}, key
    assert any(v["rng"][0] == 0.0 for v in seen) and any(v["rng"][1] == 1.0 for v in seen)


def test_randomize_widgets_presses_a_button_in_some_rounds_by_default(widgets_app):
    randomize_widgets(widgets_app, rounds=10, seed=5)
    pressed = [v["boom"] for v in widgets_app.session_state["seen"][1:]]
    assert any(pressed) and not all(pressed)


def test_randomize_widgets_flags_an_error_no_rule_explains(widgets_app):
    seen = randomize_widgets(widgets_app, rounds=30, seed=6, click_buttons=False,
                             allowed_errors=["the rule says", "fell through"])
    assert any("at most 95" in e for e in seen) and any("fell through" in e for e in seen)
    with pytest.raises(AssertionError, match=r"(?s)error no rule explains.*s = 0 fell through"):
        randomize_widgets(widgets_app, rounds=30, seed=6, click_buttons=False, allowed_errors=["the rule says"])
