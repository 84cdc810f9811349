"""Exact Hamming distances between packed binary codes."""

import numpy as np

from hashbench.codes import check_packed_codes

# Hamming distances are returned as uint16, so a code may hold at most this many bits.
MAX_N_BITS = np.iinfo(np.uint16).max

# Each block of the distance matrix holds about this many query-database pairs, which bounds the
# XOR and popcount buffers (8 bytes per pair for 64-bit words) independently of the input sizes.
_BLOCK_PAIRS = 1 << 20

# Number of set bits in each byte value, for NumPy releases without ``np.bitwise_count`` (< 2.0).
_BYTE_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


def _word_view(codes):
    """View packed codes as the widest unsigned words that divide the code width."""
    n_bytes = codes.shape[1]
    for word_dtype in (np.uint64, np.uint32, np.uint16):
        if n_bytes % np.dtype(word_dtype).itemsize == 0:
            return codes.view(word_dtype)
    return codes


def _accumulate_bitwise_count(query_words, db_words_by_column, out, xor_buffer, count_buffer):
    """Add the popcount of XOR-ed words into ``out``, one word column at a time."""
    for column, db_column in enumerate(db_words_by_column):
        np.bitwise_xor(query_words[:, column, None], db_column[None, :], out=xor_buffer)
        np.bitwise_count(xor_buffer, out=count_buffer)
        np.add(out, count_buffer, out=out)


def _accumulate_lookup(query_bytes, db_bytes_by_column, out, xor_buffer, count_buffer):
    """Add the popcount of XOR-ed bytes into ``out`` through a 256-entry lookup table."""
    for column, db_column in enumerate(db_bytes_by_column):
        np.bitwise_xor(query_bytes[:, column, None], db_column[None, :], out=xor_buffer)
        np.take(_BYTE_POPCOUNT, xor_buffer, out=count_buffer, mode="clip")
        np.add(out, count_buffer, out=out)


def _hamming_distances(query_codes, db_codes, *, use_bitwise_count):
    """Compute Hamming distances of validated codes, in blocks of database columns."""
    if use_bitwise_count:
        query_words, db_words = _word_view(query_codes), _word_view(db_codes)
        accumulate = _accumulate_bitwise_count
    else:
        query_words, db_words = query_codes, db_codes
        accumulate = _accumulate_lookup

    n_queries, n_db = query_words.shape[0], db_words.shape[0]
    distances = np.zeros((n_queries, n_db), dtype=np.uint16)
    if n_queries == 0 or n_db == 0:
        return distances

    # One contiguous row per word position, so each block reads a contiguous slice.
    db_words_by_column = np.ascontiguousarray(db_words.T)

    block = max(1, min(n_db, _BLOCK_PAIRS // n_queries))
    xor_buffer = np.empty((n_queries, block), dtype=db_words.dtype)
    count_buffer = np.empty((n_queries, block), dtype=np.uint8)
    for start in range(0, n_db, block):
        stop = min(start + block, n_db)
        width = stop - start
        accumulate(
            query_words,
            db_words_by_column[:, start:stop],
            distances[:, start:stop],
            xor_buffer[:, :width],
            count_buffer[:, :width],
        )
    return distances


def check_code_pair(query_codes, db_codes):
    """Validate query and database codes and check that their code widths match.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8
        Packed query codes.
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8
        Packed database codes.

    Returns
    -------
    query_codes, db_codes : ndarray, dtype uint8
        The same codes, C-contiguous.
    """
    query_codes = check_packed_codes(query_codes, name="query_codes")
    db_codes = check_packed_codes(db_codes, name="db_codes")
    if query_codes.shape[1] != db_codes.shape[1]:
        raise ValueError(
            f"query_codes and db_codes must have the same code width, got query_codes with "
            f"{query_codes.shape[1]} bytes ({query_codes.shape[1] * 8} bits) and db_codes with "
            f"{db_codes.shape[1]} bytes ({db_codes.shape[1] * 8} bits). Encode both sets with the "
            "same fitted hasher."
        )
    n_bits = query_codes.shape[1] * 8
    if n_bits > MAX_N_BITS:
        raise ValueError(
            f"codes of {n_bits} bits are too long: Hamming distances are stored as uint16, "
            f"so codes may have at most {MAX_N_BITS} bits."
        )
    return query_codes, db_codes


def hamming_distances(query_codes, db_codes):
    """Compute the exact Hamming distance between every query code and every database code.

    The codes are compared as 64-bit words with ``np.bitwise_count`` (NumPy >= 2.0; narrower words
    when the code width in bytes is not a multiple of 8), or byte by byte through a lookup table on
    older NumPy. Work proceeds in blocks of database items, so temporary buffers stay near
    ``2**20`` query-database pairs whatever the input sizes.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8
        Packed query codes (see ``hashbench.codes``).
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8
        Packed database codes with the same width as ``query_codes``.

    Returns
    -------
    ndarray of shape (n_queries, n_database), dtype uint16
        Number of differing bits for each query-database pair.

    Raises
    ------
    TypeError
        If either array is not a numpy array of dtype uint8.
    ValueError
        If either array is not 2-D, if the code widths differ, or if the codes are longer than
        65535 bits.
    """
    query_codes, db_codes = check_code_pair(query_codes, db_codes)
    return _hamming_distances(
        query_codes, db_codes, use_bitwise_count=hasattr(np, "bitwise_count")
    )
