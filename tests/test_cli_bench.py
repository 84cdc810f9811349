import csv
import importlib.util
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hashbench.cli_bench import bench_app
from hashbench.search.bench import COLUMNS, measure_copy_bandwidth, random_code_set
from hashbench.store import RunKey, RunStore

needs_faiss = pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss-cpu is not installed")

TINY = ["search", "--db-size", "1000", "--bits", "32", "--k", "10", "--queries", "20",
        "--repetitions", "1", "--copy-mb", "4"]


def _flat(result):
    return " ".join(result.output.split())


def _invoke(args):
    return CliRunner().invoke(bench_app, args)


@needs_faiss
def test_bench_search_json_rows():
    result = _invoke(TINY + ["--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)

    assert document["copy_gb_s"] > 0
    rows = document["rows"]
    assert [row["backend"] for row in rows] == ["numpy", "faiss-flat", "faiss-mih"]
    for row in rows:
        assert list(row) == list(COLUMNS)
        assert row["codes"] == "random"
        assert (row["db_size"], row["bits"], row["k"], row["threads"], row["queries"]) == (1000, 32, 10, 1, 20)
        assert row["qps"] > 0
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["build_s"] >= 0
        assert row["index_bytes"] >= 1000 * 4
        assert 0.0 <= row["recall"] <= 1.0
    for row in rows[:2]:
        assert row["exact"] is True
        assert row["recall"] == 1.0
        assert row["scan_gb_s"] > 0
        assert row["bandwidth_fraction"] > 0
    assert rows[2]["exact"] is False
    assert rows[2]["scan_gb_s"] is None


def test_bench_search_csv_output_file(tmp_path):
    output = tmp_path / "out" / "search.csv"
    result = _invoke(TINY + ["--backends", "numpy", "--threads", "1,2", "--format", "csv", "--output", str(output)])
    assert result.exit_code == 0, result.output

    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert [row["threads"] for row in rows] == ["1", "2"]
    assert list(rows[0]) == list(COLUMNS)
    assert [path.name for path in output.parent.iterdir()] == ["search.csv"]


def test_bench_search_table_lists_backend():
    result = _invoke(TINY + ["--backends", "numpy"])
    assert result.exit_code == 0, result.output
    assert "Hamming search benchmark" in result.output
    assert "numpy" in result.output
    assert "Memory copy rate" in result.output


def test_bench_search_stored_runs(tmp_path):
    rng = np.random.default_rng(0)
    key = RunKey(method="lsh", dataset="toy", protocol="toy-standard", n_bits=32, seed=0)
    arrays = {
        "query_codes": rng.integers(0, 256, size=(30, 4), dtype=np.uint8),
        "db_codes": rng.integers(0, 256, size=(500, 4), dtype=np.uint8),
    }
    RunStore(tmp_path).write(key, {"split": {"split_hash": "x"}}, arrays)

    result = _invoke(TINY + ["--backends", "numpy", "--runs-dir", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output

    rows = json.loads(result.stdout)["rows"]
    stored = [row for row in rows if row["codes"] != "random"]
    assert len(stored) == 1
    assert stored[0]["codes"] == key.relative_path.as_posix()
    assert (stored[0]["db_size"], stored[0]["queries"], stored[0]["recall"]) == (500, 20, 1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bits", "12"], "--bits must be a positive multiple of 8 (8, 16, 32, ...), got 12"),
        (["--k", "0"], "--k must be a positive integer, got 0"),
        (["--k", "2000"], "--k 2000 exceeds the smallest --db-size 1000"),
        (["--db-size", "0"], "--db-size values must be positive integers, got 0"),
        (["--threads", "x"], "--threads expects comma-separated integers"),
        (["--backends", "numpy,annoy"], "unknown backend 'annoy' in --backends; registered backends:"),
        (["--format", "xml"], "--format must be one of table, json, csv, got 'xml'"),
        (["--queries", "-1"], "--queries must be a positive integer, got -1"),
        (["--runs-dir", "absent-folder"], "the runs folder absent-folder does not exist"),
    ],
)
def test_bench_search_rejects_bad_options(args, message):
    result = _invoke(TINY + args)
    assert result.exit_code == 2
    assert message in _flat(result)
    assert "Traceback" not in result.output


def test_bench_search_runs_dir_without_codes(tmp_path):
    result = _invoke(TINY + ["--backends", "numpy", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"no run under {tmp_path} stores query_codes and db_codes" in _flat(result)


def test_random_code_set_is_seeded():
    first = random_code_set(100, 64, 5, seed=1)
    second = random_code_set(100, 64, 5, seed=1)
    other = random_code_set(100, 64, 5, seed=2)
    np.testing.assert_array_equal(first.db_codes, second.db_codes)
    assert not np.array_equal(first.db_codes, other.db_codes)
    assert first.db_codes.shape == (100, 8)
    assert first.query_codes.shape == (5, 8)


def test_copy_bandwidth_positive():
    assert measure_copy_bandwidth(1 << 20) > 0
