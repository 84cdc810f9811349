"""Retrieval metrics for Hamming ranking: mAP, mAP@k, precision@N and precision-recall by radius.

The metrics reproduce ``calcMapTopkMapTopkPreTopkRecLabel`` and ``calcPreRecRadiusLabel``, the
MATLAB evaluation functions that the DSTDH code (https://github.com/christinecui/DSTDH) calls for
its reported results. Their conventions, listed in ``CONVENTIONS``, are:

- a database item is relevant to a query when their 0/1 label rows share at least one label;
- the database is ranked by ascending Hamming distance, and items at equal distance keep their
  database order (MATLAB's ``sort`` is stable);
- a query with no relevant item in the database scores 0 for AP, AP@k, precision@N and recall@N
  and stays in the mean;
- AP@k divides by the number of relevant items retrieved within the top k;
- precision and recall by radius pool the pairs of all queries (micro averaging).

Two cases differ from the MATLAB code. A cut-off above the database size is computed at the
database size, where MATLAB stops with an index error. Radii run from 0 to n_bits, where MATLAB
stops one below the largest distance observed.

All metrics run through one pass over chunks of queries (``_score_queries``). Each chunk holds its
Hamming distances and relevance, of shape (chunk_size, n_database), and is ranked and scored in
smaller blocks of rows, so memory never grows with n_queries x n_database. Ranking happens in
``_rank_stable`` only, and each metric reduces per-query scores in its own function, which is where
another tie convention or averaging scheme would go.
"""

import logging
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from hashbench.metrics.hamming import check_code_pair, hamming_distances
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

#: The evaluation conventions that every metric in this module follows, by name.
CONVENTIONS = {
    "relevance": "share at least one label",
    "ties": "stable (database order)",
    "empty_queries": "zero",
    "map@k_normaliser": "relevant retrieved in top k",
    "pr_radius": "micro",
}

#: Default cut-offs N for precision@N.
DEFAULT_PRECISION_AT = (500, 1000, 2000, 3000, 4000, 5000)

# Sort indices and distance keys are built for about this many query-database pairs at a time,
# so each takes at most 32 MiB at 8 bytes per pair.
_RANK_BLOCK_PAIRS = 1 << 22


class PrecisionAtN(NamedTuple):
    """Precision and recall at rank cut-offs N, averaged over queries.

    Attributes
    ----------
    n : tuple of int
        The requested cut-offs, in the requested order.
    precision : tuple of float
        Mean precision@N for each cut-off.
    recall : tuple of float
        Mean recall@N for each cut-off.
    capped : dict of int to int
        Cut-offs larger than the database, each mapped to the database size at which its values
        were computed. Empty when no cut-off was capped.
    """

    n: tuple
    precision: tuple
    recall: tuple
    capped: dict


class RadiusCurve(NamedTuple):
    """Precision and recall of Hamming-radius retrieval for every radius 0..n_bits.

    Attributes
    ----------
    radius : ndarray of shape (n_bits + 1,), dtype int64
        Hamming radii 0, 1, ..., n_bits.
    precision : ndarray of shape (n_bits + 1,), dtype float64
        Micro-averaged precision within each radius.
    recall : ndarray of shape (n_bits + 1,), dtype float64
        Micro-averaged recall within each radius.
    """

    radius: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------


def _check_labels(labels, *, name, codes_name, n_items):
    """Validate a 0/1 label matrix with one row per code and return it as bool."""
    if sp.issparse(labels):
        labels = labels.toarray()
    if not isinstance(labels, np.ndarray):
        labels = np.asarray(labels)
    if not (labels.dtype == np.bool_ or np.issubdtype(labels.dtype, np.number)):
        raise TypeError(
            f"{name} must be a numeric or boolean 0/1 array, got dtype {labels.dtype}."
        )
    if labels.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (n_items, n_labels) with 0/1 entries, "
            f"got shape {labels.shape}."
        )
    if labels.shape[0] != n_items:
        raise ValueError(
            f"{name} has {labels.shape[0]} rows but {codes_name} has {n_items} codes; "
            "give one label row per code, in the same order."
        )
    if labels.shape[1] == 0:
        raise ValueError(f"{name} has no label columns; relevance needs at least one label.")
    invalid = (labels != 0) & (labels != 1)
    if invalid.any():
        row, column = np.argwhere(invalid)[0]
        raise ValueError(
            f"{name} must contain only 0 and 1, got {labels[row, column].item()!r} at row {row}, "
            f"column {column}."
        )
    return labels != 0


def _check_inputs(query_codes, db_codes, query_labels, db_labels):
    """Validate codes and labels for evaluation and return them as uint8 codes and bool labels."""
    query_codes, db_codes = check_code_pair(query_codes, db_codes)
    if query_codes.shape[0] == 0:
        raise ValueError("query_codes is empty (0 queries); evaluation needs at least one query.")
    if db_codes.shape[0] == 0:
        raise ValueError(
            "db_codes is empty (0 database items); evaluation needs at least one database item."
        )

    query_labels = _check_labels(
        query_labels, name="query_labels", codes_name="query_codes", n_items=query_codes.shape[0]
    )
    db_labels = _check_labels(
        db_labels, name="db_labels", codes_name="db_codes", n_items=db_codes.shape[0]
    )
    if query_labels.shape[1] != db_labels.shape[1]:
        raise ValueError(
            f"query_labels has {query_labels.shape[1]} label columns but db_labels has "
            f"{db_labels.shape[1]}; both must use the same label set."
        )
    return query_codes, db_codes, query_labels, db_labels


def _check_positive_int(value, *, name):
    """Return ``value`` as an int if it is a positive integer, and raise otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}.")
    return int(value)


def _check_cutoffs(values, *, name):
    """Validate one or several rank cut-offs and return them as a tuple without repeats."""
    if isinstance(values, (int, np.integer)) and not isinstance(values, (bool, np.bool_)):
        values = (values,)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(
            f"{name} must be a positive integer or a sequence of positive integers, got {values!r}."
        )
    cutoffs = [_check_positive_int(value, name=f"each value of {name}") for value in values]
    return tuple(dict.fromkeys(cutoffs))


# ---------------------------------------------------------------------------------------------
# Relevance and ranking of one chunk of queries
# ---------------------------------------------------------------------------------------------


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


def _rank_stable(distances):
    """Sort each row by ascending distance, keeping equal distances in database order.

    Returns the database indices in ranked order, ndarray of shape distances.shape, dtype int64.
    """
    return np.argsort(distances, axis=1, kind="stable")


def _rank_relevance(distances, relevance):
    """Reorder each row of ``relevance`` into the ranking of the same row of ``distances``."""
    order = _rank_stable(distances)

    # Indexing the flattened rows with one offset per row is faster than take_along_axis.
    order += (np.arange(order.shape[0], dtype=np.int64) * order.shape[1])[:, None]
    return np.take(relevance.ravel(), order)


def _count_by_distance(distances, relevance, n_bits):
    """Count the pairs at each exact Hamming distance, pooled over queries.

    Returns an ndarray of shape (n_bits + 1, 2), dtype int64: column 0 counts the pairs that
    are not relevant and column 1 the relevant ones.
    """
    # Key 2 * distance + relevance lets one bincount split both counts.
    keys = distances.astype(np.intp)
    keys <<= 1
    keys |= relevance
    return np.bincount(keys.ravel(), minlength=2 * (n_bits + 1)).reshape(n_bits + 1, 2)


def _divide_or_zero(numerator, denominator):
    """Divide element-wise, giving 0 where the denominator is 0 (a query with nothing to score)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)
    return out


# ---------------------------------------------------------------------------------------------
# One pass over the queries
# ---------------------------------------------------------------------------------------------


@dataclass
class _QueryScores:
    """Per-query scores and pooled counts from one pass over the queries.

    Per-query arrays have shape (n_queries,). Dictionaries are keyed by the requested cut-off;
    values of a cut-off above the database size are computed at the database size.
    ``counts_by_distance`` has shape (n_bits + 1, 2) as returned by ``_count_by_distance``.
    """

    n_database: int
    n_bits: int
    n_relevant: np.ndarray
    average_precision: np.ndarray | None = None
    average_precision_at: dict = field(default_factory=dict)
    relevant_in_top: dict = field(default_factory=dict)
    counts_by_distance: np.ndarray | None = None


def _score_query(scores, query, ranked_relevance):
    """Fill the scores of one query from its relevance in ranked order."""
    n_db = ranked_relevance.shape[0]

    # 1-based ranks of the relevant items. The m-th of them has precision m / rank there, and
    # average precision is the mean of those values.
    relevant_ranks = np.flatnonzero(ranked_relevance) + 1
    n_relevant = relevant_ranks.shape[0]
    precision_at_hits = np.arange(1, n_relevant + 1) / relevant_ranks
    scores.n_relevant[query] = n_relevant

    if scores.average_precision is not None and n_relevant:
        scores.average_precision[query] = precision_at_hits.sum() / n_relevant

    for k, average_precision_at_k in scores.average_precision_at.items():
        hits = np.searchsorted(relevant_ranks, min(k, n_db), side="right")
        if hits:
            average_precision_at_k[query] = precision_at_hits[:hits].sum() / hits

    for cutoff, relevant_in_top in scores.relevant_in_top.items():
        relevant_in_top[query] = np.searchsorted(relevant_ranks, min(cutoff, n_db), side="right")


def _score_chunk(scores, first_query, distances, relevance):
    """Rank and score one chunk of queries, a block of rows at a time."""
    n_chunk, n_db = distances.shape
    rows_per_block = max(1, _RANK_BLOCK_PAIRS // n_db)
    for start in range(0, n_chunk, rows_per_block):
        stop = min(start + rows_per_block, n_chunk)
        block_distances = distances[start:stop]
        block_relevance = relevance[start:stop]

        ranked_relevance = _rank_relevance(block_distances, block_relevance)
        for offset, ranked_row in enumerate(ranked_relevance):
            _score_query(scores, first_query + start + offset, ranked_row)
        del ranked_relevance

        if scores.counts_by_distance is not None:
            scores.counts_by_distance += _count_by_distance(
                block_distances, block_relevance, scores.n_bits
            )


def _score_queries(
    query_codes,
    db_codes,
    query_labels,
    db_labels,
    *,
    average_precision=False,
    map_at=(),
    precision_at=(),
    radius=False,
    chunk_size=256,
    progress=NULL_PROGRESS,
):
    """Validate the inputs and compute the requested per-query scores in one pass.

    Returns a ``_QueryScores``. Memory peaks near 4 bytes per query-database pair of a chunk
    (distances, relevance and the buffer that builds it), plus up to 70 MiB for ranked blocks.
    """
    query_codes, db_codes, query_labels, db_labels = _check_inputs(
        query_codes, db_codes, query_labels, db_labels
    )
    chunk_size = _check_positive_int(chunk_size, name="chunk_size")
    n_queries, n_db = query_codes.shape[0], db_codes.shape[0]
    n_bits = query_codes.shape[1] * 8

    scores = _QueryScores(
        n_database=n_db, n_bits=n_bits, n_relevant=np.zeros(n_queries, dtype=np.int64)
    )
    if average_precision:
        scores.average_precision = np.zeros(n_queries, dtype=np.float64)
    scores.average_precision_at = {k: np.zeros(n_queries, dtype=np.float64) for k in map_at}
    scores.relevant_in_top = {n: np.zeros(n_queries, dtype=np.int64) for n in precision_at}
    if radius:
        scores.counts_by_distance = np.zeros((n_bits + 1, 2), dtype=np.int64)

    query_label_bits = np.packbits(query_labels, axis=1)
    db_label_bits_by_column = np.ascontiguousarray(np.packbits(db_labels, axis=1).T)

    logger.info(
        "Evaluating %d queries against %d database items (%d-bit codes, chunks of %d queries)",
        n_queries, n_db, n_bits, chunk_size,
    )
    started = time.perf_counter()
    with progress.task("Evaluating queries", total=n_queries) as advance:
        for start in range(0, n_queries, chunk_size):
            stop = min(start + chunk_size, n_queries)
            distances = hamming_distances(query_codes[start:stop], db_codes)
            relevance = _relevance(query_label_bits[start:stop], db_label_bits_by_column)
            _score_chunk(scores, start, distances, relevance)
            del distances, relevance
            logger.debug("Scored queries %d to %d of %d", start, stop, n_queries)
            advance(stop - start)
    logger.info(
        "Evaluated %d queries in %.2f s (%d without a relevant item)",
        n_queries, time.perf_counter() - started, int(np.count_nonzero(scores.n_relevant == 0)),
    )
    return scores


# ---------------------------------------------------------------------------------------------
# Reductions from per-query scores to reported metrics
# ---------------------------------------------------------------------------------------------


def _capped(cutoffs, n_db):
    """Map each cut-off above the database size to that size."""
    return {cutoff: n_db for cutoff in cutoffs if cutoff > n_db}


def _reduce_mean_average_precision(scores):
    return float(scores.average_precision.mean())


def _reduce_mean_average_precision_at_k(scores, k):
    return float(scores.average_precision_at[k].mean())


def _reduce_precision_at_n(scores, cutoffs):
    precision, recall = [], []
    for cutoff in cutoffs:
        relevant_in_top = scores.relevant_in_top[cutoff]
        precision.append(float((relevant_in_top / min(cutoff, scores.n_database)).mean()))
        recall.append(float(_divide_or_zero(relevant_in_top, scores.n_relevant).mean()))
    return PrecisionAtN(
        n=tuple(cutoffs),
        precision=tuple(precision),
        recall=tuple(recall),
        capped=_capped(cutoffs, scores.n_database),
    )


def _reduce_radius_curve(scores):
    # Micro averaging: pool the pairs of all queries, then divide once per radius.
    pairs_within = np.cumsum(scores.counts_by_distance.sum(axis=1))
    relevant_within = np.cumsum(scores.counts_by_distance[:, 1])
    return RadiusCurve(
        radius=np.arange(scores.n_bits + 1, dtype=np.int64),
        precision=_divide_or_zero(relevant_within, pairs_within),
        recall=_divide_or_zero(relevant_within, relevant_within[-1]),
    )


# ---------------------------------------------------------------------------------------------
# Public metrics
# ---------------------------------------------------------------------------------------------

def mean_average_precision(
    query_codes, db_codes, query_labels, db_labels, *, chunk_size=256, progress=NULL_PROGRESS
):
    """Compute the mean average precision (mAP) of Hamming ranking over the whole database.

    A database item is relevant to a query when they share at least one label. Each query ranks
    the whole database by ascending Hamming distance, with ties kept in database order (stable
    sort). Its average precision is the mean of precision@i over the ranks i of its relevant
    items. A query with no relevant item in the database scores 0 and still counts in the mean.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8
        Packed query codes.
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8
        Packed database codes with the same width as ``query_codes``.
    query_labels : array-like of shape (n_queries, n_labels)
        0/1 (or boolean) label matrix of the queries; a scipy sparse matrix is accepted.
    db_labels : array-like of shape (n_database, n_labels)
        0/1 (or boolean) label matrix of the database, with the same label columns.
    chunk_size : int, default=256
        Number of queries ranked together. Memory grows with ``chunk_size * n_database``
        (about 4 bytes per pair); results do not depend on it.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Receives one advance per chunk of queries.

    Returns
    -------
    float
        mAP in [0, 1].
    """
    scores = _score_queries(
        query_codes, db_codes, query_labels, db_labels,
        average_precision=True, chunk_size=chunk_size, progress=progress,
    )
    return _reduce_mean_average_precision(scores)


def mean_average_precision_at_k(
    query_codes, db_codes, query_labels, db_labels, k, *, chunk_size=256, progress=NULL_PROGRESS
):
    """Compute mAP@k: mean average precision over the top k items of the Hamming ranking.

    A database item is relevant to a query when they share at least one label. Each query ranks
    the database by ascending Hamming distance, with ties kept in database order (stable sort).
    AP@k is the sum of precision@i over the relevant ranks i <= k, divided by the number of
    relevant items retrieved within the top k (the normaliser of the MATLAB code that DSTDH uses,
    not the number of relevant items in the database). A query with no relevant item in its top k,
    including one with no relevant item at all, scores 0 and still counts in the mean. When k
    exceeds the database size, the whole database is used, which gives the value of
    ``mean_average_precision``.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8
        Packed query codes.
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8
        Packed database codes with the same width as ``query_codes``.
    query_labels : array-like of shape (n_queries, n_labels)
        0/1 (or boolean) label matrix of the queries; a scipy sparse matrix is accepted.
    db_labels : array-like of shape (n_database, n_labels)
        0/1 (or boolean) label matrix of the database, with the same label columns.
    k : int
        Rank cut-off, a positive integer.
    chunk_size : int, default=256
        Number of queries ranked together. Memory grows with ``chunk_size * n_database``
        (about 4 bytes per pair); results do not depend on it.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Receives one advance per chunk of queries.

    Returns
    -------
    float
        mAP@k in [0, 1].
    """
    k = _check_positive_int(k, name="k")
    scores = _score_queries(
        query_codes, db_codes, query_labels, db_labels,
        map_at=(k,), chunk_size=chunk_size, progress=progress,
    )
    if k > scores.n_database:
        logger.info(
            "mAP@%d computed at the database size %d, which is smaller than k", k, scores.n_database
        )
    return _reduce_mean_average_precision_at_k(scores, k)


def precision_at_n(
    query_codes,
    db_codes,
    query_labels,
    db_labels,
    n=DEFAULT_PRECISION_AT,
    *,
    chunk_size=256,
    progress=NULL_PROGRESS,
):
    """Compute precision@N and recall@N of Hamming ranking for one or several cut-offs N.

    A database item is relevant to a query when they share at least one label. Each query ranks
    the database by ascending Hamming distance, with ties kept in database order (stable sort), so
    the top N contains exactly N items even inside a tie. precision@N is the fraction of relevant
    items in the top N. recall@N is the fraction of the query's relevant items found there. Both
    are averaged over queries. A query with no relevant item in the database scores 0 for both
    and still counts in the mean. A cut-off N above the database size is computed at the database
    size (precision = relevant items / n_database) and listed in ``capped``.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8
        Packed query codes.
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8
        Packed database codes with the same width as ``query_codes``.
    query_labels : array-like of shape (n_queries, n_labels)
        0/1 (or boolean) label matrix of the queries; a scipy sparse matrix is accepted.
    db_labels : array-like of shape (n_database, n_labels)
        0/1 (or boolean) label matrix of the database, with the same label columns.
    n : int or sequence of int, default=(500, 1000, 2000, 3000, 4000, 5000)
        Rank cut-offs, positive integers. Repeated values are computed once.
    chunk_size : int, default=256
        Number of queries ranked together. Memory grows with ``chunk_size * n_database``
        (about 4 bytes per pair); results do not depend on it.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Receives one advance per chunk of queries.

    Returns
    -------
    PrecisionAtN
        Named tuple ``(n, precision, recall, capped)``, with one value per distinct cut-off and
        ``capped`` mapping each cut-off above the database size to that size.
    """
    cutoffs = _check_cutoffs(n, name="n")
    scores = _score_queries(
        query_codes, db_codes, query_labels, db_labels,
        precision_at=cutoffs, chunk_size=chunk_size, progress=progress,
    )
    return _reduce_precision_at_n(scores, cutoffs)


def precision_recall_by_radius(
    query_codes, db_codes, query_labels, db_labels, *, chunk_size=256, progress=NULL_PROGRESS
):
    """Compute precision and recall of Hamming-radius retrieval for every radius 0..n_bits.

    A database item is relevant to a query when they share at least one label. Retrieval within
    radius r returns every database item at Hamming distance <= r, so ties and ranking order play
    no part. Counts are micro-averaged over all query-database pairs: precision(r) = relevant pairs
    within r / all pairs within r, or 0 when no pair lies within r; recall(r) = relevant pairs
    within r / all relevant pairs, or 0 when no query has a relevant item. A query with no
    relevant item adds its retrieved pairs to the precision denominator and nothing else.
    There is no rank cut-off, so the database size imposes no cap.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8
        Packed query codes.
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8
        Packed database codes with the same width as ``query_codes``.
    query_labels : array-like of shape (n_queries, n_labels)
        0/1 (or boolean) label matrix of the queries; a scipy sparse matrix is accepted.
    db_labels : array-like of shape (n_database, n_labels)
        0/1 (or boolean) label matrix of the database, with the same label columns.
    chunk_size : int, default=256
        Number of queries ranked together. Memory grows with ``chunk_size * n_database``
        (about 4 bytes per pair); results do not depend on it.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Receives one advance per chunk of queries.

    Returns
    -------
    RadiusCurve
        Named tuple ``(radius, precision, recall)`` of arrays of shape (n_bits + 1,).
    """
    scores = _score_queries(
        query_codes, db_codes, query_labels, db_labels,
        radius=True, chunk_size=chunk_size, progress=progress,
    )
    return _reduce_radius_curve(scores)
