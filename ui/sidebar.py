"""The shared sidebar: seed, presenter mode, the compute device and the server's job slots."""

from __future__ import annotations

import streamlit as st
from streamlit import runtime

SEED_KEY = "global.seed"
PRESENTER_KEY = "global.presenter"

# For a 1280×720 projector read from the back of a room (tests/e2e/test_presenter.py measures it).
# Streamlit sizes text, widgets and metrics in rem, so one root size scales them all: metric values
# 2.25rem = 50 px, labels 19 px. Paragraph rules name st.markdown's own element, not every markdown
# container: metric values, buttons and labels are markdown too, and 1.15rem made metric values
# *smaller* (25 px). Metrics and page names wrap instead of ending in "…"; the side padding (5rem =
# 110 px at this size) shrinks; a column holding a chart or a formula is never narrower than a
# readable chart, wrapping under its neighbour instead (ui/figures/train.py wraps titles for that width).
# Tables (st.dataframe) draw their text on a canvas in fixed pixels, deaf to the root size: their
# element is zoomed instead, at 1/zoom of the width so that, zoomed, it fills the column and no more
# (the grid lays itself out for the narrower width and scrolls sideways inside if it must).
_PRESENTER_CSS = """
<style>
html { font-size: 22px; }
[data-testid="stMarkdown"] [data-testid="stMarkdownContainer"] :is(p, li) { font-size: 1.1rem; }
[data-testid="stMainBlockContainer"] { padding-left: 1.5rem; padding-right: 1.5rem; padding-top: 3rem; }
:is([data-testid="stMetricLabel"], [data-testid="stMetricValue"], [data-testid="stSidebarNav"])
  :is(:has(> [data-testid="stMarkdownContainer"]), [data-testid="stMarkdownContainer"], p) {
  white-space: normal; overflow: visible; text-overflow: clip; min-width: 0; }
[data-testid="stColumn"]:is(:has([data-testid="stPlotlyChart"]), :has(.katex-display)) { min-width: min(100%, 560px); }
[data-testid="stElementContainer"]:has(> [data-testid="stFullScreenFrame"] > [data-testid="stDataFrame"]) {
  zoom: 1.3; width: calc(100% / 1.3) !important; }
</style>
"""


def seed() -> int:
    """The session's seed: every run built on a page starts from it."""
    return int(st.session_state.get(SEED_KEY, 0))


def presenter_mode() -> bool:
    return bool(st.session_state.get(PRESENTER_KEY, False))


def sidebar_ui():
    """Draw the globals; returns a slot that `device_ui` fills once the page has painted."""
    if SEED_KEY not in st.session_state:
        st.session_state[SEED_KEY] = 0
    if PRESENTER_KEY not in st.session_state:
        st.session_state[PRESENTER_KEY] = False
    with st.sidebar:
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=SEED_KEY,
                        help="Same seed → same data split, same initial weights, same curves.")
        st.toggle("Presenter mode", key=PRESENTER_KEY,
                  help="Larger text and figures for a projector.")
        slot = st.empty()
    if presenter_mode():
        st.markdown(_PRESENTER_CSS, unsafe_allow_html=True)
    return slot


def _served() -> bool:
    """True in a `streamlit run` server; False under AppTest, which runs the app in the test's process
    with a mock in the Runtime's place."""
    return runtime.exists() and type(runtime.get_instance()) is runtime.Runtime


def device_ui(slot) -> None:
    """Name the compute device and where jobs run. Imports torch, so it runs after the page paints."""
    from engine.device import configure_threads, describe, pick_device
    from engine.errors import UserInputError
    from engine.jobs import runner

    configure_threads()
    try:
        jobs = runner()
    except UserInputError as error:  # a Ray cluster that the server cannot join
        slot.error(str(error))
        return
    if _served():  # page runs keep off the CPUs the jobs train on; every run (0.07 ms with 60 threads)
        jobs.keep_server_apart()  # also holds a thread that a not-yet-held thread started in a race
    cluster = jobs.where()
    where = f"Jobs run on the **{cluster}** · " if cluster else "Jobs: "
    slot.caption(f"Computing on: **{describe(pick_device())}** · {where}{jobs.status()}",
                 help="Training and other long work queue for a free slot "
                      f"{'on the Ray cluster' if cluster else 'of this server'}; each session gets its turn.")
