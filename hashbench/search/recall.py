"""Recall of an approximate Hamming search against the exact result.

Hamming distances tie often, so k-NN recall counts distances, not ids: a returned item is a hit
when its true distance to the query is at most the exact k-th nearest distance. Any of several
items tied at that distance is then an equally correct result, as in ann-benchmarks.
"""

import numpy as np

from hashbench.metrics.hamming import check_code_pair


def _true_distances(query_codes, db_codes, ids):
    """Return the Hamming distance of each query to each of its ids, (n_queries, k) int32."""
    gathered = db_codes[np.clip(ids, 0, None)]
    xor = np.bitwise_xor(gathered, query_codes[:, None, :])
    return np.unpackbits(xor, axis=-1).sum(axis=-1, dtype=np.int32)


def knn_recall(query_codes, db_codes, ids, exact_distances):
    """Compute the tie-aware recall@k of approximate k-NN results.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8
        Packed query codes.
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8
        Packed database codes that were searched.
    ids : ndarray of shape (n_queries, k), integer dtype
        Returned database ids; -1 marks a missing result.
    exact_distances : ndarray of shape (n_queries, k), integer dtype
        Exact k-NN distances in ascending order, from an exact backend.

    Returns
    -------
    float
        Mean over queries of (distinct valid ids within the exact k-th distance) / k, in [0, 1].
        The distances are recomputed from the codes, so a backend cannot report a wrong distance.
        Returns 1.0 when there are no queries.
    """
    query_codes, db_codes = check_code_pair(query_codes, db_codes)
    ids = np.asarray(ids, dtype=np.int64)
    exact_distances = np.asarray(exact_distances)
    if ids.shape != exact_distances.shape or ids.ndim != 2 or ids.shape[0] != query_codes.shape[0]:
        raise ValueError(
            f"ids {ids.shape} and exact_distances {exact_distances.shape} must both have shape "
            f"(n_queries, k) with n_queries={query_codes.shape[0]}."
        )
    if ids.shape[0] == 0:
        return 1.0
    k = ids.shape[1]

    # Count each valid id once per query.
    sorted_ids = np.sort(ids, axis=1)
    distinct = np.ones_like(sorted_ids, dtype=bool)
    distinct[:, 1:] = sorted_ids[:, 1:] != sorted_ids[:, :-1]
    valid = distinct & (sorted_ids >= 0) & (sorted_ids < db_codes.shape[0])

    true_distances = _true_distances(query_codes, db_codes, np.where(valid, sorted_ids, 0))
    hits = valid & (true_distances <= exact_distances[:, -1:])
    return float(np.mean(hits.sum(axis=1) / k))


def range_recall(approximate, exact):
    """Compute the recall of a radius search: found exact results over all exact results.

    Parameters
    ----------
    approximate, exact : RangeResult
        Results of the same queries and radius; ``exact`` from an exact backend.

    Returns
    -------
    float
        Number of (query, id) pairs of ``exact`` also in ``approximate``, divided by the number of
        pairs in ``exact``, summed over all queries. Returns 1.0 when ``exact`` is empty.
    """
    if len(approximate) != len(exact):
        raise ValueError(
            f"the results cover {len(approximate)} and {len(exact)} queries; pass the results of "
            "the same queries."
        )
    total = len(exact.ids)
    if total == 0:
        return 1.0
    found = 0
    for query in range(len(exact)):
        exact_ids, _ = exact.query(query)
        approximate_ids, _ = approximate.query(query)
        found += np.isin(exact_ids, approximate_ids).sum()
    return float(found / total)
