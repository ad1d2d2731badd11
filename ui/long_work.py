"""Results kept per session: one remembered result per slot, and tensor fingerprints for their keys.

Quick computations run in the script (`remembered`); long ones go through the job runner
(`ui.jobs.computed`), which keeps its result the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from typing import TypeVar

import streamlit as st
from torch import Tensor

T = TypeVar("T")


def tensor_key(x: Tensor) -> str:
    """A short fingerprint of a tensor's values, for cache keys (tensors themselves do not hash by value)."""
    return hashlib.sha1(x.detach().cpu().numpy().tobytes()).hexdigest()


def remembered(slot: str, key: Hashable, compute: Callable[[], T], *, spinner: str | None = None) -> T:
    """`compute()` once per `key`, kept in session state under `slot`: one entry, since results can be large."""
    stored = st.session_state.get(slot)
    if stored is None or stored[0] != key:
        if spinner is None:
            stored = (key, compute())
        else:
            with st.spinner(spinner):
                stored = (key, compute())
        st.session_state[slot] = stored
    return stored[1]


def recall(slot: str, key: Hashable):
    """What `slot` keeps if it was computed for `key`, else None."""
    stored = st.session_state.get(slot)
    return stored[1] if stored is not None and stored[0] == key else None
