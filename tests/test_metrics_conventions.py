"""Evaluation conventions: tie handling, empty queries, the mAP@k normaliser, NDCG and presets.

Each convention is checked by hand on tiny problems and against an independent plain-loop
re-computation. Tie-aware values are checked against the mean over every order of the tied items.
"""

import itertools
import math

import numpy as np
import pytest

from hashbench.metrics import (
    PRESETS,
    Conventions,
    evaluate_codes,
    mean_average_precision,
    mean_average_precision_at_k,
    ndcg_at_k,
    precision_at_n,
    precision_recall_by_radius,
    precision_within_radius,
    resolve_conventions,
)

TIE_AWARE = Conventions(ties="tie-aware", empty_queries="zero", topk_normaliser="min-k-relevant")


def _codes(*values):
    return np.array(values, dtype=np.uint8).reshape(-1, 1)


# One query (code 0, label 0) and four items at distances 0, 0, 1, 1; items 1 and 2 are relevant.
# Stable ranking: 0 1 1 0, AP = (1/2 + 2/3) / 2. Tie-aware: the relevant item of the first pair
# sits at rank 1 or 2 (mean precision 3/4), that of the second pair at rank 3 or 4 with one
# relevant item before it (mean precision (2/3 + 2/4) / 2), AP = (3/4 + 7/12) / 2 = 2/3.
TIED = (_codes(0), _codes(0, 0, 1, 1), np.array([[1]]), np.array([[0], [1], [1], [0]]))


@pytest.mark.parametrize("ties, expected", [("stable", (1 / 2 + 2 / 3) / 2), ("tie-aware", 2 / 3)])
def test_map_hand_computed_by_ties(ties, expected):
    value = mean_average_precision(*TIED, conventions=Conventions(ties=ties))
    assert value == pytest.approx(expected, abs=1e-12)


def test_unstable_ties_follow_numpy_argsort():
    ranked = np.array([0, 1, 1, 0])[np.argsort(np.array([0, 0, 1, 1], dtype=np.float32))]
    ranks = np.flatnonzero(ranked) + 1
    expected = np.mean(np.arange(1, len(ranks) + 1) / ranks)
    value = mean_average_precision(*TIED, conventions=Conventions(ties="unstable"))
    assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "k, normaliser, expected",
    [
        (1, "min-k-relevant", 0.5),  # the first pair puts its relevant item first half the time
        (1, "retrieved", 0.5),  # AP@1 is 1 when it does and 0/0 (counted 0) when it does not
        (2, "min-k-relevant", 0.75 / 2),  # sum 3/4 over min(2, 2) relevant items
        (2, "retrieved", 0.75),  # exactly one relevant item in the top 2, always
        (3, "min-k-relevant", (0.75 + 0.5 * 2 / 3) / 2),
    ],
)
def test_tie_aware_map_at_k_hand_computed(k, normaliser, expected):
    conventions = Conventions(ties="tie-aware", topk_normaliser=normaliser)
    value = mean_average_precision_at_k(*TIED, k, conventions=conventions)
    assert value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n, expected", [(1, 0.5), (2, 0.5), (3, 1.5 / 3), (4, 0.5), (9, 0.5)])
def test_tie_aware_precision_at_n_hand_computed(n, expected):
    result = precision_at_n(*TIED, n, conventions=TIE_AWARE)
    assert result.precision[0] == pytest.approx(expected, abs=1e-12)


def test_all_items_tied_gives_base_rate():
    # Every item at distance 0: any order is equally likely, so precision@N is the base rate.
    labels = np.array([[1], [0], [1], [0], [0]])
    problem = (_codes(7), _codes(7, 7, 7, 7, 7), np.array([[1]]), labels)
    result = precision_at_n(*problem, (1, 2, 5), conventions=TIE_AWARE)
    assert result.precision == pytest.approx((0.4, 0.4, 0.4))


def test_single_item_database():
    problem = (_codes(0, 1), _codes(3), np.array([[1, 0], [0, 1]]), np.array([[0, 1]]))
    assert mean_average_precision(*problem, conventions=TIE_AWARE) == 0.5
    assert mean_average_precision(*problem, conventions="thuml") == 1.0


def test_k_above_database_equals_map():
    value = mean_average_precision_at_k(*TIED, 50, conventions=TIE_AWARE)
    assert value == pytest.approx(mean_average_precision(*TIED, conventions=TIE_AWARE), abs=1e-15)


# ---------------------------------------------------------------------------------------------
# Empty queries
# ---------------------------------------------------------------------------------------------

# Query 0 has a relevant item, query 1 (label 1) has none.
WITH_EMPTY = (_codes(0, 0), _codes(0, 1), np.array([[1, 0], [0, 1]]), np.array([[1, 0], [1, 0]]))


@pytest.mark.parametrize("empty_queries, expected", [("zero", 0.5), ("drop", 1.0)])
def test_empty_query_counts_zero_or_is_dropped(empty_queries, expected):
    conventions = Conventions(ties="stable", empty_queries=empty_queries)
    assert mean_average_precision(*WITH_EMPTY, conventions=conventions) == expected


def test_only_empty_queries_dropped_gives_none():
    conventions = Conventions(empty_queries="drop")
    problem = (_codes(0), _codes(0, 1), np.array([[0, 1]]), np.array([[1, 0], [1, 0]]))
    assert mean_average_precision(*problem, conventions=conventions) is None


def test_drop_leaves_out_top_k_without_relevant_item():
    # thuml drops a query whose top k contains no relevant item, though the database has one.
    problem = (_codes(0, 0), _codes(0, 3), np.array([[1, 0], [0, 1]]), np.array([[1, 0], [0, 1]]))
    conventions = Conventions(ties="stable", empty_queries="drop", topk_normaliser="retrieved")
    assert mean_average_precision_at_k(*problem, 1, conventions=conventions) == 1.0


# ---------------------------------------------------------------------------------------------
# Radius figures
# ---------------------------------------------------------------------------------------------


def test_macro_radius_differs_from_micro():
    # Query 0 retrieves 1 relevant item at radius 0; query 1 retrieves 3 items, 1 relevant.
    problem = (
        _codes(0, 255),
        _codes(0, 255, 255, 255),
        np.array([[1, 0], [0, 1]]),
        np.array([[1, 0], [0, 1], [1, 0], [1, 0]]),
    )
    curve = precision_recall_by_radius(*problem, conventions=TIE_AWARE)
    assert curve.precision[0] == pytest.approx(2 / 4)
    assert curve.precision_macro[0] == pytest.approx((1 + 1 / 3) / 2)


@pytest.mark.parametrize("empty_queries, expected", [("zero", 0.5), ("drop", 1.0)])
def test_empty_lookup_convention(empty_queries, expected):
    # Query 1 finds nothing within radius 2 (its only item lies at distance 8).
    problem = (_codes(0, 255), _codes(0, 0), np.array([[1], [1]]), np.array([[1], [1]]))
    figures = precision_within_radius(*problem, conventions=Conventions(empty_queries=empty_queries))
    assert figures["precision@radius2"] == expected
    assert figures["empty_lookups@radius2"] == 0.5


# ---------------------------------------------------------------------------------------------
# NDCG
# ---------------------------------------------------------------------------------------------


def test_ndcg_hand_computed():
    # Query labels {0, 1}. Ranked items share 1, 2 and 0 labels: gains 1, 3, 0.
    # DCG@3 = 1 + 3 / log2(3); ideal order 3, 1, 0: 3 + 1 / log2(3).
    problem = (
        _codes(0),
        _codes(0, 1, 3),
        np.array([[1, 1]]),
        np.array([[1, 0], [1, 1], [0, 0]]),
    )
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg_at_k(*problem, 3, conventions="matlab") == pytest.approx(expected)


def test_ndcg_of_ideal_ranking_is_one():
    problem = (_codes(0), _codes(0, 1, 3), np.array([[1, 1]]), np.array([[1, 1], [1, 0], [0, 0]]))
    assert ndcg_at_k(*problem, 2, conventions=TIE_AWARE) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Independent re-computations with plain loops
# ---------------------------------------------------------------------------------------------


def _random_problem(seed, n_queries=6, n_db=7, n_labels=3, n_distinct=3):
    """A problem with heavy ties: few distinct 8-bit codes."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, size=n_distinct, dtype=np.uint8)
    query_codes = rng.choice(palette, size=(n_queries, 1))
    db_codes = rng.choice(palette, size=(n_db, 1))
    query_labels = (rng.random((n_queries, n_labels)) < 0.4).astype(int)
    db_labels = (rng.random((n_db, n_labels)) < 0.4).astype(int)
    return query_codes, db_codes, query_labels, db_labels


def _distance(a, b):
    return bin(int(a[0]) ^ int(b[0])).count("1")


def _query_figures(ranked, gains, ideal_gains, k, normaliser):
    """AP, AP@k, P@k and DCG-based NDCG@k of one ranked list, with None for 0/0."""
    n_relevant = sum(ranked)
    hits, precision_sum, precision_sum_k = 0, 0.0, 0.0
    for rank, relevant in enumerate(ranked, start=1):
        if relevant:
            hits += 1
            precision_sum += hits / rank
            if rank <= k:
                precision_sum_k += hits / rank
    hits_k = sum(ranked[:k])
    denominator = hits_k if normaliser == "retrieved" else min(k, n_relevant)
    dcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains[:k], start=1))
    ideal = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(ideal_gains[:k], start=1))
    return {
        "ap": precision_sum / n_relevant if n_relevant else None,
        "ap@k": precision_sum_k / denominator if denominator else None,
        "p@k": hits_k / min(k, len(ranked)) if n_relevant else None,
        "ndcg@k": dcg / ideal if ideal else None,
    }


def _tie_orders(distances):
    """Every order of the database that ranks by distance, ties in any order."""
    groups = [
        [j for j in range(len(distances)) if distances[j] == d] for d in sorted(set(distances))
    ]
    for choice in itertools.product(*(itertools.permutations(group) for group in groups)):
        yield [j for group in choice for j in group]


def _reference(problem, k, conventions):
    """Every figure by plain loops; tie-aware as the mean over all tie orders (0/0 counted 0)."""
    query_codes, db_codes, query_labels, db_labels = problem
    per_query = []
    for i in range(len(query_codes)):
        distances = [_distance(query_codes[i], code) for code in db_codes]
        shared = [int(np.dot(query_labels[i], labels)) for labels in db_labels]
        relevant = [s > 0 for s in shared]
        ideal_gains = sorted((2.0**s - 1 for s in shared), reverse=True)
        if conventions.ties == "tie-aware":
            orders = list(_tie_orders(distances))
        else:
            orders = [sorted(range(len(db_codes)), key=lambda j: distances[j])]
        figures = [
            _query_figures(
                [relevant[j] for j in order], [2.0**shared[j] - 1 for j in order],
                ideal_gains, k, conventions.topk_normaliser,
            )
            for order in orders
        ]
        merged = {}
        for name in figures[0]:
            values = [f[name] for f in figures]
            undefined = all(v is None for v in values) or not any(relevant)
            merged[name] = None if undefined else float(np.mean([v or 0.0 for v in values]))
        per_query.append(merged)

    result = {}
    for name in per_query[0]:
        values = [q[name] for q in per_query]
        if conventions.empty_queries == "zero":
            result[name] = float(np.mean([v or 0.0 for v in values]))
        else:
            kept = [v for v in values if v is not None]
            result[name] = float(np.mean(kept)) if kept else None
    return result


CONVENTION_GRID = [
    Conventions(ties=ties, empty_queries=empty, topk_normaliser=normaliser)
    for ties in ("stable", "tie-aware")
    for empty in ("zero", "drop")
    for normaliser in ("retrieved", "min-k-relevant")
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 6])
@pytest.mark.parametrize(
    "conventions", CONVENTION_GRID,
    ids=[f"{c.ties}-{c.empty_queries}-{c.topk_normaliser}" for c in CONVENTION_GRID],
)
def test_figures_match_plain_loops(seed, k, conventions):
    problem = _random_problem(seed)
    expected = _reference(problem, k, conventions)
    report = evaluate_codes(
        *problem, conventions=conventions, map_at=k, precision_at=k, ndcg_at=k
    )["metrics"]
    assert report["map"] == pytest.approx(expected["ap"], abs=1e-12)
    assert report[f"map@{k}"] == pytest.approx(expected["ap@k"], abs=1e-12)
    assert report[f"precision@{k}"] == pytest.approx(expected["p@k"], abs=1e-12)
    assert report[f"ndcg@{k}"] == pytest.approx(expected["ndcg@k"], abs=1e-12)


# The legacy evaluation functions, re-typed from their repositories as the presets describe them.


def _calc_top_map(db_codes_pm, query_codes_pm, db_labels, query_labels, topk):
    """DeepHash-pytorch ``CalcTopMap``: np.argsort per query, AP@k over hits in the top k."""
    n_bits = query_codes_pm.shape[1]
    total = 0.0
    for i in range(query_labels.shape[0]):
        ground_truth = (query_labels[i] @ db_labels.T > 0).astype(np.float32)
        hamming = 0.5 * (n_bits - query_codes_pm[i] @ db_codes_pm.T)
        ground_truth = ground_truth[np.argsort(hamming)][:topk]
        hits = int(ground_truth.sum())
        if hits == 0:
            continue
        count = np.linspace(1, hits, hits)
        positions = np.flatnonzero(ground_truth == 1) + 1.0
        total += np.mean(count / positions)
    return total / query_labels.shape[0]


def _thuml_map(db_codes_pm, query_codes_pm, db_labels, query_labels, topk):
    """thuml ``mean_average_precision``: rank by inner product, queries without hits dropped."""
    order = np.argsort(-(db_codes_pm @ query_codes_pm.T), axis=0)
    average_precisions = []
    for i in range(query_labels.shape[0]):
        matches = (db_labels[order[:topk, i]] @ query_labels[i]) > 0
        hits = matches.sum()
        precision = np.cumsum(matches) / np.arange(1, len(matches) + 1)
        if hits:
            average_precisions.append(float(np.sum(precision * matches) / hits))
    return float(np.mean(average_precisions))


def _legacy_problem(seed, n_queries=30, n_db=200):
    """Random 16-bit codes (many ties) and two random labels."""
    rng = np.random.default_rng(seed)
    db_codes = rng.integers(0, 256, size=(n_db, 2), dtype=np.uint8)
    query_codes = rng.integers(0, 256, size=(n_queries, 2), dtype=np.uint8)
    db_labels = (rng.random((n_db, 2)) < 0.3).astype(int)
    query_labels = (rng.random((n_queries, 2)) < 0.5).astype(int)
    return query_codes, db_codes, query_labels, db_labels


def _plus_minus(codes):
    return np.unpackbits(codes, axis=1).astype(np.float32) * 2 - 1


@pytest.mark.parametrize("topk", [10, 50, 200])
def test_deephash_pytorch_preset_reproduces_calc_top_map(topk):
    query_codes, db_codes, query_labels, db_labels = _legacy_problem(1)
    expected = _calc_top_map(
        _plus_minus(db_codes), _plus_minus(query_codes), db_labels, query_labels, topk
    )
    value = mean_average_precision_at_k(
        query_codes, db_codes, query_labels, db_labels, topk, conventions="deephash-pytorch"
    )
    assert value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("topk", [10, 50, 65])
def test_thuml_preset_matches_thuml_without_ties(topk):
    # thuml sorts negated inner products along axis 0, another argsort call than ours, so the
    # two are compared where no ties exist: item d has d leading ones, at distance d from 0.
    n_bits = 64
    db_codes = np.packbits(np.tri(n_bits + 1, n_bits, k=-1, dtype=np.uint8), axis=1)
    query_codes = np.zeros((6, n_bits // 8), dtype=np.uint8)
    rng = np.random.default_rng(2)
    query_labels = (rng.random((6, 3)) < 0.5).astype(int)
    query_labels[0] = [0, 0, 0]
    db_labels = (rng.random((n_bits + 1, 3)) < 0.2).astype(int)
    expected = _thuml_map(
        _plus_minus(db_codes), _plus_minus(query_codes), db_labels, query_labels, topk
    )
    value = mean_average_precision_at_k(
        query_codes, db_codes, query_labels, db_labels, topk, conventions="thuml"
    )
    assert value == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Invariances
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tied_problem():
    rng = np.random.default_rng(5)
    query_codes = rng.integers(0, 4, size=(40, 1), dtype=np.uint8)
    db_codes = rng.integers(0, 4, size=(300, 1), dtype=np.uint8)
    query_labels = (rng.random((40, 4)) < 0.3).astype(int)
    db_labels = (rng.random((300, 4)) < 0.3).astype(int)
    return query_codes, db_codes, query_labels, db_labels


def _figures(problem, conventions):
    return evaluate_codes(
        *problem, conventions=conventions, map_at=(10, 100), precision_at=(10, 100), ndcg_at=(10,)
    )["metrics"]


def test_tie_aware_invariant_to_database_order(tied_problem):
    query_codes, db_codes, query_labels, db_labels = tied_problem
    order = np.random.default_rng(0).permutation(len(db_codes))
    permuted = (query_codes, db_codes[order], query_labels, db_labels[order])
    expected = _figures(tied_problem, TIE_AWARE)
    assert _figures(permuted, TIE_AWARE) == pytest.approx(expected, abs=1e-12)


def test_shuffle_over_seeds_approaches_tie_aware(tied_problem):
    expected = _figures(tied_problem, TIE_AWARE)
    runs = [
        _figures(tied_problem, Conventions(ties="shuffle", seed=seed)) for seed in range(40)
    ]
    mean = {name: np.mean([run[name] for run in runs]) for name in expected}
    assert mean == pytest.approx(expected, abs=0.01)


def test_shuffle_is_reproducible_and_seed_dependent(tied_problem):
    first = _figures(tied_problem, Conventions(ties="shuffle", seed=3))
    assert _figures(tied_problem, Conventions(ties="shuffle", seed=3)) == first
    assert _figures(tied_problem, Conventions(ties="shuffle", seed=4)) != first


def test_shuffle_independent_of_chunk_size(tied_problem):
    conventions = Conventions(ties="shuffle", seed=3)
    whole = evaluate_codes(*tied_problem, conventions=conventions, chunk_size=256)
    chunked = evaluate_codes(*tied_problem, conventions=conventions, chunk_size=7)
    assert chunked == whole


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_invariant_to_xor_mask_and_bit_order(tied_problem, preset):
    query_codes, db_codes, query_labels, db_labels = tied_problem
    expected = _figures(tied_problem, preset)
    mask = np.uint8(0b10100101)
    masked = (query_codes ^ mask, db_codes ^ mask, query_labels, db_labels)
    assert _figures(masked, preset) == expected

    def reverse_bits(codes):
        return np.packbits(np.unpackbits(codes, axis=1)[:, ::-1], axis=1)

    reversed_bits = (reverse_bits(query_codes), reverse_bits(db_codes), query_labels, db_labels)
    assert _figures(reversed_bits, preset) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Conventions objects and presets
# ---------------------------------------------------------------------------------------------


def test_resolve_marks_overrides_as_custom():
    conventions = resolve_conventions("matlab", ties="tie-aware")
    assert (conventions.ties, conventions.preset) == ("tie-aware", "matlab+custom")


def test_resolve_keeps_preset_name_without_change():
    assert resolve_conventions("matlab", ties="stable").preset == "matlab"


@pytest.mark.parametrize(
    "options, match",
    [
        ({"ties": "random"}, "ties must be one of stable, shuffle, tie-aware, unstable; got 'random'"),
        ({"empty_queries": "skip"}, "empty_queries must be one of zero, drop; got 'skip'"),
        ({"topk_normaliser": "k"}, "topk_normaliser must be one of retrieved, min-k-relevant; got 'k'"),
        ({"ties": "shuffle"}, "ties='shuffle' needs a seed, a non-negative integer, got None"),
    ],
)
def test_conventions_reject_invalid_values(options, match):
    with pytest.raises(ValueError, match=match):
        Conventions(**options)


def test_unknown_preset_lists_choices():
    with pytest.raises(ValueError, match="Unknown evaluation preset 'dcmh'; choose one of hashbench, matlab"):
        resolve_conventions("dcmh")


def test_conventions_name_every_choice():
    named = Conventions(ties="shuffle", seed=2).as_dict()
    assert {key: named[key] for key in ("ties", "empty_queries", "topk_normaliser", "seed")} == {
        "ties": "shuffle", "empty_queries": "zero", "topk_normaliser": "min-k-relevant", "seed": 2,
    }
