"""Shared fixtures: small real data sets, kept for the whole session (they are read-only)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# engine sets passive OpenMP waiting before torch starts its threads; a test module that imported
# torch first would leave spinning threads for the whole run (measured: a storm test 10 s -> 4 s).
import engine  # noqa: E402, F401


@pytest.fixture(scope="session")
def digits():
    from engine import data

    return data.load("digits", seed=0)


@pytest.fixture(scope="session")
def small_shapes():
    from engine import data

    return data.load("shapes", seed=0, num_images=400, image_size=16)
