"""Landscape grids on a page: a coarse grid at once, the full grid on request, as jobs with progress and Cancel.

Grids are results of a user's own model, so they live in the session (never a shared cache).
The full grid reuses every point of the coarse one (engine.training.landscape.evaluate(previous=…)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from engine.training import landscape, losses
from engine.errors import UserInputError
from ui.figures import landscape as figures
from ui.jobs import computed
from ui.sidebar import presenter_mode
from ui.state import run_dataset
from ui.train_config import load_dataset

GRIDS_KEY = "landscape.grids"
KEEP_GRIDS = 24  # grids kept per session; the oldest goes first


@dataclass(frozen=True)
class GridSettings:
    resolution: int  # grid points per side
    span: float  # random planes go from −span to +span along each direction
    images: int  # validation images every point is evaluated on
    seed: int  # of the random directions


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


def grid_ui(model, plane, images, labels, loss_fn, *, xs: np.ndarray, ys: np.ndarray, key: str,
            section: str = "") -> landscape.Landscape | None:
    """The coarse grid (every other point) as a job at once; a button refines it to xs × ys.

    Both grids are jobs of the runner, with progress and Cancel, so the page stays usable meanwhile.
    `key` names the grid; `section` tells apart its buttons where one page draws the same grid twice.
    """
    slot = f"{section}|{key}" if section else key
    data = dict(model=model, plane=plane, images=images, labels=labels, loss_fn=loss_fn)
    coarse = computed(f"{slot}.coarse", key, landscape.evaluate, label="Coarse grid", xs=xs[::2], ys=ys[::2], **data)
    if coarse is None:
        return None
    done = coarse.loss.size
    remaining = coarse.seconds / max(1, done) * (len(xs) * len(ys) - done)
    fine = computed(f"{slot}.fine", key, landscape.evaluate, label=f"Refining to {len(xs)}×{len(ys)}",
                    estimate_s=remaining, start_button=f"Refine to {len(xs)}×{len(ys)} (about {remaining:.0f} s)",
                    start_help="Evaluate the points between the coarse ones; the coarse points are reused.",
                    xs=xs, ys=ys, previous=coarse, **data)
    if fine is None:
        st.caption(f"Showing the coarse {len(xs[::2])}×{len(ys[::2])} grid ({coarse.seconds:.1f} s).")
    return fine or coarse


def eval_batch(run, images: int):
    """The first `images` validation images of the run's data set, and the run's loss function."""
    dataset = run_dataset(run.name)
    if dataset is None:
        dataset = load_dataset(run.config["data"], run.config.get("image_size"), run.config.get("seed", 0))
    loss_fn = losses.build(run.config["loss"], **run.config.get("loss_options", {}))
    return dataset.val.x[:images], dataset.val.y[:images], loss_fn


def plane_views_ui(run, settings: GridSettings, *, kind: str = "random", side_by_side: bool = False,
                   section: str) -> None:
    """Contour and 3-D surface of one run's landscape on a random or PCA plane.

    `section` keeps the widget and chart keys apart where a page draws the same run's plane twice.
    """
    x, y, loss_fn = eval_batch(run, settings.images)
    key = f"{run.name}|{id(run.model)}|{kind}|{settings}"
    view = landscape.plane_view(run.model, kind=kind, snapshots=run.history.snapshots, span=settings.span,
                                resolution=settings.resolution, seed=settings.seed)
    explained = view.plane.explained
    titles = ((f"PC 1 ({explained[0]:.0%} of the path)", f"PC 2 ({explained[1]:.0%})") if kind == "pca"
              else ("α (direction 1)", "β (direction 2)"))
    grid = grid_ui(run.model, view.plane, x, y, loss_fn, xs=view.xs, ys=view.ys, key=key, section=section)
    if grid is None:
        return
    presenter = presenter_mode()
    left, right = st.columns(2) if side_by_side else (st.container(), st.container())
    left.plotly_chart(figures.contour(grid.xs, grid.ys, grid.loss, paths=view.paths, axis_titles=titles,
                                      presenter=presenter), width="stretch", key=f"{section}|{key}.contour")
    right.plotly_chart(figures.surface(grid.xs, grid.ys, grid.loss, axis_titles=titles, presenter=presenter),
                       width="stretch", key=f"{section}|{key}.surface")
