"""A small table where the user adds 2-D points of a chosen class (the decision-boundaries page)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from engine.limits import MAX_OWN_POINTS
from engine.training.toy2d import OWN_POINT_RANGE


def own_points_ui(key: str) -> list[tuple[float, float, int]]:
    """The rows the user typed, as (x, y, class); half-filled rows are left out until complete."""
    with st.expander("Add your own training points"):
        st.caption(f"Type x, y (within ±{OWN_POINT_RANGE:g}) and the class of up to {MAX_OWN_POINTS} points; they "
                   "join the training set at once and the model keeps training with them — put a point of one "
                   "class inside the other's region and watch the boundary bend around it.")
        table = st.data_editor(
            pd.DataFrame({"x": pd.Series(dtype=float), "y": pd.Series(dtype=float), "class": pd.Series(dtype=int)}),
            num_rows="dynamic", key=key, width="stretch",
            column_config={
                "x": st.column_config.NumberColumn("x", min_value=-OWN_POINT_RANGE, max_value=OWN_POINT_RANGE),
                "y": st.column_config.NumberColumn("y", min_value=-OWN_POINT_RANGE, max_value=OWN_POINT_RANGE),
                "class": st.column_config.SelectboxColumn("class", options=[0, 1]),
            })
    rows = list(table[["x", "y", "class"]].itertuples(index=False, name=None))
    return [(float(x), float(y), int(c)) for x, y, c in rows
            if not any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (x, y, c))]
