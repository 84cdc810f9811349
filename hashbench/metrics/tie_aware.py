"""Closed-form expectations of ranking figures over all orders of tied items.

Hamming ranking orders the database by distance, and items at equal distance form a tie group.
Under the ``tie-aware`` convention (He, Liu, Wang and Sclaroff, "Hashing as Tie-Aware Learning to
Rank", CVPR 2018) a figure is its expected value when each tie group is put in a uniformly random
order. Every function here takes the per-query counts of the evaluation pass, ``counts`` of shape
(n_queries, n_bits + 1, 2) with the non-relevant items at distance d in ``counts[:, d, 0]`` and
the relevant ones in ``counts[:, d, 1]``, and never draws an order.

Notation for one query and one tie group at distance d: ``c`` items, ``r`` of them relevant,
``N`` items and ``R`` relevant items at smaller distances, and ``m`` of the group's positions
inside the top k (``m = clip(k - N, 0, c)``). In a random order, position ``N + j`` of the group
contains a relevant item with probability ``r / c``, and given that, ``(j - 1)(r - 1) / (c - 1)``
relevant items of the group are expected before it. Summing precision over the group's positions
inside the top k gives

    (r / c) * [(R + 1) * (H(N + m) - H(N)) + (r - 1) / (c - 1) * (m - (N + 1) * (H(N + m) - H(N)))]

with ``H`` the harmonic numbers, since sum_j 1 / (N + j) = H(N + m) - H(N) and
sum_j (j - 1) / (N + j) = m - (N + 1) * (H(N + m) - H(N)). Summed over the groups and divided by
a fixed normaliser this is the expected AP (k = n_database) or AP@k with the ``min-k-relevant``
normaliser. With the ``retrieved`` normaliser the denominator depends on the order inside the one
group that straddles the cut-off, so ``expected_average_precision_retrieved`` sums over the
hypergeometric number of relevant items that group places inside the top k.
"""

import numpy as np
from scipy.special import gammaln


def harmonic_numbers(n):
    """Return H(0..n), ndarray of shape (n + 1,), dtype float64, with H(0) = 0."""
    table = np.zeros(n + 1)
    np.cumsum(1.0 / np.arange(1, n + 1), out=table[1:])
    return table


def discount_sums(n):
    """Return D(0..n) with D(i) = sum over ranks t <= i of 1 / log2(t + 1), shape (n + 1,)."""
    table = np.zeros(n + 1)
    np.cumsum(1.0 / np.log2(np.arange(2, n + 2)), out=table[1:])
    return table


def _groups(counts, k):
    """Describe each tie group of each query, every array of shape (n_q, n_bits + 1).

    Returns the group sizes, their relevant counts, the items and relevant items ranked before
    each group, and how many of each group's positions lie within the top k.
    """
    size = counts.sum(axis=2, dtype=np.int64)
    relevant = counts[:, :, 1].astype(np.int64)
    before = np.cumsum(size, axis=1) - size
    relevant_before = np.cumsum(relevant, axis=1) - relevant
    inside = np.clip(k - before, 0, size)
    return size, relevant, before, relevant_before, inside


def _precision_sum_terms(size, relevant, before, relevant_before, inside, harmonic):
    """Expected sum of precision over each group's first ``inside`` positions, per group."""
    delta_h = harmonic[before + inside] - harmonic[before]
    safe_size = np.maximum(size, 1)
    pairs = np.divide(relevant - 1, size - 1, out=np.zeros(size.shape), where=size > 1)
    terms = (relevant / safe_size) * (
        (relevant_before + 1) * delta_h + pairs * (inside - (before + 1) * delta_h)
    )
    return np.where(size > 0, terms, 0.0)


def expected_precision_sum(counts, k, harmonic):
    """Expected sum of precision@i over the relevant ranks i <= k, per query.

    Parameters
    ----------
    counts : ndarray of shape (n_queries, n_bits + 1, 2)
    k : int
        Cut-off, at most the database size.
    harmonic : ndarray
        ``harmonic_numbers(n_database)``.

    Returns
    -------
    ndarray of shape (n_queries,), dtype float64
    """
    size, relevant, before, relevant_before, inside = _groups(counts, k)
    return _precision_sum_terms(size, relevant, before, relevant_before, inside, harmonic).sum(axis=1)


def expected_relevant_in_top(counts, k):
    """Expected number of relevant items within the top k, per query, shape (n_queries,)."""
    size, relevant, _, _, inside = _groups(counts, k)
    return (relevant * inside / np.maximum(size, 1)).sum(axis=1)


def _log_choose(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def expected_average_precision_retrieved(counts, k, harmonic):
    """Expected AP@k normalised by the relevant items retrieved within the top k.

    Returns
    -------
    values : ndarray of shape (n_queries,), dtype float64
        The expectation, where an order that retrieves no relevant item contributes 0.
    defined : ndarray of shape (n_queries,), dtype bool
        False for a query whose top k contains no relevant item in any order.
    """
    size, relevant, before, relevant_before, inside = _groups(counts, k)
    terms = _precision_sum_terms(size, relevant, before, relevant_before, inside, harmonic)
    n_queries = counts.shape[0]
    values = np.zeros(n_queries)
    defined = np.zeros(n_queries, dtype=bool)

    # The group that straddles the cut-off, if any: 0 < inside < size.
    straddles = (inside > 0) & (inside < size)
    full = inside == size
    for query in range(n_queries):
        columns = np.flatnonzero(straddles[query])
        relevant_full = int(relevant[query][full[query] & (size[query] > 0)].sum())
        if columns.size == 0:
            defined[query] = relevant_full > 0
            if relevant_full:
                values[query] = terms[query].sum() / relevant_full
            continue

        d = columns[0]
        c, r, m = int(size[query, d]), int(relevant[query, d]), int(inside[query, d])
        n_before, r_before = int(before[query, d]), int(relevant_before[query, d])
        fixed_sum = terms[query].sum() - terms[query, d]
        hits = np.arange(max(0, m - (c - r)), min(m, r) + 1)
        defined[query] = relevant_full + hits[-1] > 0
        if not defined[query]:
            continue

        # P(h relevant items of the group inside the top k) is hypergeometric.
        probability = np.exp(_log_choose(r, hits) + _log_choose(c - r, m - hits) - _log_choose(c, m))
        delta_h = harmonic[n_before + m] - harmonic[n_before]
        pairs = (hits - 1) / (m - 1) if m > 1 else np.zeros(hits.shape)
        group_sum = (hits / m) * ((r_before + 1) * delta_h + pairs * (m - (n_before + 1) * delta_h))
        denominator = relevant_full + hits
        ratio = np.divide(fixed_sum + group_sum, denominator, out=np.zeros(hits.shape), where=denominator > 0)
        values[query] = float((probability * ratio).sum())
    return values, defined


def expected_dcg(gain_by_distance, counts, k, discounts):
    """Expected DCG within the top k, per query.

    A random order spreads the gains of a tie group evenly over its positions, so each position
    of the group carries the group's mean gain.

    Parameters
    ----------
    gain_by_distance : ndarray of shape (n_queries, n_bits + 1)
        Sum of gains of the items at each distance.
    counts : ndarray of shape (n_queries, n_bits + 1, 2)
    k : int
        Cut-off, at most the database size.
    discounts : ndarray
        ``discount_sums(n_database)``.

    Returns
    -------
    ndarray of shape (n_queries,), dtype float64
    """
    size, _, before, _, inside = _groups(counts, k)
    mean_gain = gain_by_distance / np.maximum(size, 1)
    return (mean_gain * (discounts[before + inside] - discounts[before])).sum(axis=1)


def ideal_dcg(gain_levels, k, discounts):
    """DCG within the top k of the ideal ranking (most shared labels first), per query.

    Parameters
    ----------
    gain_levels : ndarray of shape (n_queries, n_labels + 1)
        Database items sharing exactly g labels with the query, for g = 0..n_labels.
    k : int
        Cut-off, at most the database size.
    discounts : ndarray
        ``discount_sums(n_database)``.

    Returns
    -------
    ndarray of shape (n_queries,), dtype float64
    """
    levels = gain_levels[:, ::-1].astype(np.int64)
    gains = np.exp2(np.arange(gain_levels.shape[1])[::-1]) - 1.0
    before = np.cumsum(levels, axis=1) - levels
    inside = np.clip(k - before, 0, levels)
    return (gains * (discounts[before + inside] - discounts[before])).sum(axis=1)
