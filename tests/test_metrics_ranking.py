"""Figures under the ``matlab`` preset (stable ties, empty queries 0, AP@k over retrieved
relevant items), checked by hand and against a plain re-computation of the MATLAB code."""

from functools import partial

import numpy as np
import pytest
import scipy.sparse as sp

from hashbench import metrics
from hashbench.metrics import scoring

mean_average_precision = partial(metrics.mean_average_precision, conventions="matlab")
mean_average_precision_at_k = partial(metrics.mean_average_precision_at_k, conventions="matlab")
precision_at_n = partial(metrics.precision_at_n, conventions="matlab")
precision_recall_by_radius = partial(metrics.precision_recall_by_radius, conventions="matlab")


def _codes(*bit_strings):
    """Pack codes written as bit strings, most significant bit first."""
    bits = np.array([[int(bit) for bit in bit_string] for bit_string in bit_strings])
    return np.packbits(bits.astype(np.uint8), axis=1)


# A hand-checkable database of 5 items with 8-bit codes and 2 labels.
#
#   item  code      labels  distance to q1 (00000000)  relevant to q1 (label 0)
#   0     00000011  1 1     2                          yes
#   1     00000001  0 1     1                          no
#   2     00000000  1 0     0                          yes
#   3     10000000  1 0     1                          yes
#   4     00000111  0 1     3                          no
#
# Stable ranking for q1: distance 0 -> item 2; distance 1 -> items 1, 3 in database order;
# distance 2 -> item 0; distance 3 -> item 4. Ranked relevance: 1 0 1 1 0.
# Ranking item 3 before item 1 would give 1 1 0 1 0 instead, so the tie order matters.
#
# q2 (11111111, label 1): distances 6, 7, 8, 7, 5 and relevance 1, 1, 0, 0, 1.
# Ranking: item 4 (5), item 0 (6), items 1, 3 (7), item 2 (8). Ranked relevance: 1 1 1 0 0.
DB_CODES = _codes("00000011", "00000001", "00000000", "10000000", "00000111")
DB_LABELS = np.array([[1, 1], [0, 1], [1, 0], [1, 0], [0, 1]])
Q1_CODES = _codes("00000000")
Q1_LABELS = np.array([[1, 0]])
Q2_CODES = _codes("00000000", "11111111")
Q2_LABELS = np.array([[1, 0], [0, 1]])


def test_map_single_query_hand_computed():
    # Relevant ranks 1, 3, 4: AP = (1/1 + 2/3 + 3/4) / 3 = (12 + 8 + 9) / 36 = 29/36.
    value = mean_average_precision(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS)
    assert value == pytest.approx(29 / 36, abs=1e-15)


def test_map_two_queries_hand_computed():
    # q1: 29/36 as above. q2: relevant ranks 1, 2, 3, AP = (1 + 1 + 1) / 3 = 1.
    # mAP = (29/36 + 36/36) / 2 = 65/72.
    value = mean_average_precision(Q2_CODES, DB_CODES, Q2_LABELS, DB_LABELS)
    assert value == pytest.approx(65 / 72, abs=1e-15)


@pytest.mark.parametrize(
    "k, expected",
    [
        # Top 1 is 1: AP@1 = (1/1) / 1 = 1.
        (1, 1.0),
        # Top 2 is 1 0: one relevant retrieved, AP@2 = (1/1) / 1 = 1.
        (2, 1.0),
        # Top 3 is 1 0 1: AP@3 = (1/1 + 2/3) / 2 = 5/6.
        (3, 5 / 6),
        # Top 4 is 1 0 1 1: AP@4 = (1/1 + 2/3 + 3/4) / 3 = 29/36.
        (4, 29 / 36),
        # k = 10 exceeds the 5 items, so the whole ranking is used: 29/36.
        (10, 29 / 36),
    ],
)
def test_map_at_k_hand_computed(k, expected):
    value = mean_average_precision_at_k(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS, k)
    assert value == pytest.approx(expected, abs=1e-15)


def test_map_at_k_zero_when_top_k_irrelevant():
    # All items tie, so the ranking is database order: relevance 0 0 1.
    # Nothing relevant in the top 2, so AP@2 = 0, although the query has a relevant item.
    db_codes = _codes("00000000", "00000000", "00000000")
    db_labels = np.array([[0, 1], [0, 1], [1, 0]])
    value = mean_average_precision_at_k(Q1_CODES, db_codes, Q1_LABELS, db_labels, 2)
    assert value == 0.0


def test_map_at_k_divides_by_relevant_retrieved():
    # Ranked relevance 1 0 0 1 (all tied): AP@2 = (1/1) / 1 = 1, not (1/1) / 2 = 0.5 as a
    # normaliser of all relevant items would give.
    db_codes = _codes("00000000", "00000000", "00000000", "00000000")
    db_labels = np.array([[1, 0], [0, 1], [0, 1], [1, 0]])
    value = mean_average_precision_at_k(Q1_CODES, db_codes, Q1_LABELS, db_labels, 2)
    assert value == 1.0


@pytest.mark.parametrize(
    "n, expected_precision, expected_recall",
    [
        # q1 ranked relevance 1 0 1 1 0 with 3 relevant items.
        (1, 1 / 1, 1 / 3),
        (2, 1 / 2, 1 / 3),
        (3, 2 / 3, 2 / 3),
        (4, 3 / 4, 3 / 3),
        (5, 3 / 5, 3 / 3),
    ],
)
def test_precision_at_n_hand_computed(n, expected_precision, expected_recall):
    result = precision_at_n(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS, n)
    assert result.precision == pytest.approx((expected_precision,), abs=1e-15)
    assert result.recall == pytest.approx((expected_recall,), abs=1e-15)
    assert result.capped == {}


def test_precision_at_n_caps_at_database_size():
    # N = 10 and 500 exceed the 5 items, so both use the top 5: precision 3/5.
    result = precision_at_n(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS, (2, 10, 500))
    assert result.n == (2, 10, 500)
    assert result.precision == pytest.approx((1 / 2, 3 / 5, 3 / 5), abs=1e-15)
    assert result.capped == {10: 5, 500: 5}


def test_precision_at_n_two_queries_averages():
    # q1 top 2: 1 0 -> 1/2; q2 top 2: 1 1 -> 1. Mean (1/2 + 1) / 2 = 3/4.
    # Recall@2: q1 1/3, q2 2/3. Mean (1/3 + 2/3) / 2 = 1/2.
    result = precision_at_n(Q2_CODES, DB_CODES, Q2_LABELS, DB_LABELS, 2)
    assert result.precision == pytest.approx((3 / 4,), abs=1e-15)
    assert result.recall == pytest.approx((1 / 2,), abs=1e-15)


def test_precision_at_n_default_cutoffs():
    result = precision_at_n(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS)
    assert result.n == (500, 1000, 2000, 3000, 4000, 5000)
    assert result.precision == pytest.approx((3 / 5,) * 6, abs=1e-15)


def test_precision_at_n_computes_repeats_once():
    result = precision_at_n(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS, (3, 1, 3))
    assert result.n == (3, 1)


def test_radius_curve_single_query_hand_computed():
    # q1 pairs by distance: 0 -> 1 (1 relevant), 1 -> 2 (1), 2 -> 1 (1), 3 -> 1 (0).
    # Within r: pairs 1, 3, 4, 5, 5, ...; relevant 1, 2, 3, 3, 3, ...; 3 relevant in total.
    curve = precision_recall_by_radius(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS)
    np.testing.assert_array_equal(curve.radius, np.arange(9))
    np.testing.assert_allclose(curve.precision, [1, 2 / 3, 3 / 4] + [3 / 5] * 6, atol=1e-15)
    np.testing.assert_allclose(curve.recall, [1 / 3, 2 / 3] + [1] * 7, atol=1e-15)


def test_radius_curve_is_micro_averaged():
    # Pairs of q1 and q2 pooled by distance (all, relevant):
    #   0: 1, 1   1: 2, 1   2: 1, 1   3: 1, 0   4: 0, 0   5: 1, 1   6: 1, 1   7: 2, 1   8: 1, 0
    # Within r, all: 1 3 4 5 5 6 7 9 10; relevant: 1 2 3 3 3 4 5 6 6 (6 relevant in total).
    # A macro average would give 0.5 at r = 0, since q2 has no pair within radius 0.
    curve = precision_recall_by_radius(Q2_CODES, DB_CODES, Q2_LABELS, DB_LABELS)
    expected_precision = [1 / 1, 2 / 3, 3 / 4, 3 / 5, 3 / 5, 4 / 6, 5 / 7, 6 / 9, 6 / 10]
    expected_recall = [1 / 6, 2 / 6, 3 / 6, 3 / 6, 3 / 6, 4 / 6, 5 / 6, 6 / 6, 6 / 6]
    np.testing.assert_allclose(curve.precision, expected_precision, atol=1e-15)
    np.testing.assert_allclose(curve.recall, expected_recall, atol=1e-15)


def test_radius_zero_without_pairs_inside():
    # q2 (11111111) lies at distance >= 5 from every item, so radii 0..4 retrieve nothing.
    curve = precision_recall_by_radius(Q2_CODES[1:], DB_CODES, Q2_LABELS[1:], DB_LABELS)
    np.testing.assert_array_equal(curve.precision[:5], np.zeros(5))
    np.testing.assert_array_equal(curve.recall[:5], np.zeros(5))


def test_ties_keep_database_order():
    # All four items tie at distance 0, so the ranking is database order: relevance 0 1 0 1.
    # AP = (1/2 + 2/4) / 2 = 1/2. Relevant items first would give 1.
    db_codes = _codes(*["00000000"] * 4)
    db_labels = np.array([[0, 1], [1, 0], [0, 1], [1, 0]])
    value = mean_average_precision(Q1_CODES, db_codes, Q1_LABELS, db_labels)
    assert value == pytest.approx(1 / 2, abs=1e-15)


def test_ties_keep_database_order_reversed():
    # The same tied items in reverse database order: relevance 1 0 1 0, AP = (1 + 2/3) / 2 = 5/6.
    db_codes = _codes(*["00000000"] * 4)
    db_labels = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    value = mean_average_precision(Q1_CODES, db_codes, Q1_LABELS, db_labels)
    assert value == pytest.approx(5 / 6, abs=1e-15)


def test_empty_query_scores_zero():
    # q3 has no label, so it shares none with any item. It scores 0 and still counts:
    # mAP = (29/36 + 1 + 0) / 3 = 65/108.
    query_codes = _codes("00000000", "11111111", "00000000")
    query_labels = np.array([[1, 0], [0, 1], [0, 0]])
    value = mean_average_precision(query_codes, DB_CODES, query_labels, DB_LABELS)
    assert value == pytest.approx(65 / 108, abs=1e-15)


@pytest.mark.parametrize(
    "metric",
    [
        lambda *arrays: mean_average_precision(*arrays),
        lambda *arrays: mean_average_precision_at_k(*arrays, 3),
        lambda *arrays: precision_at_n(*arrays, (1, 3, 100)).precision,
        lambda *arrays: precision_at_n(*arrays, (1, 3, 100)).recall,
        lambda *arrays: tuple(precision_recall_by_radius(*arrays).recall),
    ],
    ids=["map", "map@3", "precision@N", "recall@N", "radius-recall"],
)
def test_empty_queries_only_score_zero(metric):
    # Label 1 appears in no database item, so no query has a relevant item.
    db_labels = np.array([[1, 0]] * 5)
    query_labels = np.array([[0, 1], [0, 1]])
    value = metric(Q2_CODES, DB_CODES, query_labels, db_labels)
    assert np.all(np.asarray(value) == 0)


@pytest.mark.parametrize("relevant, expected", [(1, 1.0), (0, 0.0)], ids=["relevant", "not"])
def test_single_item_database(relevant, expected):
    db_codes = _codes("00000001")
    db_labels = np.array([[relevant, 1 - relevant]])
    assert mean_average_precision(Q1_CODES, db_codes, Q1_LABELS, db_labels) == expected
    result = precision_at_n(Q1_CODES, db_codes, Q1_LABELS, db_labels, 500)
    assert result.precision == (expected,)
    assert result.capped == {500: 1}


def test_perfect_ranking_scores_one():
    # Relevant items at distance 0, the others at distance 8: every relevant item ranks first.
    db_codes = _codes("00000000", "11111111", "00000000", "11111111")
    db_labels = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    assert mean_average_precision(Q1_CODES, db_codes, Q1_LABELS, db_labels) == 1.0
    assert mean_average_precision_at_k(Q1_CODES, db_codes, Q1_LABELS, db_labels, 2) == 1.0


def test_sparse_labels_match_dense():
    dense = mean_average_precision(Q2_CODES, DB_CODES, Q2_LABELS, DB_LABELS)
    sparse = mean_average_precision(
        Q2_CODES, DB_CODES, sp.csr_matrix(Q2_LABELS), sp.csr_matrix(DB_LABELS)
    )
    assert sparse == dense


def test_boolean_and_float_labels_match_integer():
    expected = mean_average_precision(Q2_CODES, DB_CODES, Q2_LABELS, DB_LABELS)
    as_bool = mean_average_precision(
        Q2_CODES, DB_CODES, Q2_LABELS.astype(bool), DB_LABELS.astype(bool)
    )
    as_float = mean_average_precision(
        Q2_CODES, DB_CODES, Q2_LABELS.astype(np.float32), DB_LABELS.astype(np.float64)
    )
    assert as_bool == expected
    assert as_float == expected


# ---------------------------------------------------------------------------------------------
# Random codes against a plain-loop reference
# ---------------------------------------------------------------------------------------------


def _random_problem(seed, n_queries=300, n_db=2000, n_bits=16, n_labels=5):
    """Random short codes (many ties) and sparse labels, with a few queries without labels."""
    rng = np.random.RandomState(seed)
    query_codes = rng.randint(0, 256, size=(n_queries, n_bits // 8)).astype(np.uint8)
    db_codes = rng.randint(0, 256, size=(n_db, n_bits // 8)).astype(np.uint8)
    query_labels = (rng.rand(n_queries, n_labels) < 0.15).astype(np.int64)
    db_labels = (rng.rand(n_db, n_labels) < 0.15).astype(np.int64)
    query_labels[:5] = 0
    return query_codes, db_codes, query_labels, db_labels


def _reference_scores(query_codes, db_codes, query_labels, db_labels, ks, ns):
    """Score each query with plain loops: distances, stable argsort, then per-rank sums."""
    query_bits = np.unpackbits(query_codes, axis=1).astype(np.int64)
    db_bits = np.unpackbits(db_codes, axis=1).astype(np.int64)
    n_db, n_bits = db_bits.shape
    ap, ap_at = [], {k: [] for k in ks}
    precision_at, recall_at = {n: [] for n in ns}, {n: [] for n in ns}
    pairs_at, relevant_at = np.zeros(n_bits + 1), np.zeros(n_bits + 1)

    for query, labels in zip(query_bits, query_labels):
        distances = (query[None, :] != db_bits).sum(axis=1)
        relevant = (labels[None, :] * db_labels).sum(axis=1) > 0
        ranked = relevant[np.argsort(distances, kind="stable")]
        n_relevant = int(ranked.sum())

        hits, precision_sum, precision_sums = 0, 0.0, []
        for rank, is_relevant in enumerate(ranked, start=1):
            if is_relevant:
                hits += 1
                precision_sum += hits / rank
            precision_sums.append((hits, precision_sum))
        ap.append(precision_sum / n_relevant if n_relevant else 0.0)
        for k in ks:
            hits_k, sum_k = precision_sums[min(k, n_db) - 1]
            ap_at[k].append(sum_k / hits_k if hits_k else 0.0)
        for n in ns:
            hits_n = precision_sums[min(n, n_db) - 1][0]
            precision_at[n].append(hits_n / min(n, n_db))
            recall_at[n].append(hits_n / n_relevant if n_relevant else 0.0)
        for distance, is_relevant in zip(distances, relevant):
            pairs_at[distance] += 1
            relevant_at[distance] += is_relevant

    pairs_within, relevant_within = np.cumsum(pairs_at), np.cumsum(relevant_at)
    return {
        "map": np.mean(ap),
        "map@": {k: np.mean(ap_at[k]) for k in ks},
        "precision@": {n: np.mean(precision_at[n]) for n in ns},
        "recall@": {n: np.mean(recall_at[n]) for n in ns},
        "radius_precision": np.where(
            pairs_within > 0, relevant_within / np.maximum(pairs_within, 1), 0.0
        ),
        "radius_recall": relevant_within / relevant_within[-1],
    }


@pytest.fixture(scope="module")
def random_problem():
    return _random_problem(0)


@pytest.fixture(scope="module")
def reference(random_problem):
    return _reference_scores(*random_problem, ks=(1, 100, 1000, 5000), ns=(1, 500, 2000, 5000))


def test_map_matches_reference(random_problem, reference):
    assert mean_average_precision(*random_problem) == pytest.approx(reference["map"], abs=1e-12)


@pytest.mark.parametrize("k", [1, 100, 1000, 5000])
def test_map_at_k_matches_reference(random_problem, reference, k):
    value = mean_average_precision_at_k(*random_problem, k)
    assert value == pytest.approx(reference["map@"][k], abs=1e-12)


def test_precision_at_n_matches_reference(random_problem, reference):
    ns = (1, 500, 2000, 5000)
    result = precision_at_n(*random_problem, ns)
    assert result.precision == pytest.approx([reference["precision@"][n] for n in ns], abs=1e-12)
    assert result.recall == pytest.approx([reference["recall@"][n] for n in ns], abs=1e-12)
    assert result.capped == {5000: 2000}


def test_radius_curve_matches_reference(random_problem, reference):
    curve = precision_recall_by_radius(*random_problem)
    np.testing.assert_allclose(curve.precision, reference["radius_precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.recall, reference["radius_recall"], rtol=0, atol=1e-12)


# Labels are packed 8 to a byte, so 8, 9 and 80 labels test one, two and ten label bytes.
@pytest.mark.parametrize("n_labels", [1, 8, 9, 21, 80])
def test_map_matches_reference_for_label_counts(n_labels):
    problem = _random_problem(1, n_queries=40, n_db=300, n_labels=n_labels)
    expected = _reference_scores(*problem, ks=(), ns=())["map"]
    assert mean_average_precision(*problem) == pytest.approx(expected, abs=1e-12)


def test_ranking_blocks_match_single_block(random_problem, monkeypatch):
    expected = mean_average_precision(*random_problem)
    # 2000 database items per block: one query per ranked block.
    monkeypatch.setattr(scoring, "_BLOCK_PAIRS", 2000)
    assert mean_average_precision(*random_problem) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, match",
    [
        (0, "k must be a positive integer, got 0"),
        (-3, "k must be a positive integer, got -3"),
        (2.5, "k must be a positive integer, got 2.5"),
        (True, "k must be a positive integer, got True"),
        (None, "k must be a positive integer, got None"),
    ],
)
def test_map_at_k_rejects_invalid_k(k, match):
    with pytest.raises(ValueError, match=match):
        mean_average_precision_at_k(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS, k)


@pytest.mark.parametrize(
    "n, match",
    [
        ((500, 0), "each value of n must be a positive integer, got 0"),
        ("500", "n must be a positive integer or a sequence of positive integers, got '500'"),
        (500.0, "n must be a positive integer or a sequence of positive integers, got 500.0"),
    ],
)
def test_precision_at_n_rejects_invalid_n(n, match):
    with pytest.raises(ValueError, match=match):
        precision_at_n(Q1_CODES, DB_CODES, Q1_LABELS, DB_LABELS, n)
