"""Fixtures shared by the whole test suite."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner


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


@pytest.fixture(scope="session")
def sample_runs(data_root, tmp_path_factory):
    """Run the regression quality runs (DSTDH, ITQ, LSH on a protocol sample) once per session.

    Returns the folder that contains ``runs/`` and ``cache/``, and each method's CLI result.
    """
    from hashbench.cli import app
    from hashbench.regression import QUALITY_METHODS, quality_arguments

    root = tmp_path_factory.mktemp("sample-runs")
    results = {}
    for method in QUALITY_METHODS:
        arguments = quality_arguments(data_root, root / "runs", root / "cache", method)
        results[method] = CliRunner().invoke(app, arguments)
    return root, results
