"""One pass over the queries that collects what every retrieval figure is computed from.

The pass works on chunks of queries. Each chunk computes its Hamming distances to the whole
database and the relevance of every pair, both of shape (chunk_size, n_database), and is then
scored in smaller blocks of rows, so memory grows with ``chunk_size * n_database`` and never with
``n_queries * n_database``. For every query the pass keeps:

- the number of relevant and non-relevant database items at each Hamming distance, from which
  every radius figure and every tie-aware figure follows in closed form;
- under an ordering convention (``stable``, ``shuffle``, ``unstable``): prefix sums of the ranked
  relevance at the requested cut-offs, which give AP, AP@k and precision@N;
- when NDCG is requested: the number of database items sharing g labels for each g, which gives
  the ideal DCG. Under an ordering convention it also keeps the DCG of the ranking at each
  cut-off, and under ``tie-aware`` the sum of gains at each Hamming distance.

``hashbench.metrics.ranking`` turns these into the reported figures.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from hashbench.metrics.hamming import hamming_distances
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

# Sort keys, orders and prefix sums are built for about this many query-database pairs at a time,
# so each buffer takes at most 32 MiB at 8 bytes per pair.
_BLOCK_PAIRS = 1 << 22


@dataclass
class QueryScores:
    """Per-query results of the pass, with shapes for n_queries queries.

    Attributes
    ----------
    n_database, n_bits, n_labels : int
    counts : ndarray of shape (n_queries, n_bits + 1, 2), dtype int32
        ``counts[q, d, 1]`` relevant and ``counts[q, d, 0]`` non-relevant database items at
        Hamming distance d from query q.
    cutoffs : tuple of int
        Rank cut-offs (already capped at ``n_database``) at which the ordered figures were kept.
    relevant_in_top, precision_sum_in_top : dict of int to ndarray of shape (n_queries,)
        Ordering conventions only: relevant items within the top k, and the sum of precision@i
        over the relevant ranks i <= k, for each capped cut-off k (``n_database`` included).
    dcg_at : dict of int to ndarray of shape (n_queries,), dtype float64
        Ordering conventions with NDCG only: DCG of the ranking within the top k.
    gain_levels : ndarray of shape (n_queries, n_labels + 1), dtype int32, or None
        With NDCG: database items sharing exactly g labels with the query, for g = 0..n_labels.
    gain_by_distance : ndarray of shape (n_queries, n_bits + 1), dtype float64, or None
        Tie-aware NDCG only: sum of gains ``2**g - 1`` of the items at each Hamming distance.
    """

    n_database: int
    n_bits: int
    n_labels: int
    counts: np.ndarray
    cutoffs: tuple = ()
    relevant_in_top: dict = field(default_factory=dict)
    precision_sum_in_top: dict = field(default_factory=dict)
    dcg_at: dict = field(default_factory=dict)
    gain_levels: np.ndarray | None = None
    gain_by_distance: np.ndarray | None = None

    @property
    def n_queries(self):
        return self.counts.shape[0]

    @property
    def n_relevant(self):
        """Relevant database items of each query, ndarray of shape (n_queries,), dtype int64."""
        return self.counts[:, :, 1].sum(axis=1, dtype=np.int64)


def _relevance(query_label_bits, db_label_bits_by_column):
    """Mark the query-database pairs that share at least one label.

    ``query_label_bits`` has shape (n_queries, n_label_bytes) and ``db_label_bits_by_column``
    has shape (n_label_bytes, n_database), both holding labels packed 8 to a byte. Returns an
    ndarray of shape (n_queries, n_database), dtype bool.
    """
    n_queries, n_db = query_label_bits.shape[0], db_label_bits_by_column.shape[1]
    shared = np.zeros((n_queries, n_db), dtype=np.uint8)
    buffer = np.empty((n_queries, n_db), dtype=np.uint8)
    for column, db_column in enumerate(db_label_bits_by_column):
        np.bitwise_and(query_label_bits[:, column, None], db_column[None, :], out=buffer)
        np.bitwise_or(shared, buffer, out=shared)

    # The buffer becomes the result, so no third array of this size is allocated.
    relevance = buffer.view(np.bool_)
    np.not_equal(shared, 0, out=relevance)
    return relevance


def _rank(distances, ties, first_query, seed):
    """Order each row of ``distances`` by ascending distance under an ordering convention.

    Returns the database indices in ranked order, ndarray of shape distances.shape, dtype int64.
    """
    if ties == "stable":
        return np.argsort(distances, axis=1, kind="stable")
    if ties == "unstable":
        return np.argsort(distances.astype(np.float32), axis=1)

    # shuffle: each query draws its own random rank for every database item from (seed, query),
    # so the order does not depend on how queries are chunked. The key distance * n + rank has
    # no ties left.
    n_db = distances.shape[1]
    keys = distances.astype(np.int64)
    keys *= n_db
    for row in range(keys.shape[0]):
        rng = np.random.default_rng([seed, first_query + row])
        keys[row] += rng.permutation(n_db)
    return np.argsort(keys, axis=1)


def _gather_rows(values, order):
    """Reorder each row of ``values`` by the same row of ``order``."""
    # Indexing the flattened rows with one offset per row is faster than take_along_axis.
    flat_order = order + (np.arange(order.shape[0], dtype=np.int64) * values.shape[1])[:, None]
    return np.take(values.ravel(), flat_order)


def _counts_by_distance(distances, relevance, n_bits):
    """Count relevant and non-relevant items at each distance, per row.

    Returns an ndarray of shape (n_rows, n_bits + 1, 2), dtype int64.
    """
    n_rows = distances.shape[0]
    # Key (row * (n_bits + 1) + distance) * 2 + relevance lets one bincount split every count.
    keys = distances.astype(np.int64)
    keys += (np.arange(n_rows, dtype=np.int64) * (n_bits + 1))[:, None]
    keys <<= 1
    keys |= relevance
    counts = np.bincount(keys.ravel(), minlength=n_rows * (n_bits + 1) * 2)
    return counts.reshape(n_rows, n_bits + 1, 2)


def _score_ordered_block(scores, rows, ranked_relevance):
    """Keep, per query of one block, the relevant items and the sum of precision within each cut-off."""
    n_rows = ranked_relevance.shape[0]

    # Every relevant item of the block at once: its row, its 1-based rank, and how many relevant
    # items of the same row rank at or above it, which gives precision at that rank.
    hit_rows, hit_columns = np.nonzero(ranked_relevance)
    hit_ranks = hit_columns + 1
    row_starts = np.searchsorted(hit_rows, np.arange(n_rows))
    hits_so_far = np.arange(1, len(hit_rows) + 1) - row_starts[hit_rows]
    precision_at_hits = hits_so_far / hit_ranks

    # Hits are sorted by (row, rank), so one search per row and cut-off finds the hits inside it.
    # Each row's sum restarts at its first hit, so the result does not depend on the block size.
    n_db = ranked_relevance.shape[1]
    keys = hit_rows * (n_db + 1) + hit_ranks
    padded = np.append(precision_at_hits, 0.0)
    row_offsets = np.arange(n_rows) * (n_db + 1)
    for cutoff in scores.cutoffs:
        ends = np.searchsorted(keys, row_offsets + cutoff, side="right")
        scores.relevant_in_top[cutoff][rows] = ends - row_starts
        bounds = np.stack([row_starts, ends], axis=1).ravel()
        sums = np.add.reduceat(padded, bounds)[::2]
        scores.precision_sum_in_top[cutoff][rows] = np.where(ends > row_starts, sums, 0.0)


def _label_words(labels):
    """Pack 0/1 label rows into uint64 words, shape (n_items, ceil(n_labels / 64))."""
    n_words = -(-labels.shape[1] // 64)
    padded = np.zeros((labels.shape[0], n_words * 64), dtype=np.uint8)
    padded[:, : labels.shape[1]] = labels
    return np.packbits(padded, axis=1).view(np.uint64)


def _shared_label_counts(query_words, db_words_by_column):
    """Count the labels each query shares with each database item, shape (n_rows, n_database).

    ``query_words`` has shape (n_rows, n_words) and ``db_words_by_column`` (n_words, n_database),
    labels packed 64 to a word (``_label_words``).
    """
    shared = np.zeros((query_words.shape[0], db_words_by_column.shape[1]), dtype=np.uint8)
    for column, db_column in enumerate(db_words_by_column):
        both = np.bitwise_and(query_words[:, column, None], db_column[None, :])
        if hasattr(np, "bitwise_count"):
            shared += np.bitwise_count(both)
        else:
            shared += np.unpackbits(both.view(np.uint8), axis=1).reshape(both.shape + (64,)).sum(axis=2, dtype=np.uint8)
    return shared


def _joint_counts(distances, shared, n_bits, n_labels):
    """Count database items by (Hamming distance, shared labels), per row.

    Returns an ndarray of shape (n_rows, n_bits + 1, n_labels + 1), dtype int64.
    """
    n_rows = distances.shape[0]
    keys = distances.astype(np.int64)
    keys += (np.arange(n_rows, dtype=np.int64) * (n_bits + 1))[:, None]
    keys *= n_labels + 1
    keys += shared
    counts = np.bincount(keys.ravel(), minlength=n_rows * (n_bits + 1) * (n_labels + 1))
    return counts.reshape(n_rows, n_bits + 1, n_labels + 1)


def _score_block(scores, rows, distances, relevance, labels, ties, seed):
    """Score one block of queries (global row indices ``rows``)."""
    shared = None
    if scores.gain_levels is None:
        scores.counts[rows] = _counts_by_distance(distances, relevance, scores.n_bits)
    else:
        # One count by (distance, shared labels) gives the relevance counts, the ideal DCG's gain
        # levels and the gains at each distance.
        query_words, db_words_by_column = labels
        shared = _shared_label_counts(query_words[rows], db_words_by_column)
        joint = _joint_counts(distances, shared, scores.n_bits, scores.n_labels)
        scores.counts[rows, :, 0] = joint[:, :, 0]
        scores.counts[rows, :, 1] = joint[:, :, 1:].sum(axis=2)
        scores.gain_levels[rows] = joint.sum(axis=1)
        if scores.gain_by_distance is not None:
            scores.gain_by_distance[rows] = joint @ (np.exp2(np.arange(scores.n_labels + 1)) - 1.0)
        del joint

    if ties == "tie-aware":
        return

    order = _rank(distances, ties, int(rows[0]), seed)
    _score_ordered_block(scores, rows, _gather_rows(relevance, order))
    if shared is not None:
        # Only the ranks up to the largest NDCG cut-off matter.
        depth = max(scores.dcg_at)
        gains = np.exp2(np.arange(scores.n_labels + 1)) - 1.0
        ranked_gains = gains[_gather_rows(shared, order[:, :depth])]
        discount_sum = np.cumsum(ranked_gains / np.log2(np.arange(2, depth + 2)), axis=1)
        for cutoff in scores.dcg_at:
            scores.dcg_at[cutoff][rows] = discount_sum[:, cutoff - 1]


def score_queries(
    query_codes,
    db_codes,
    query_labels,
    db_labels,
    *,
    distances=None,
    n_bits,
    conventions,
    cutoffs=(),
    ndcg_cutoffs=(),
    chunk_size=256,
    progress=NULL_PROGRESS,
):
    """Run the pass over validated inputs and return a ``QueryScores``.

    Parameters
    ----------
    query_codes, db_codes : ndarray of dtype uint8, or None
        Packed codes, or None when ``distances`` is given.
    query_labels : ndarray of shape (n_queries, n_labels), dtype bool
    db_labels : ndarray of shape (n_database, n_labels), dtype bool
    distances : ndarray of shape (n_queries, n_database), dtype uint16, or None
        A precomputed Hamming distance table instead of codes.
    n_bits : int
        Code length.
    conventions : hashbench.metrics.Conventions
    cutoffs : sequence of int
        Rank cut-offs for AP@k and precision@N, already capped at the database size.
    ndcg_cutoffs : sequence of int
        Capped cut-offs for NDCG@k; empty to skip everything NDCG needs.
    chunk_size : int
        Queries per chunk.
    progress : hashbench.progress.Progress
        Receives one advance per query.

    Returns
    -------
    QueryScores
        Memory peaks near 4 bytes per query-database pair of a chunk (distances, relevance and
        the buffer that builds it), plus about 100 MiB of block buffers.
    """
    n_queries, n_db = query_labels.shape[0], db_labels.shape[0]
    n_labels = query_labels.shape[1]
    ordered = conventions.ties != "tie-aware"
    cutoffs = tuple(sorted(set(cutoffs) | {n_db})) if ordered else ()

    scores = QueryScores(
        n_database=n_db,
        n_bits=n_bits,
        n_labels=n_labels,
        counts=np.zeros((n_queries, n_bits + 1, 2), dtype=np.int32),
        cutoffs=cutoffs,
    )
    for cutoff in cutoffs:
        scores.relevant_in_top[cutoff] = np.zeros(n_queries, dtype=np.int64)
        scores.precision_sum_in_top[cutoff] = np.zeros(n_queries, dtype=np.float64)
    labels = None
    if ndcg_cutoffs:
        scores.gain_levels = np.zeros((n_queries, n_labels + 1), dtype=np.int32)
        if ordered:
            scores.dcg_at = {cutoff: np.zeros(n_queries) for cutoff in ndcg_cutoffs}
        else:
            scores.gain_by_distance = np.zeros((n_queries, n_bits + 1), dtype=np.float64)
        labels = (_label_words(query_labels), np.ascontiguousarray(_label_words(db_labels).T))

    query_label_bits = np.packbits(query_labels, axis=1)
    db_label_bits_by_column = np.ascontiguousarray(np.packbits(db_labels, axis=1).T)
    # With NDCG each row also counts items by (distance, shared labels).
    row_size = max(n_db, (n_bits + 1) * (n_labels + 1)) if ndcg_cutoffs else n_db
    rows_per_block = max(1, _BLOCK_PAIRS // row_size)

    logger.info(
        "Evaluating %d queries against %d database items (%d-bit codes, ties %s, chunks of %d)",
        n_queries, n_db, n_bits, conventions.ties, chunk_size,
    )
    started = time.perf_counter()
    with progress.task("Evaluating queries", total=n_queries) as advance:
        for start in range(0, n_queries, chunk_size):
            stop = min(start + chunk_size, n_queries)
            if distances is None:
                chunk_distances = hamming_distances(query_codes[start:stop], db_codes)
            else:
                chunk_distances = distances[start:stop]
            relevance = _relevance(query_label_bits[start:stop], db_label_bits_by_column)

            for block_start in range(0, stop - start, rows_per_block):
                block_stop = min(block_start + rows_per_block, stop - start)
                _score_block(
                    scores,
                    np.arange(start + block_start, start + block_stop),
                    chunk_distances[block_start:block_stop],
                    relevance[block_start:block_stop],
                    labels,
                    conventions.ties,
                    conventions.seed,
                )
            del chunk_distances, relevance
            advance(stop - start)
    logger.info(
        "Evaluated %d queries in %.2f s (%d without a relevant item)",
        n_queries, time.perf_counter() - started, int(np.count_nonzero(scores.n_relevant == 0)),
    )
    return scores
