import json
from contextlib import contextmanager

import numpy as np
import pytest

from hashbench.metrics import (
    PRESETS,
    evaluate_codes,
    hamming_distances,
    mean_average_precision,
    mean_average_precision_at_k,
    precision_at_n,
    precision_recall_by_radius,
)
from hashbench.progress import Progress


def _random_problem(seed, n_queries=120, n_db=700, n_bytes=2, n_labels=6):
    rng = np.random.RandomState(seed)
    query_codes = rng.randint(0, 256, size=(n_queries, n_bytes)).astype(np.uint8)
    db_codes = rng.randint(0, 256, size=(n_db, n_bytes)).astype(np.uint8)
    query_labels = (rng.rand(n_queries, n_labels) < 0.2).astype(np.int64)
    db_labels = (rng.rand(n_db, n_labels) < 0.2).astype(np.int64)
    query_labels[:3] = 0
    return query_codes, db_codes, query_labels, db_labels


@pytest.fixture(scope="module")
def problem():
    return _random_problem(0)


@pytest.fixture(scope="module")
def report(problem):
    return evaluate_codes(*problem, map_at=(100, 1000), precision_at=(50, 500, 5000))


def _flat_numbers(value):
    """Every number in a nested report, in a fixed order."""
    if isinstance(value, dict):
        return [number for key in sorted(value) for number in _flat_numbers(value[key])]
    if isinstance(value, list):
        return [number for item in value for number in _flat_numbers(item)]
    return [value] if isinstance(value, (int, float)) else []


def _all_plain_python(value):
    if value is None:
        return True
    if isinstance(value, dict):
        return all(type(key) is str and _all_plain_python(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_all_plain_python(item) for item in value)
    return type(value) in (str, int, float)


def test_report_is_plain_python(report):
    assert _all_plain_python(report)


def test_report_round_trips_through_json(report):
    assert json.loads(json.dumps(report)) == report


def test_report_metric_keys(report):
    assert list(report["metrics"]) == [
        "map", "map@100", "map@1000", "precision@50", "precision@500", "precision@5000",
        "recall@50", "recall@500", "recall@5000", "ndcg@100", "ndcg@1000",
        "precision@radius2", "recall@radius2", "empty_lookups@radius2",
    ]


def test_report_lists_capped_cutoffs(report):
    assert report["capped"] == {
        "map@1000": 700, "precision@5000": 700, "recall@5000": 700, "ndcg@1000": 700,
    }


def test_report_counts(report, problem):
    query_labels, db_labels = problem[2], problem[3]
    n_relevant = ((query_labels @ db_labels.T) > 0).sum(axis=1)
    n_empty = int((n_relevant == 0).sum())
    assert report["n_queries"] == 120
    assert report["n_database"] == 700
    assert report["n_bits"] == 16
    assert report["n_empty_queries"] == n_empty


def test_report_conventions_default_to_hashbench_preset(report):
    assert report["conventions"] == PRESETS["hashbench"].conventions.as_dict()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_report_names_preset(problem, preset):
    result = evaluate_codes(*problem, conventions=preset, map_at=(), precision_at=(), ndcg_at=())
    assert result["conventions"]["preset"] == preset


def test_report_matches_metric_functions(report, problem):
    assert report["metrics"]["map"] == mean_average_precision(*problem)
    assert report["metrics"]["map@100"] == mean_average_precision_at_k(*problem, 100)
    precision = precision_at_n(*problem, (50, 500, 5000))
    assert report["curves"]["precision_at_n"] == {
        "n": [50, 500, 5000],
        "precision": list(precision.precision),
        "recall": list(precision.recall),
    }
    curve = precision_recall_by_radius(*problem)
    assert report["curves"]["pr_radius"]["precision"] == curve.precision.tolist()


def test_report_capped_map_equals_map(report):
    assert report["metrics"]["map@1000"] == pytest.approx(report["metrics"]["map"], abs=1e-15)


def test_report_radius_curve_ends_at_full_recall(report):
    assert report["curves"]["pr_radius"]["radius"] == list(range(17))
    assert report["curves"]["pr_radius"]["recall"][-1] == 1.0


def test_report_full_radius_equals_capped_precision(report):
    # Radius n_bits retrieves the whole database, as does precision@5000 capped at 700.
    radius_precision = report["curves"]["pr_radius"]["precision"][-1]
    assert radius_precision == pytest.approx(report["metrics"]["precision@5000"], abs=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 120, 1000])
def test_report_independent_of_chunk_size(problem, report, chunk_size):
    chunked = evaluate_codes(
        *problem, map_at=(100, 1000), precision_at=(50, 500, 5000), chunk_size=chunk_size
    )
    np.testing.assert_allclose(
        _flat_numbers(chunked), _flat_numbers(report), rtol=0, atol=1e-12
    )


def test_report_invariant_to_xor_mask(problem, report):
    query_codes, db_codes, query_labels, db_labels = problem
    mask = np.array([0b10110010, 0b01011101], dtype=np.uint8)
    masked = evaluate_codes(
        query_codes ^ mask, db_codes ^ mask, query_labels, db_labels,
        map_at=(100, 1000), precision_at=(50, 500, 5000),
    )
    assert masked == report


def test_report_invariant_to_bit_permutation(problem, report):
    query_codes, db_codes, query_labels, db_labels = problem
    permutation = np.random.RandomState(1).permutation(16)

    def permute(codes):
        return np.packbits(np.unpackbits(codes, axis=1)[:, permutation], axis=1)

    permuted = evaluate_codes(
        permute(query_codes), permute(db_codes), query_labels, db_labels,
        map_at=(100, 1000), precision_at=(50, 500, 5000),
    )
    assert permuted == report


def test_stable_report_changes_with_database_order(problem):
    # Stable ties make the ranking depend on database order, so a shuffled database with many
    # ties at 16 bits gives a different mAP; the radius curve does not depend on order.
    query_codes, db_codes, query_labels, db_labels = problem
    order = np.random.RandomState(2).permutation(len(db_codes))
    options = {"map_at": (100, 1000), "precision_at": (50, 500, 5000), "conventions": "matlab"}
    report = evaluate_codes(*problem, **options)
    shuffled = evaluate_codes(query_codes, db_codes[order], query_labels, db_labels[order], **options)
    assert shuffled["metrics"]["map"] != report["metrics"]["map"]
    np.testing.assert_allclose(
        shuffled["curves"]["pr_radius"]["precision"],
        report["curves"]["pr_radius"]["precision"],
        rtol=0, atol=1e-15,
    )


def test_report_accepts_single_cutoffs(problem):
    result = evaluate_codes(*problem, map_at=10, precision_at=20, ndcg_at=30)
    assert list(result["metrics"]) == [
        "map", "map@10", "precision@20", "recall@20", "ndcg@30",
        "precision@radius2", "recall@radius2", "empty_lookups@radius2",
    ]


def test_report_accepts_no_cutoffs(problem):
    result = evaluate_codes(*problem, map_at=(), precision_at=(), ndcg_at=())
    assert list(result["metrics"]) == [
        "map", "precision@radius2", "recall@radius2", "empty_lookups@radius2",
    ]
    assert result["curves"]["precision_at_n"] == {"n": [], "precision": [], "recall": []}


class _RecordingProgress(Progress):
    def __init__(self):
        self.tasks = []

    @contextmanager
    def task(self, description, total=None):
        advances = []
        self.tasks.append((description, total, advances))
        yield advances.append


def test_report_advances_progress_per_chunk(problem):
    progress = _RecordingProgress()
    evaluate_codes(*problem, chunk_size=50, progress=progress)
    assert len(progress.tasks) == 1
    description, total, advances = progress.tasks[0]
    assert total == 120
    assert advances == [50, 50, 20]


def test_report_equals_distance_table_report(problem, report):
    query_codes, db_codes, query_labels, db_labels = problem
    table = hamming_distances(query_codes, db_codes)
    from_table = evaluate_codes(
        None, None, query_labels, db_labels, distances=table, n_bits=16,
        map_at=(100, 1000), precision_at=(50, 500, 5000),
    )
    assert from_table == report


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

CODES_8 = np.zeros((2, 1), dtype=np.uint8)
DB_8 = np.zeros((3, 1), dtype=np.uint8)
QUERY_LABELS = np.array([[1, 0], [0, 1]])
DB_LABELS = np.array([[1, 0], [0, 1], [1, 1]])


@pytest.mark.parametrize(
    "arrays, error, match",
    [
        ((CODES_8.astype(np.int8), DB_8, QUERY_LABELS, DB_LABELS), TypeError,
         r"query_codes must have dtype uint8 \(packed codes\), got int8"),
        ((CODES_8, np.zeros((3, 2), np.uint8), QUERY_LABELS, DB_LABELS), ValueError,
         r"query_codes with 1 bytes \(8 bits\) and db_codes with 2 bytes \(16 bits\)"),
        ((CODES_8[:0], DB_8, QUERY_LABELS[:0], DB_LABELS), ValueError,
         r"query_codes is empty \(0 queries\)"),
        ((CODES_8, DB_8[:0], QUERY_LABELS, DB_LABELS[:0]), ValueError,
         r"db_codes is empty \(0 database items\)"),
        ((CODES_8, DB_8, np.array([1, 0]), DB_LABELS), ValueError,
         r"query_labels must be 2-D of shape \(n_items, n_labels\) with 0/1 entries, "
         r"got shape \(2,\)"),
        ((CODES_8, DB_8, QUERY_LABELS, DB_LABELS[:2]), ValueError,
         "db_labels has 2 rows but db_codes has 3 codes"),
        ((CODES_8, DB_8, QUERY_LABELS, np.array([[1, 0], [0, 2], [1, 1]])), ValueError,
         "db_labels must contain only 0 and 1, got 2 at row 1, column 1"),
        ((CODES_8, DB_8, np.array([[1.0, np.nan], [0, 1]]), DB_LABELS), ValueError,
         "query_labels must contain only 0 and 1, got nan at row 0, column 1"),
        ((CODES_8, DB_8, QUERY_LABELS, np.ones((3, 3))), ValueError,
         "query_labels has 2 label columns but db_labels has 3"),
        ((CODES_8, DB_8, QUERY_LABELS[:, :0], DB_LABELS[:, :0]), ValueError,
         "query_labels has no label columns"),
        ((CODES_8, DB_8, np.array([["a", "b"], ["c", "d"]]), DB_LABELS), TypeError,
         "query_labels must be a numeric or boolean 0/1 array, got dtype <U1"),
    ],
    ids=[
        "code-dtype", "code-width", "no-queries", "no-database", "labels-1d", "label-rows",
        "label-value", "label-nan", "label-columns", "no-label-columns", "label-strings",
    ],
)
def test_evaluate_rejects_invalid_inputs(arrays, error, match):
    with pytest.raises(error, match=match):
        evaluate_codes(*arrays)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"map_at": (100, 0)}, "each value of map_at must be a positive integer, got 0"),
        ({"map_at": (-1,)}, "each value of map_at must be a positive integer, got -1"),
        ({"precision_at": (500, 2.5)},
         "each value of precision_at must be a positive integer, got 2.5"),
        ({"precision_at": None},
         "precision_at must be a positive integer or a sequence of positive integers, got None"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer, got 0"),
        ({"chunk_size": "256"}, "chunk_size must be a positive integer, got '256'"),
    ],
)
def test_evaluate_rejects_invalid_options(options, match):
    with pytest.raises(ValueError, match=match):
        evaluate_codes(CODES_8, DB_8, QUERY_LABELS, DB_LABELS, **options)
