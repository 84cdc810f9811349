import importlib.util

import numpy as np
import pytest

from hashbench.search import (
    RangeResult,
    SearchIndex,
    get_backend_class,
    knn_recall,
    list_backends,
    make_index,
    range_recall,
    register_backend,
)
from hashbench.search.backends.faiss_mih import default_substrings

from hashbench.metrics.hamming import hamming_distances

needs_faiss = pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss-cpu is not installed")

EXACT_BACKENDS = ["numpy", pytest.param("faiss-flat", marks=needs_faiss)]
ALL_BACKENDS = EXACT_BACKENDS + [pytest.param("faiss-mih", marks=needs_faiss)]


def _popcount(byte):
    return bin(byte).count("1")


def _loop_distances(query, db_codes):
    """Hamming distances of one query to every database code, one byte at a time."""
    return [sum(_popcount(int(a) ^ int(b)) for a, b in zip(query, code)) for code in db_codes]


def _loop_knn(query_codes, db_codes, k):
    """Plain-loop k-NN in the defined order: ascending distance, then ascending id."""
    distances, ids = [], []
    for query in query_codes:
        row = _loop_distances(query, db_codes)
        order = sorted(range(len(db_codes)), key=lambda i: (row[i], i))[:k]
        ids.append(order)
        distances.append([row[i] for i in order])
    return np.array(distances), np.array(ids)


def _loop_range(query_codes, db_codes, radius):
    results = []
    for query in query_codes:
        row = _loop_distances(query, db_codes)
        order = sorted((i for i in range(len(db_codes)) if row[i] <= radius), key=lambda i: (row[i], i))
        results.append((order, [row[i] for i in order]))
    return results


def _tied_codes(n_items, n_bits, n_distinct, seed):
    """Codes drawn from a few distinct values, so most distances tie."""
    rng = np.random.default_rng(seed)
    distinct = rng.integers(0, 256, size=(n_distinct, n_bits // 8), dtype=np.uint8)
    return distinct[rng.integers(0, n_distinct, size=n_items)]


@pytest.fixture(scope="module")
def tied():
    db_codes = _tied_codes(300, 16, 6, seed=0)
    query_codes = np.concatenate([_tied_codes(10, 16, 6, seed=1), _tied_codes(10, 16, 40, seed=2)])
    return query_codes, db_codes


# ---------------------------------------------------------------------------------------------
# Exact k-NN


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
@pytest.mark.parametrize("k", [1, 7, 60, 300])
def test_exact_knn_matches_loop_with_ties(backend, k, tied):
    query_codes, db_codes = tied
    expected_distances, expected_ids = _loop_knn(query_codes, db_codes, k)

    distances, ids = make_index(backend).build(db_codes).search(query_codes, k)

    np.testing.assert_array_equal(distances, expected_distances)
    np.testing.assert_array_equal(ids, expected_ids)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
@pytest.mark.parametrize("n_bits", [8, 24, 64, 128, 264])
def test_exact_knn_matches_loop_per_width(backend, n_bits):
    db_codes = _tied_codes(200, n_bits, 30, seed=n_bits)
    query_codes = np.random.default_rng(n_bits).integers(0, 256, size=(5, n_bits // 8), dtype=np.uint8)
    expected_distances, expected_ids = _loop_knn(query_codes, db_codes, 25)

    distances, ids = make_index(backend).build(db_codes).search(query_codes, 25)

    np.testing.assert_array_equal(distances, expected_distances)
    np.testing.assert_array_equal(ids, expected_ids)


@needs_faiss
def test_exact_backends_identical_on_random_codes():
    rng = np.random.default_rng(3)
    db_codes = rng.integers(0, 256, size=(20_000, 8), dtype=np.uint8)
    query_codes = rng.integers(0, 256, size=(40, 8), dtype=np.uint8)

    numpy_result = make_index("numpy").build(db_codes).search(query_codes, 100)
    faiss_result = make_index("faiss-flat").build(db_codes).search(query_codes, 100)

    np.testing.assert_array_equal(numpy_result[0], faiss_result[0])
    np.testing.assert_array_equal(numpy_result[1], faiss_result[1])


@needs_faiss
def test_faiss_flat_fetches_ties_beyond_extra():
    # 500 identical codes: faiss returns an arbitrary 37 of them, and the backend must fetch all
    # ties to return the lowest ids.
    db_codes = np.full((500, 2), 7, dtype=np.uint8)
    query_codes = np.zeros((2, 2), dtype=np.uint8)

    distances, ids = make_index("faiss-flat").build(db_codes).search(query_codes, 5)

    np.testing.assert_array_equal(ids, [[0, 1, 2, 3, 4]] * 2)
    np.testing.assert_array_equal(distances, [[6] * 5] * 2)


class _HighestIdTiesIndex:
    """Stand-in for a faiss index whose k-NN search keeps the highest ids among ties."""

    def __init__(self, index, db_codes):
        self._index = index
        self._db_codes = db_codes

    def search(self, query_codes, k):
        distances = hamming_distances(query_codes, self._db_codes).astype(np.int32)
        ids = np.broadcast_to(np.arange(len(self._db_codes)), distances.shape)
        order = np.lexsort((-ids, distances), axis=-1)[:, :k]
        return np.take_along_axis(distances, order, axis=-1), order.astype(np.int64)

    def range_search(self, query_codes, radius):
        return self._index.range_search(query_codes, radius)


@needs_faiss
@pytest.mark.parametrize("k", [1, 7, 60])
def test_faiss_flat_reorders_ties_of_any_heap(k, tied):
    query_codes, db_codes = tied
    index = make_index("faiss-flat").build(db_codes)
    index._index = _HighestIdTiesIndex(index._index, db_codes)
    expected_distances, expected_ids = _loop_knn(query_codes, db_codes, k)

    distances, ids = index.search(query_codes, k)

    np.testing.assert_array_equal(distances, expected_distances)
    np.testing.assert_array_equal(ids, expected_ids)


def test_numpy_threads_and_blocks_agree(tied):
    _, db_codes = tied
    query_codes = _tied_codes(50, 16, 6, seed=9)
    single = make_index("numpy", threads=1).build(db_codes).search(query_codes, 30)
    threaded = make_index("numpy", threads=2).build(db_codes).search(query_codes, 30)
    expected = _loop_knn(query_codes, db_codes, 30)

    np.testing.assert_array_equal(single[1], expected[1])
    np.testing.assert_array_equal(threaded[1], expected[1])
    np.testing.assert_array_equal(threaded[0], expected[0])


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_search_dtypes_and_shapes(backend, tied):
    query_codes, db_codes = tied
    distances, ids = make_index(backend).build(db_codes).search(query_codes, 4)
    assert distances.dtype == np.int32
    assert ids.dtype == np.int64
    assert distances.shape == (20, 4)
    assert ids.shape == (20, 4)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_search_without_queries(backend, tied):
    _, db_codes = tied
    distances, ids = make_index(backend).build(db_codes).search(np.zeros((0, 2), dtype=np.uint8), 3)
    assert distances.shape == (0, 3)
    assert ids.shape == (0, 3)


# ---------------------------------------------------------------------------------------------
# Radius search


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
@pytest.mark.parametrize("radius", [0, 3, 16, 40])
def test_exact_range_matches_loop(backend, radius, tied):
    query_codes, db_codes = tied
    expected = _loop_range(query_codes, db_codes, radius)

    result = make_index(backend).build(db_codes).range_search(query_codes, radius)

    assert len(result) == len(query_codes)
    for query, (expected_ids, expected_distances) in enumerate(expected):
        ids, distances = result.query(query)
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(distances, expected_distances)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_range_at_code_length_returns_all(backend, tied):
    query_codes, db_codes = tied
    result = make_index(backend).build(db_codes).range_search(query_codes, 16)
    np.testing.assert_array_equal(np.diff(result.lims), [len(db_codes)] * len(query_codes))
    assert result.ids.dtype == np.int64
    assert result.distances.dtype == np.int32


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_range_at_zero_finds_duplicates(backend):
    db_codes = np.array([[1, 2], [3, 4], [1, 2], [5, 6]], dtype=np.uint8)
    result = make_index(backend).build(db_codes).range_search(db_codes[:1], 0)
    ids, distances = result.query(0)
    np.testing.assert_array_equal(ids, [0, 2])
    np.testing.assert_array_equal(distances, [0, 0])


def test_range_result_from_lists():
    result = RangeResult.from_lists([([4, 2], [1, 3]), ([], [])])
    np.testing.assert_array_equal(result.lims, [0, 2, 2])
    np.testing.assert_array_equal(result.query(0)[0], [4, 2])
    assert len(result.query(1)[0]) == 0


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_build_rejects_empty_database(backend):
    with pytest.raises(ValueError, match=r"db_codes is empty \(shape \(0, 8\)\)"):
        make_index(backend).build(np.zeros((0, 8), dtype=np.uint8))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_build_rejects_non_uint8(backend):
    with pytest.raises(TypeError, match="db_codes must have dtype uint8.*got int64"):
        make_index(backend).build(np.zeros((4, 8), dtype=np.int64))
    with pytest.raises(TypeError, match="db_codes must be a numpy array.*got list"):
        make_index(backend).build([[1, 2]])


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_search_rejects_bad_k(backend, tied):
    query_codes, db_codes = tied
    index = make_index(backend).build(db_codes)
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        index.search(query_codes, 0)
    with pytest.raises(ValueError, match="k must be at least 1, got -3"):
        index.search(query_codes, -3)
    with pytest.raises(TypeError, match=r"k must be an integer, got 2.5"):
        index.search(query_codes, 2.5)
    with pytest.raises(ValueError, match="k=301 exceeds the database size of 300 codes"):
        index.search(query_codes, 301)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_search_rejects_wrong_width(backend, tied):
    _, db_codes = tied
    index = make_index(backend).build(db_codes)
    wide = np.zeros((3, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"8 bytes per item \(64 bits\) but the index holds 16-bit codes"):
        index.search(wide, 2)
    with pytest.raises(ValueError, match="but the index holds 16-bit codes"):
        index.range_search(wide, 2)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_search_rejects_non_uint8_queries(backend, tied):
    _, db_codes = tied
    index = make_index(backend).build(db_codes)
    with pytest.raises(TypeError, match="query_codes must have dtype uint8.*got float32"):
        index.search(np.zeros((3, 2), dtype=np.float32), 2)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_search_before_build(backend):
    with pytest.raises(RuntimeError, match="call build"):
        make_index(backend).search(np.zeros((1, 2), dtype=np.uint8), 1)


def test_range_rejects_negative_radius(tied):
    query_codes, db_codes = tied
    with pytest.raises(ValueError, match="radius must be at least 0, got -1"):
        make_index("numpy").build(db_codes).range_search(query_codes, -1)


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        make_index("numpy", threads=0)


@needs_faiss
def test_mih_rejects_oversized_substrings(tied):
    _, db_codes = tied
    with pytest.raises(ValueError, match=r"nhash=3 substrings of b=8 bits do not fit 16-bit codes"):
        make_index("faiss-mih", nhash=3, b=8).build(db_codes)


@needs_faiss
def test_faiss_threads_restored(tied):
    import faiss

    query_codes, db_codes = tied
    before = faiss.omp_get_max_threads()
    make_index("faiss-flat", threads=1).build(db_codes).search(query_codes, 3)
    assert faiss.omp_get_max_threads() == before


# ---------------------------------------------------------------------------------------------
# Registry


def test_registry_lists_backends():
    assert {"numpy", "faiss-flat", "faiss-mih"} <= set(list_backends())
    assert get_backend_class("numpy").exact
    assert get_backend_class("faiss-flat").exact
    assert not get_backend_class("faiss-mih").exact


def test_registry_unknown_backend():
    with pytest.raises(ValueError, match="Unknown search backend 'annoy'. Registered backends: .*numpy"):
        make_index("annoy")


def test_registry_rejects_duplicate_name():
    with pytest.raises(ValueError, match="'numpy' is registered twice"):
        @register_backend("numpy")
        class Duplicate(SearchIndex):
            pass


# ---------------------------------------------------------------------------------------------
# Multi-index hashing and recall


def test_default_substrings_follow_log2_database():
    assert default_substrings(64, 1_000_000) == (3, 21)
    assert default_substrings(32, 10_000) == (2, 16)
    nhash, b = default_substrings(128, 100_000)
    assert nhash * b <= 128


@needs_faiss
def test_mih_recall_measured_in_unit_interval():
    rng = np.random.default_rng(5)
    db_codes = rng.integers(0, 256, size=(5000, 8), dtype=np.uint8)
    query_codes = rng.integers(0, 256, size=(30, 8), dtype=np.uint8)
    exact_distances, _ = make_index("numpy").build(db_codes).search(query_codes, 10)

    _, ids = make_index("faiss-mih", nflip=0).build(db_codes).search(query_codes, 10)
    recall = knn_recall(query_codes, db_codes, ids, exact_distances)

    assert 0.0 <= recall < 1.0


@needs_faiss
def test_mih_knn_exact_when_flips_cover_kth_distance(tied):
    query_codes, db_codes = tied
    exact_distances, _ = make_index("numpy").build(db_codes).search(query_codes, 20)
    nhash = 2
    nflip = int(exact_distances[:, -1].max()) // nhash

    index = make_index("faiss-mih", nhash=nhash, b=8, nflip=nflip).build(db_codes)
    distances, ids = index.search(query_codes, 20)

    assert knn_recall(query_codes, db_codes, ids, exact_distances) == 1.0
    np.testing.assert_array_equal(distances, exact_distances)


@needs_faiss
@pytest.mark.parametrize("radius", [0, 3, 5])
def test_mih_range_exact_by_pigeonhole(radius):
    rng = np.random.default_rng(radius)
    db_codes = rng.integers(0, 256, size=(2000, 4), dtype=np.uint8)
    query_codes = db_codes[:20] ^ rng.integers(0, 2, size=(20, 4), dtype=np.uint8)
    exact = make_index("numpy").build(db_codes).range_search(query_codes, radius)
    nhash = 2

    index = make_index("faiss-mih", nhash=nhash, b=16, nflip=radius // nhash).build(db_codes)
    approximate = index.range_search(query_codes, radius)

    assert range_recall(approximate, exact) == 1.0
    np.testing.assert_array_equal(approximate.ids, exact.ids)
    np.testing.assert_array_equal(approximate.lims, exact.lims)


@needs_faiss
def test_mih_range_misses_with_too_few_flips():
    rng = np.random.default_rng(11)
    db_codes = rng.integers(0, 256, size=(2000, 4), dtype=np.uint8)
    query_codes = rng.integers(0, 256, size=(20, 4), dtype=np.uint8)
    exact = make_index("numpy").build(db_codes).range_search(query_codes, 8)

    approximate = make_index("faiss-mih", nhash=2, b=16, nflip=0).build(db_codes).range_search(query_codes, 8)

    assert len(exact.ids) > 0
    assert 0.0 <= range_recall(approximate, exact) < 1.0


def test_knn_recall_counts_ties_once():
    db_codes = np.array([[0], [1], [2], [255]], dtype=np.uint8)
    query_codes = np.array([[0]], dtype=np.uint8)
    # Exact 2-NN distances: 0 (id 0) and 1 (ids 1 and 2 tie).
    exact_distances = np.array([[0, 1]])

    assert knn_recall(query_codes, db_codes, np.array([[0, 2]]), exact_distances) == 1.0
    assert knn_recall(query_codes, db_codes, np.array([[0, 3]]), exact_distances) == 0.5
    assert knn_recall(query_codes, db_codes, np.array([[1, 1]]), exact_distances) == 0.5
    assert knn_recall(query_codes, db_codes, np.array([[-1, 0]]), exact_distances) == 0.5


def test_knn_recall_rejects_shape_mismatch():
    codes = np.zeros((2, 1), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"must both have shape \(n_queries, k\) with n_queries=2"):
        knn_recall(codes, codes, np.zeros((2, 3)), np.zeros((2, 2)))


def test_range_recall_empty_exact_is_one():
    empty = RangeResult.from_lists([([], []), ([], [])])
    assert range_recall(empty, empty) == 1.0
