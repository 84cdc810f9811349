"""Retrieval figures of Hamming ranking: mAP, mAP@k, precision@N, NDCG@k and radius retrieval.

Every figure follows the conventions it is given (``hashbench.metrics.conventions``), and its
formula is written once, in ``docs/metrics.md`` and in the docstring of its function here. All
figures come from one pass over chunks of queries (``hashbench.metrics.scoring``). The functions
below validate the inputs and run the pass with what their figure needs. Then they reduce the
per-query values to a mean under the ``empty_queries`` convention.

Each function takes packed codes, or ``query_codes=None, db_codes=None`` and a precomputed
Hamming distance table ``distances`` of shape (n_queries, n_database) with the code length
``n_bits``. A cut-off above the database size is computed at the database size.
"""

from typing import NamedTuple

import numpy as np

from hashbench.metrics.conventions import as_conventions
from hashbench.metrics.scoring import score_queries
from hashbench.metrics.tie_aware import (
    discount_sums,
    expected_average_precision_retrieved,
    expected_dcg,
    expected_precision_sum,
    expected_relevant_in_top,
    harmonic_numbers,
    ideal_dcg,
)
from hashbench.metrics.validation import (
    _check_cutoffs,
    _check_positive_int,
    check_inputs,
)
from hashbench.progress import NULL_PROGRESS

#: Default cut-offs N for precision@N.
DEFAULT_PRECISION_AT = (500, 1000, 2000, 3000, 4000, 5000)

#: Default cut-offs k for NDCG@k.
DEFAULT_NDCG_AT = (100, 1000)

#: The Hamming radius of the hash-lookup figures.
LOOKUP_RADIUS = 2


class PrecisionAtN(NamedTuple):
    """Precision and recall at rank cut-offs N, averaged over queries.

    Attributes
    ----------
    n : tuple of int
        The requested cut-offs, in the requested order.
    precision : tuple of float
        Mean precision@N for each cut-off (None where no query has a defined value).
    recall : tuple of float
        Mean recall@N for each cut-off (None where no query has a defined value).
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

    Every array has shape (n_bits + 1,) and dtype float64; NaN marks a radius where no query has
    a defined value under ``empty_queries="drop"``.

    Attributes
    ----------
    radius : ndarray, dtype int64
        Hamming radii 0, 1, ..., n_bits.
    precision, recall : ndarray
        Micro-averaged: the pairs of all queries pooled, then divided once per radius.
    precision_macro, recall_macro : ndarray
        Macro-averaged: each query's precision and recall, then their mean.
    """

    radius: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    precision_macro: np.ndarray
    recall_macro: np.ndarray


# ---------------------------------------------------------------------------------------------
# Reductions from the pass to figures
# ---------------------------------------------------------------------------------------------


def _mean(values, defined, conventions, axis=None):
    """Average per-query values: undefined ones count 0 (``zero``) or are left out (``drop``)."""
    values = np.where(defined, values, 0.0)
    if conventions.empty_queries == "zero":
        return np.mean(values, axis=axis)
    n_defined = np.count_nonzero(defined, axis=axis)
    total = np.sum(values, axis=axis)
    return np.divide(total, n_defined, out=np.full(np.shape(total), np.nan), where=n_defined > 0)


def _as_float(value):
    """Turn a mean into a float, or None where it is undefined (NaN)."""
    value = float(value)
    return None if np.isnan(value) else value


def _capped(cutoffs, n_db):
    return {cutoff: n_db for cutoff in cutoffs if cutoff > n_db}


def _average_precision(scores, k, conventions, harmonic):
    """Mean AP@k (k = n_database gives mAP) under the conventions."""
    k = min(k, scores.n_database)
    n_relevant = scores.n_relevant
    has_relevant = n_relevant > 0
    ordered = conventions.ties != "tie-aware"

    if conventions.topk_normaliser == "retrieved" and k < scores.n_database:
        if ordered:
            normaliser = scores.relevant_in_top[k]
            values = np.divide(
                scores.precision_sum_in_top[k], normaliser,
                out=np.zeros(normaliser.shape), where=normaliser > 0,
            )
            defined = normaliser > 0
        else:
            values, defined = expected_average_precision_retrieved(scores.counts, k, harmonic)
        return _as_float(_mean(values, defined, conventions))

    # AP over the whole database, or AP@k normalised by min(k, relevant items).
    if ordered:
        precision_sum = scores.precision_sum_in_top[k]
    else:
        precision_sum = expected_precision_sum(scores.counts, k, harmonic)
    normaliser = np.minimum(n_relevant, k)
    values = np.divide(precision_sum, normaliser, out=np.zeros(normaliser.shape), where=has_relevant)
    return _as_float(_mean(values, has_relevant, conventions))


def _precision_recall_at(scores, n, conventions):
    """Mean precision@n and recall@n under the conventions."""
    k = min(n, scores.n_database)
    if conventions.ties == "tie-aware":
        relevant_in_top = expected_relevant_in_top(scores.counts, k)
    else:
        relevant_in_top = scores.relevant_in_top[k]
    n_relevant = scores.n_relevant
    has_relevant = n_relevant > 0
    precision = relevant_in_top / k
    recall = np.divide(relevant_in_top, n_relevant, out=np.zeros(n_relevant.shape), where=has_relevant)
    return (
        _as_float(_mean(precision, has_relevant, conventions)),
        _as_float(_mean(recall, has_relevant, conventions)),
    )


def _ndcg(scores, k, conventions, discounts):
    """Mean NDCG@k under the conventions."""
    k = min(k, scores.n_database)
    if conventions.ties == "tie-aware":
        dcg = expected_dcg(scores.gain_by_distance, scores.counts, k, discounts)
    else:
        dcg = scores.dcg_at[k]
    ideal = ideal_dcg(scores.gain_levels, k, discounts)
    defined = ideal > 0
    values = np.divide(dcg, ideal, out=np.zeros(ideal.shape), where=defined)
    return _as_float(_mean(values, defined, conventions))


def _radius_curve(scores, conventions):
    """Micro- and macro-averaged precision and recall within every radius."""
    retrieved = np.cumsum(scores.counts.sum(axis=2, dtype=np.int64), axis=1)
    relevant = np.cumsum(scores.counts[:, :, 1], axis=1, dtype=np.int64)
    n_relevant = scores.n_relevant
    has_relevant = n_relevant > 0

    # Micro: pool the pairs of the queries that count, then divide once per radius.
    counted = has_relevant if conventions.empty_queries == "drop" else np.ones_like(has_relevant)
    pooled_retrieved = retrieved[counted].sum(axis=0)
    pooled_relevant = relevant[counted].sum(axis=0)
    micro_precision = np.divide(
        pooled_relevant, pooled_retrieved, out=np.zeros(pooled_retrieved.shape), where=pooled_retrieved > 0
    )
    total_relevant = n_relevant[counted].sum()
    micro_recall = pooled_relevant / total_relevant if total_relevant else np.zeros(pooled_relevant.shape)

    # Macro: per query, then the mean. A lookup that returns nothing has no precision.
    precision_defined = (retrieved > 0) & has_relevant[:, None]
    precision = np.divide(relevant, retrieved, out=np.zeros(retrieved.shape), where=retrieved > 0)
    recall_defined = np.broadcast_to(has_relevant[:, None], relevant.shape)
    recall = np.divide(
        relevant, n_relevant[:, None], out=np.zeros(relevant.shape), where=has_relevant[:, None]
    )
    return RadiusCurve(
        radius=np.arange(scores.n_bits + 1, dtype=np.int64),
        precision=micro_precision,
        recall=micro_recall,
        precision_macro=np.asarray(_mean(precision, precision_defined, conventions, axis=0), dtype=np.float64),
        recall_macro=np.asarray(_mean(recall, recall_defined, conventions, axis=0), dtype=np.float64),
    )


def _lookup_figures(scores, curve, radius=LOOKUP_RADIUS):
    """Return precision and recall of the hash lookup within ``radius`` and the empty-lookup share.

    ``curve`` is the ``RadiusCurve`` of the same scores, so a caller that reports the curve as
    well computes it once.
    """
    radius = min(radius, scores.n_bits)
    retrieved = scores.counts[:, : radius + 1].sum(axis=(1, 2))
    return {
        f"precision@radius{radius}": _as_float(curve.precision_macro[radius]),
        f"recall@radius{radius}": _as_float(curve.recall_macro[radius]),
        f"empty_lookups@radius{radius}": float(np.mean(retrieved == 0)),
    }


def _score(query_codes, db_codes, query_labels, db_labels, *, distances, n_bits, conventions,
           cutoffs=(), ndcg_cutoffs=(), chunk_size, progress):
    """Validate the inputs and run the pass; returns the scores and the conventions object."""
    conventions = as_conventions(conventions)
    query_codes, db_codes, distances, query_labels, db_labels, n_bits = check_inputs(
        query_codes, db_codes, query_labels, db_labels, distances=distances, n_bits=n_bits
    )
    chunk_size = _check_positive_int(chunk_size, name="chunk_size")
    n_db = db_labels.shape[0]
    scores = score_queries(
        query_codes, db_codes, query_labels, db_labels,
        distances=distances, n_bits=n_bits, conventions=conventions,
        cutoffs={min(k, n_db) for k in cutoffs},
        ndcg_cutoffs=sorted({min(k, n_db) for k in ndcg_cutoffs}),
        chunk_size=chunk_size, progress=progress,
    )
    return scores, conventions


# ---------------------------------------------------------------------------------------------
# Public figures
# ---------------------------------------------------------------------------------------------

_COMMON_PARAMETERS = """
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8, or None
        Packed query codes, or None with ``distances``.
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8, or None
        Packed database codes with the same width, or None with ``distances``.
    query_labels : array-like of shape (n_queries, n_labels)
        0/1 (or boolean) label matrix of the queries; a scipy sparse matrix is accepted.
    db_labels : array-like of shape (n_database, n_labels)
        0/1 (or boolean) label matrix of the database, with the same label columns."""

_COMMON_OPTIONS = """
    conventions : Conventions, str or None, default=None
        The evaluation conventions, or the name of a preset; None is the ``hashbench`` preset.
    distances : ndarray of shape (n_queries, n_database), integer dtype, default=None
        A precomputed Hamming distance table to use instead of codes.
    n_bits : int, default=None
        The code length of ``distances``; only with ``distances``.
    chunk_size : int, default=256
        Number of queries scored together. Memory grows with ``chunk_size * n_database``
        (about 4 bytes per pair); results do not depend on it.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Receives one advance per query."""


def _document(function):
    function.__doc__ = function.__doc__.replace("    {parameters}", _COMMON_PARAMETERS.strip("\n"))
    function.__doc__ = function.__doc__.replace("    {options}", _COMMON_OPTIONS.strip("\n"))
    return function


@_document
def mean_average_precision(
    query_codes, db_codes, query_labels, db_labels, *, conventions=None, distances=None,
    n_bits=None, chunk_size=256, progress=NULL_PROGRESS,
):
    """Compute mAP, the mean over queries of average precision over the whole database.

    A query's AP is the mean of precision@i over the ranks i of its relevant items, in the
    Hamming ranking ordered under ``conventions.ties`` (for ``tie-aware``, its expected value
    over all orders of tied items). A query with no relevant item is undefined and counts 0 or is
    left out (``conventions.empty_queries``).

    Parameters
    ----------
    {parameters}
    {options}

    Returns
    -------
    float or None
        mAP in [0, 1]; None when every query is left out.
    """
    scores, conventions = _score(
        query_codes, db_codes, query_labels, db_labels, distances=distances, n_bits=n_bits,
        conventions=conventions, chunk_size=chunk_size, progress=progress,
    )
    harmonic = harmonic_numbers(scores.n_database)
    return _average_precision(scores, scores.n_database, conventions, harmonic)


@_document
def mean_average_precision_at_k(
    query_codes, db_codes, query_labels, db_labels, k, *, conventions=None, distances=None,
    n_bits=None, chunk_size=256, progress=NULL_PROGRESS,
):
    """Compute mAP@k: mean average precision over the top k of the Hamming ranking.

    AP@k sums precision@i over the relevant ranks i <= k and divides by the number of relevant
    items retrieved within the top k (``topk_normaliser="retrieved"``) or by min(k, relevant
    items in the database) (``"min-k-relevant"``). A zero normaliser makes AP@k undefined, which
    counts 0 or is left out (``conventions.empty_queries``). With k at or above the database size
    both normalisers give AP.

    Parameters
    ----------
    {parameters}
    k : int
        Rank cut-off, a positive integer.
    {options}

    Returns
    -------
    float or None
        mAP@k in [0, 1]; None when every query is left out.
    """
    k = _check_positive_int(k, name="k")
    scores, conventions = _score(
        query_codes, db_codes, query_labels, db_labels, distances=distances, n_bits=n_bits,
        conventions=conventions, cutoffs=(k,), chunk_size=chunk_size, progress=progress,
    )
    harmonic = harmonic_numbers(scores.n_database)
    return _average_precision(scores, k, conventions, harmonic)


@_document
def precision_at_n(
    query_codes, db_codes, query_labels, db_labels, n=DEFAULT_PRECISION_AT, *, conventions=None,
    distances=None, n_bits=None, chunk_size=256, progress=NULL_PROGRESS,
):
    """Compute precision@N and recall@N of the Hamming ranking for one or several cut-offs N.

    precision@N is the fraction of relevant items among the top N, and recall@N the fraction of
    the query's relevant items found there. Under ``tie-aware`` both are expectations over tie
    orders. A query with no relevant item is undefined for both. A cut-off above the database
    size is computed at the database size and listed in ``capped``.

    Parameters
    ----------
    {parameters}
    n : int or sequence of int, default=(500, 1000, 2000, 3000, 4000, 5000)
        Rank cut-offs, positive integers. Repeated values are computed once.
    {options}

    Returns
    -------
    PrecisionAtN
        Named tuple ``(n, precision, recall, capped)``.
    """
    cutoffs = _check_cutoffs(n, name="n")
    scores, conventions = _score(
        query_codes, db_codes, query_labels, db_labels, distances=distances, n_bits=n_bits,
        conventions=conventions, cutoffs=cutoffs, chunk_size=chunk_size, progress=progress,
    )
    values = [_precision_recall_at(scores, cutoff, conventions) for cutoff in cutoffs]
    return PrecisionAtN(
        n=tuple(cutoffs),
        precision=tuple(precision for precision, _ in values),
        recall=tuple(recall for _, recall in values),
        capped=_capped(cutoffs, scores.n_database),
    )


@_document
def ndcg_at_k(
    query_codes, db_codes, query_labels, db_labels, k, *, conventions=None, distances=None,
    n_bits=None, chunk_size=256, progress=NULL_PROGRESS,
):
    """Compute NDCG@k with graded relevance, the number of labels a database item shares.

    DCG@k = sum over ranks i <= k of (2**g_i - 1) / log2(i + 1), with g_i the shared labels of the
    item at rank i; NDCG@k divides it by the DCG@k of the ideal ranking (most shared labels
    first). Under ``tie-aware`` DCG@k is its expectation over tie orders. A query with no
    relevant item has ideal DCG 0 and is undefined.

    Parameters
    ----------
    {parameters}
    k : int
        Rank cut-off, a positive integer.
    {options}

    Returns
    -------
    float or None
        NDCG@k in [0, 1]; None when every query is left out.
    """
    k = _check_positive_int(k, name="k")
    scores, conventions = _score(
        query_codes, db_codes, query_labels, db_labels, distances=distances, n_bits=n_bits,
        conventions=conventions, ndcg_cutoffs=(k,), chunk_size=chunk_size, progress=progress,
    )
    return _ndcg(scores, k, conventions, discount_sums(scores.n_database))


@_document
def precision_recall_by_radius(
    query_codes, db_codes, query_labels, db_labels, *, conventions=None, distances=None,
    n_bits=None, chunk_size=256, progress=NULL_PROGRESS,
):
    """Compute precision and recall of Hamming-radius retrieval for every radius 0..n_bits.

    Retrieval within radius r returns every database item at Hamming distance <= r, so the tie
    convention plays no part. Micro averaging pools the pairs of all queries: precision(r) =
    relevant pairs within r / pairs within r (0 when no pair lies within r), recall(r) = relevant
    pairs within r / relevant pairs. Macro averaging takes each query's precision and recall and
    then the mean. A query whose lookup returns nothing has no precision, and a query with no
    relevant item has neither. Such a value counts 0 or is left out
    (``conventions.empty_queries``).
    Under ``drop``, micro averaging pools only the queries with a relevant item.

    Parameters
    ----------
    {parameters}
    {options}

    Returns
    -------
    RadiusCurve
        Named tuple of arrays of shape (n_bits + 1,).
    """
    scores, conventions = _score(
        query_codes, db_codes, query_labels, db_labels, distances=distances, n_bits=n_bits,
        conventions=conventions, chunk_size=chunk_size, progress=progress,
    )
    return _radius_curve(scores, conventions)


@_document
def precision_within_radius(
    query_codes, db_codes, query_labels, db_labels, radius=LOOKUP_RADIUS, *, conventions=None,
    distances=None, n_bits=None, chunk_size=256, progress=NULL_PROGRESS,
):
    """Compute the hash-lookup figures: precision and recall within a Hamming radius (default 2).

    Both are macro-averaged (see ``precision_recall_by_radius``). A query whose lookup returns
    nothing has no precision: under ``empty_queries="zero"`` it scores 0, as in the evaluation
    code of spectral hashing and ITQ; under ``drop`` it is left out. The fraction of such queries
    is reported as well.

    Parameters
    ----------
    {parameters}
    radius : int, default=2
        Hamming radius of the lookup, a non-negative integer (capped at the code length).
    {options}

    Returns
    -------
    dict
        ``precision@radius<r>``, ``recall@radius<r>`` (float or None) and
        ``empty_lookups@radius<r>`` (fraction of queries whose lookup returns nothing).
    """
    if isinstance(radius, (bool, np.bool_)) or not isinstance(radius, (int, np.integer)) or radius < 0:
        raise ValueError(f"radius must be a non-negative integer, got {radius!r}.")
    scores, conventions = _score(
        query_codes, db_codes, query_labels, db_labels, distances=distances, n_bits=n_bits,
        conventions=conventions, chunk_size=chunk_size, progress=progress,
    )
    return _lookup_figures(scores, _radius_curve(scores, conventions), int(radius))
