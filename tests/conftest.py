"""Fixtures shared by the whole test suite."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_root():
    """Return the real data root named by ``$HASHBENCH_DATA``; skip when it is unset or absent."""
    value = os.environ.get("HASHBENCH_DATA")
    if not value:
        pytest.skip("HASHBENCH_DATA is not set; export it to the data root to run the real-data tests")
    root = Path(value)
    if not root.is_dir():
        pytest.skip(f"HASHBENCH_DATA={value} is not an existing folder")
    return root
