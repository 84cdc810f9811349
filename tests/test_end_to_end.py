"""End to end on the real MIRFlickr-25K images: `hashbench run` for DSTDH, LSH and ITQ, then report.

To keep CI fast the runs use a seeded sample of the standard protocol restricted to the images
present: 150 queries and 1,200 database items (seed 0), whose training set is the protocol's
training items inside that database. Features of those 1,350 images are extracted once per test
session into a temporary cache.
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hashbench.cli import app
from hashbench.store import iter_runs, load_arrays

SAMPLE = "150,1200"
METHODS = ("dstdh", "lsh", "itq")


@pytest.fixture(scope="module")
def runs(sample_runs):
    return sample_runs


@pytest.mark.parametrize("method", METHODS)
def test_run_exits_cleanly(runs, method):
    _, results = runs
    assert results[method].exit_code == 0, results[method].output


@pytest.fixture(scope="module")
def records(runs):
    root, _ = runs
    return {record["method"]: record for record in iter_runs(root / "runs")}


@pytest.mark.parametrize("method", METHODS)
def test_codes_are_valid(records, method):
    arrays = load_arrays(records[method]["run_path"])
    assert arrays["query_codes"].dtype == np.uint8
    assert arrays["query_codes"].shape == (150, 4)
    assert arrays["db_codes"].shape == (1200, 4)


@pytest.mark.parametrize("method", METHODS)
def test_codes_use_every_bit(records, method):
    bits = np.unpackbits(load_arrays(records[method]["run_path"])["db_codes"], axis=1)
    assert np.all(bits.min(axis=0) != bits.max(axis=0))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", ["map", "map@1000", "precision@500", "precision@1000"])
def test_metrics_in_range(records, method, metric):
    assert 0.0 < records[method]["metrics"][metric] <= 1.0


@pytest.mark.parametrize("method", METHODS)
def test_record_names_the_split(records, method):
    split = records[method]["split"]
    assert split["partial"] is True
    assert split["sample"]["n_query"] == 150


def test_dstdh_beats_lsh(records):
    assert records["dstdh"]["metrics"]["map"] > records["lsh"]["metrics"]["map"]


def test_rerun_skips_existing(runs, data_root):
    root, _ = runs
    result = CliRunner().invoke(app, [
        "run", "--method", "lsh", "--allow-partial", "--bits", "32", "--seeds", "0", "--sample", SAMPLE,
        "--data-root", str(data_root), "--runs-dir", str(root / "runs"), "--cache-dir", str(root / "cache"),
    ])
    assert "skipped (exists)" in result.output


def test_report_json_has_every_method(runs):
    root, _ = runs
    result = CliRunner().invoke(app, ["report", "--runs-dir", str(root / "runs"), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert sorted(row["method"] for row in rows) == sorted(METHODS)
    assert all(row["bits"] == 32 and row["n_seeds"] == 1 for row in rows)


def test_run_without_allow_partial_names_flag(data_root, tmp_path):
    result = CliRunner().invoke(app, [
        "run", "--method", "lsh", "--data-root", str(data_root), "--runs-dir", str(tmp_path / "runs"),
        "--cache-dir", str(tmp_path / "cache"),
    ])
    assert result.exit_code == 2
    assert "--allow-partial" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bits", "12"], "positive multiple of 8"),
        (["--bits", "x"], "comma-separated integers"),
        (["--method", "nope"], "Unknown method 'nope'"),
        (["--set", "n_itr=3"], "Unknown parameter 'n_itr'"),
        (["--sample", "10"], "two positive integers"),
        (["--sample", "0,100"], "two positive integers"),
        (["--sample", "99999,100"], "the number of sampled queries, as in --sample QUERIES,DATABASE"),
        (["--batch-size", "0"], "--batch-size"),
    ],
)
def test_run_rejects_bad_options(data_root, tmp_path, args, message):
    base = ["run", "--method", "itq", "--allow-partial", "--data-root", str(data_root),
            "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, base + args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
