import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hashbench.cli import app
from hashbench.codes import pack_codes
from hashbench.metrics import evaluate_codes
from hashbench.metrics.codes_file import CodesFileError, load_codes_file


def _flat(result):
    return " ".join(result.output.split())


def _problem(seed=0, n_queries=40, n_db=300, n_bits=16):
    rng = np.random.default_rng(seed)
    return {
        "query_codes": rng.choice([-1, 1], size=(n_queries, n_bits)),
        "db_codes": rng.choice([-1, 1], size=(n_db, n_bits)),
        "query_labels": (rng.random((n_queries, 4)) < 0.3).astype(np.int64),
        "db_labels": (rng.random((n_db, 4)) < 0.3).astype(np.int64),
    }


@pytest.fixture
def codes_file(tmp_path):
    path = tmp_path / "codes.npz"
    np.savez(path, **_problem())
    return path


def _evaluate_json(path, *options):
    result = CliRunner().invoke(app, ["evaluate", str(path), "--format", "json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_has_a_key_per_figure(codes_file):
    output = _evaluate_json(codes_file, "--k", "10,100")
    for key in ("map", "map@10", "map@100", "precision@10", "recall@100", "ndcg@10", "precision@radius2"):
        assert isinstance(output[key], float)


def test_json_names_every_convention(codes_file):
    conventions = _evaluate_json(codes_file, "--preset", "matlab")["conventions"]
    assert (conventions["preset"], conventions["ties"], conventions["empty_queries"]) == (
        "matlab", "stable", "zero",
    )
    assert conventions["topk_normaliser"] == "retrieved"


def test_json_equals_library(codes_file):
    problem = _problem()
    expected = evaluate_codes(
        pack_codes(problem["query_codes"]), pack_codes(problem["db_codes"]),
        problem["query_labels"], problem["db_labels"],
        conventions="thuml", map_at=(50,), precision_at=(50,), ndcg_at=(50,),
    )["metrics"]
    output = _evaluate_json(codes_file, "--preset", "thuml", "--k", "50")
    assert {key: output[key] for key in expected} == expected


def test_options_override_preset(codes_file):
    conventions = _evaluate_json(codes_file, "--preset", "matlab", "--ties", "shuffle", "--seed", "3")["conventions"]
    assert (conventions["preset"], conventions["ties"], conventions["seed"]) == ("matlab+custom", "shuffle", 3)


@pytest.mark.parametrize("encoding", ["packed", "zero-one", "plus-minus", "bool"])
def test_code_encodings_give_the_same_figures(tmp_path, encoding):
    problem = _problem()
    arrays = dict(problem)
    for name in ("query_codes", "db_codes"):
        signs = problem[name]
        arrays[name] = {
            "packed": pack_codes(signs),
            "zero-one": (signs > 0).astype(np.int32),
            "plus-minus": signs.astype(np.float32),
            "bool": signs > 0,
        }[encoding]
    path = tmp_path / f"{encoding}.npz"
    np.savez(path, **arrays)
    baseline = tmp_path / "baseline.npz"
    np.savez(baseline, **problem)
    assert _evaluate_json(path)["map"] == _evaluate_json(baseline)["map"]


def test_table_output_lists_figures_and_conventions(codes_file):
    result = CliRunner().invoke(app, ["evaluate", str(codes_file), "--k", "10"])
    assert result.exit_code == 0
    assert "ndcg@10" in result.output
    assert "ties = tie-aware" in _flat(result)


def test_output_file_is_written(codes_file, tmp_path):
    target = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["evaluate", str(codes_file), "--format", "json", "--output", str(target)])
    assert result.exit_code == 0
    assert "map" in json.loads(target.read_text())


def _write(tmp_path, **replace):
    arrays = _problem()
    arrays.update(replace)
    arrays = {key: value for key, value in arrays.items() if value is not None}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "replace, message",
    [
        ({"db_labels": None}, "bad.npz lacks db_labels; it contains query_codes, db_codes, query_labels"),
        ({"query_codes": np.full((40, 16), 2)},
         "query_codes must hold 0/1 or -1/+1 bits, got 2 at row 0, column 0"),
        ({"db_codes": np.zeros((300, 12), dtype=np.int64)},
         "db_codes has 12 bit columns; code lengths must be multiples of 8"),
        ({"db_codes": np.ones((300, 32), dtype=np.int64)},
         "query_codes has 16-bit codes but db_codes has 32-bit codes"),
        ({"query_codes": np.ones(40)}, r"query_codes must be 2-D"),
        ({"db_labels": np.ones((299, 4))}, "db_labels has 299 rows but db_codes has 300 codes"),
        ({"query_labels": np.full((40, 4), 3)}, "query_labels must contain only 0 and 1, got 3"),
        ({"query_codes": np.array([[0, -1] * 8] * 40)}, "query_codes mixes 0 and -1 values"),
    ],
    ids=["missing-array", "bad-bit", "width-not-multiple-of-8", "width-mismatch", "codes-1d",
         "label-rows", "label-values", "mixed-encodings"],
)
def test_malformed_input_names_array_and_problem(tmp_path, replace, message):
    path = _write(tmp_path, **replace)
    result = CliRunner().invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2
    assert message in _flat(result)
    assert "Traceback" not in result.output


def test_not_an_archive_is_rejected(tmp_path):
    path = tmp_path / "codes.npz"
    path.write_text("query_codes,db_codes\n")
    with pytest.raises(CodesFileError, match="codes.npz is not a .npz archive"):
        load_codes_file(path)


def test_bit_matrix_with_stray_value_is_rejected(tmp_path):
    arrays = _problem()
    codes = (arrays["query_codes"] > 0).astype(np.uint8)
    codes[3, 5] = 2
    arrays["query_codes"] = codes
    path = tmp_path / "stray.npz"
    np.savez(path, **arrays)
    with pytest.raises(CodesFileError, match="query_codes looks like a 0/1 bit matrix but contains 2 at row 3, column 5"):
        load_codes_file(path)


def test_packed_format_refuses_bit_matrix(tmp_path):
    path = _write(tmp_path)
    with pytest.raises(CodesFileError, match="query_codes has dtype int64, but packed codes are uint8"):
        load_codes_file(path, codes_format="packed")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--preset", "dcmh"], "Unknown evaluation preset 'dcmh'"),
        (["--ties", "random"], "ties must be one of stable, shuffle, tie-aware, unstable; got 'random'"),
        (["--ties", "shuffle"], "ties='shuffle' needs a seed"),
        (["--seed", "1"], "--seed sets the tie order of --ties shuffle"),
        (["--k", "10,x"], "--k expects comma-separated integers"),
        (["--k", "100,0"], "--k expects positive rank cut-offs, for example --k 1000,5000; got '100,0'"),
        (["--format", "csv"], "--format must be table or json, got 'csv'"),
    ],
)
def test_bad_options_are_rejected(codes_file, options, message):
    result = CliRunner().invoke(app, ["evaluate", str(codes_file), *options])
    assert result.exit_code == 2
    assert message in _flat(result)
