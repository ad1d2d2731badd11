"""Landscape grids on a page: a coarse grid at once, the full grid on request with progress and Cancel.

Grids are results of a user's own model, so they live in the session (never a shared cache).
The full grid reuses every point of the coarse one (engine.training.landscape.evaluate(previous=…)).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from engine.training import landscape
from engine.errors import UserInputError

GRIDS_KEY = "landscape.grids"
KEEP_GRIDS = 24  # grids kept per session; the oldest goes first


def _store() -> dict:
    if GRIDS_KEY not in st.session_state:
        st.session_state[GRIDS_KEY] = {}
    return st.session_state[GRIDS_KEY]


def _remember(key: tuple, value: landscape.Landscape) -> None:
    store = _store()
    store[key] = value
    while len(store) > KEEP_GRIDS:
        store.pop(next(iter(store)))


def line_ui(model, plane, images, labels, loss_fn, *, xs: np.ndarray, key: str) -> landscape.Landscape | None:
    """The loss along a 1-D plane (fast: a few dozen forward passes)."""
    store_key = (key, "line")
    if store_key not in _store():
        try:
            with st.spinner("Evaluating the line…"):
                _remember(store_key, landscape.evaluate(model, plane, images, labels, loss_fn, xs=xs))
        except UserInputError as error:
            st.error(str(error))
            return None
    return _store()[store_key]


def grid_ui(model, plane, images, labels, loss_fn, *, xs: np.ndarray, ys: np.ndarray,
            key: str) -> landscape.Landscape | None:
    """The coarse grid (every other point) at once; a button refines it to xs × ys with progress and Cancel."""
    coarse_key, fine_key = (key, "coarse"), (key, "fine")
    store = _store()
    if fine_key in store:
        return store[fine_key]
    try:
        if coarse_key not in store:
            bar = st.progress(0.0, text="Coarse grid…")
            coarse = landscape.evaluate(model, plane, images, labels, loss_fn, xs=xs[::2], ys=ys[::2],
                                        progress=lambda f, m: bar.progress(f, text=f"Coarse grid: {m}"))
            bar.empty()
            _remember(coarse_key, coarse)
        coarse = store[coarse_key]
        done = coarse.loss.size
        per_point = coarse.seconds / max(1, done)
        remaining = per_point * (len(xs) * len(ys) - done)
        st.caption(f"Showing the coarse {len(xs[::2])}×{len(ys[::2])} grid ({coarse.seconds:.1f} s).")
        if not st.button(f"Refine to {len(xs)}×{len(ys)} (about {remaining:.0f} s)", key=f"{key}.refine",
                         help="Evaluate the points between the coarse ones; the coarse points are reused."):
            return coarse
        cancel = st.empty()
        cancel.button("Cancel", key=f"{key}.cancel", help="Stop refining and keep the coarse grid.")
        bar = st.progress(0.0, text="Refining…")
        fine = landscape.evaluate(model, plane, images, labels, loss_fn, xs=xs, ys=ys, previous=coarse,
                                  progress=lambda f, m: bar.progress(f, text=f"Refining: {m}"))
        bar.empty()
        cancel.empty()
        _remember(fine_key, fine)
        return fine
    except UserInputError as error:
        st.error(str(error))
        return None
