"""Regression checks against the stored baselines: fixed-seed mAP on real images, speed ratios.

A failure names the figure, the stored and the new value, and the command that regenerates the
stored values when the change is deliberate.
"""

import pytest

from hashbench.regression import (
    QUALITY_METHODS,
    REGENERATE_COMMAND,
    load_baseline,
    measure_speed,
)
from hashbench.store import iter_runs


@pytest.fixture(scope="module")
def baseline():
    return load_baseline()


@pytest.fixture(scope="module")
def maps(sample_runs):
    root, _ = sample_runs
    return {record["method"]: record["metrics"]["map"] for record in iter_runs(root / "runs")}


@pytest.mark.parametrize("method", QUALITY_METHODS)
def test_map_matches_stored(baseline, maps, method):
    stored = baseline["quality"]["map"][method]
    new = maps[method]
    tolerance = baseline["quality"]["tolerance"]
    assert abs(new - stored) <= tolerance, (
        f"mAP of {method} (32 bits, seed 0, protocol sample) is {new:.6f}, stored {stored:.6f} "
        f"(tolerance {tolerance}). If the change is deliberate, regenerate with: {REGENERATE_COMMAND}"
    )


@pytest.fixture(scope="module")
def speed():
    return measure_speed()


@pytest.mark.parametrize(
    "name",
    ["faiss_flat_over_numpy_search", "plain_over_evaluate_codes_matlab", "plain_over_evaluate_codes_default"],
)
def test_speed_ratio_holds(baseline, speed, name):
    stored = baseline["speed"]["ratios"][name]
    factor = baseline["speed"]["tolerance_factor"]
    new = speed[name]
    assert new >= stored / factor, (
        f"Speed ratio {name} fell to {new:.2f} from the stored {stored:.2f} (allowed down to "
        f"{stored / factor:.2f}). If the change is deliberate, regenerate with: {REGENERATE_COMMAND}"
    )
