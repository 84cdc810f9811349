import numpy as np
import pytest

from hashbench.codes import pack_codes
from hashbench.metrics import hamming, hamming_distances


def _bitwise_reference(query_codes, db_codes):
    """Hamming distances by comparing unpacked bits one at a time."""
    query_bits = np.unpackbits(query_codes, axis=1)
    db_bits = np.unpackbits(db_codes, axis=1)
    distances = np.zeros((len(query_bits), len(db_bits)), dtype=np.int64)
    for i, query in enumerate(query_bits):
        for j, item in enumerate(db_bits):
            distances[i, j] = sum(int(a != b) for a, b in zip(query, item))
    return distances


# Widths of 1, 2, 3, 4, 5, 8 and 16 bytes exercise 8-, 16-, 32- and 64-bit word views.
@pytest.mark.parametrize("n_bytes", [1, 2, 3, 4, 5, 8, 16])
@pytest.mark.parametrize("use_bitwise_count", [True, False], ids=["bitwise_count", "lookup"])
def test_hamming_matches_bitwise_reference(n_bytes, use_bitwise_count):
    if use_bitwise_count and not hasattr(np, "bitwise_count"):
        pytest.skip("np.bitwise_count needs NumPy >= 2.0")
    rng = np.random.RandomState(0)
    query_codes = rng.randint(0, 256, size=(7, n_bytes)).astype(np.uint8)
    db_codes = rng.randint(0, 256, size=(23, n_bytes)).astype(np.uint8)

    distances = hamming._hamming_distances(
        query_codes, db_codes, use_bitwise_count=use_bitwise_count
    )

    np.testing.assert_array_equal(distances, _bitwise_reference(query_codes, db_codes))


def test_hamming_returns_uint16_shape():
    query_codes = np.zeros((3, 8), dtype=np.uint8)
    db_codes = np.zeros((5, 8), dtype=np.uint8)
    distances = hamming_distances(query_codes, db_codes)
    assert distances.dtype == np.uint16
    assert distances.shape == (3, 5)


def test_hamming_complement_is_code_length():
    codes = pack_codes(np.random.RandomState(1).choice([-1, 1], size=(4, 128)))
    distances = hamming_distances(codes, ~codes)
    np.testing.assert_array_equal(np.diag(distances), np.full(4, 128))


def test_hamming_of_identical_codes_is_zero():
    codes = np.random.RandomState(2).randint(0, 256, size=(6, 4)).astype(np.uint8)
    assert not hamming_distances(codes, codes)[np.arange(6), np.arange(6)].any()


def test_hamming_blocks_match_single_block(monkeypatch):
    rng = np.random.RandomState(3)
    query_codes = rng.randint(0, 256, size=(5, 8)).astype(np.uint8)
    db_codes = rng.randint(0, 256, size=(101, 8)).astype(np.uint8)
    expected = hamming_distances(query_codes, db_codes)

    # 5 queries x 3 database items per block leaves a partial last block of 2 items.
    monkeypatch.setattr(hamming, "_BLOCK_PAIRS", 15)
    np.testing.assert_array_equal(hamming_distances(query_codes, db_codes), expected)


def test_hamming_accepts_non_contiguous_codes():
    rng = np.random.RandomState(4)
    codes = rng.randint(0, 256, size=(10, 16)).astype(np.uint8)
    query_codes = codes[::2, :8]
    db_codes = codes[1::2, 8:]
    expected = _bitwise_reference(np.ascontiguousarray(query_codes), np.ascontiguousarray(db_codes))
    np.testing.assert_array_equal(hamming_distances(query_codes, db_codes), expected)


def test_hamming_empty_query_set_gives_empty_matrix():
    distances = hamming_distances(np.zeros((0, 2), np.uint8), np.zeros((4, 2), np.uint8))
    assert distances.shape == (0, 4)


@pytest.mark.parametrize(
    "query_codes, db_codes, error, match",
    [
        (np.zeros((2, 2), np.int64), np.zeros((3, 2), np.uint8), TypeError,
         "query_codes must have dtype uint8"),
        (np.zeros((2, 2), np.uint8), np.zeros((3, 2), np.float32), TypeError,
         "db_codes must have dtype uint8"),
        ([[0, 1]], np.zeros((3, 2), np.uint8), TypeError,
         "query_codes must be a numpy array"),
        (np.zeros(2, np.uint8), np.zeros((3, 2), np.uint8), ValueError,
         r"query_codes must be 2-D \(n_items, n_bytes\), got shape \(2,\)"),
        (np.zeros((2, 2), np.uint8), np.zeros((3, 4), np.uint8), ValueError,
         r"query_codes with 2 bytes \(16 bits\) and db_codes with 4 bytes \(32 bits\)"),
    ],
    ids=["query-dtype", "db-dtype", "query-list", "query-1d", "width-mismatch"],
)
def test_hamming_rejects_invalid_codes(query_codes, db_codes, error, match):
    with pytest.raises(error, match=match):
        hamming_distances(query_codes, db_codes)


def test_hamming_rejects_codes_beyond_uint16():
    codes = np.zeros((1, 8192), dtype=np.uint8)
    with pytest.raises(ValueError, match="codes of 65536 bits are too long"):
        hamming_distances(codes, codes)
