"""All retrieval figures of a set of codes in one pass, as a JSON-serialisable report."""

import numpy as np

from hashbench.metrics.ranking import (
    DEFAULT_NDCG_AT,
    DEFAULT_PRECISION_AT,
    LOOKUP_RADIUS,
    _average_precision,
    _capped,
    _lookup_figures,
    _ndcg,
    _precision_recall_at,
    _radius_curve,
    _score,
)
from hashbench.metrics.tie_aware import discount_sums, harmonic_numbers
from hashbench.metrics.validation import _check_cutoffs
from hashbench.progress import NULL_PROGRESS

#: Number of rank cut-offs, spaced evenly on a log scale, of the precision-recall curve by rank.
PR_RANK_POINTS = 30


def _rank_grid(n_db):
    """Cut-offs 1..n_db, evenly spaced on a log scale, for the precision-recall curve by rank."""
    return tuple(int(n) for n in np.unique(np.rint(np.geomspace(1, n_db, PR_RANK_POINTS))))


def _plain_list(values):
    """Turn an array into a list of floats with None for NaN, which JSON accepts."""
    return [None if np.isnan(value) else float(value) for value in np.asarray(values, dtype=np.float64)]


def evaluate_codes(
    query_codes,
    db_codes,
    query_labels,
    db_labels,
    *,
    conventions=None,
    map_at=(1000, 5000),
    precision_at=DEFAULT_PRECISION_AT,
    ndcg_at=DEFAULT_NDCG_AT,
    distances=None,
    n_bits=None,
    chunk_size=256,
    progress=NULL_PROGRESS,
):
    """Compute every retrieval figure of hashbench in one pass over the queries.

    The figures are mAP, mAP@k, precision@N and recall@N, NDCG@k, the hash-lookup figures within
    Hamming radius 2, and the curves: precision-recall by radius (micro and macro), precision@N
    and recall@N at the requested cut-offs, and the precision-recall curve by rank at 30 cut-offs
    from 1 to the database size. Each is defined in ``hashbench.metrics.ranking`` and in
    ``docs/metrics.md``. The queries are processed in chunks, so memory grows with
    ``chunk_size * n_database`` (about 4 bytes per pair, plus about 100 MiB of block buffers),
    never with ``n_queries * n_database``.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8, or None
        Packed query codes, or None with ``distances``.
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8, or None
        Packed database codes with the same width, or None with ``distances``.
    query_labels : array-like of shape (n_queries, n_labels)
        0/1 (or boolean) label matrix of the queries; a scipy sparse matrix is accepted.
    db_labels : array-like of shape (n_database, n_labels)
        0/1 (or boolean) label matrix of the database, with the same label columns.
    conventions : Conventions, str or None, default=None
        The evaluation conventions, or a preset name; None is the ``hashbench`` preset.
    map_at : int or sequence of int, default=(1000, 5000)
        Cut-offs k for mAP@k. mAP over the whole database is always reported.
    precision_at : int or sequence of int, default=(500, 1000, 2000, 3000, 4000, 5000)
        Cut-offs N for precision@N and recall@N.
    ndcg_at : int or sequence of int, default=(100, 1000)
        Cut-offs k for NDCG@k; empty to skip NDCG.
    distances : ndarray of shape (n_queries, n_database), integer dtype, default=None
        A precomputed Hamming distance table to use instead of codes.
    n_bits : int, default=None
        The code length of ``distances``; only with ``distances``.
    chunk_size : int, default=256
        Number of queries scored together; results do not depend on it.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Receives one advance per query.

    Returns
    -------
    dict
        Plain Python values only, so ``json.dumps`` accepts it (None where a figure is
        undefined for every query):

        - ``"metrics"``: ``"map"``, ``"map@k"``, ``"precision@N"``, ``"recall@N"``,
          ``"ndcg@k"``, ``"precision@radius2"``, ``"recall@radius2"`` and
          ``"empty_lookups@radius2"``;
        - ``"curves"``: ``"pr_radius"`` (lists ``"radius"``, ``"precision"``, ``"recall"``,
          ``"precision_macro"``, ``"recall_macro"``), ``"precision_at_n"`` (lists ``"n"``,
          ``"precision"``, ``"recall"``) and ``"pr_rank"`` (the same at 30 cut-offs);
        - ``"capped"``: figure name to the database size, for each cut-off above it;
        - ``"conventions"``: every convention by name (``Conventions.as_dict``);
        - ``"n_queries"``, ``"n_database"``, ``"n_bits"`` and ``"n_empty_queries"`` (queries
          with no relevant item in the database).

    Raises
    ------
    TypeError
        If the codes are not uint8 numpy arrays or the labels are not numeric.
    ValueError
        If shapes or code widths do not match, labels are not 0/1, either set is empty, a
        cut-off or ``chunk_size`` is not a positive integer, or a convention is unknown.
    """
    map_at = _check_cutoffs(map_at, name="map_at")
    precision_at = _check_cutoffs(precision_at, name="precision_at")
    ndcg_at = _check_cutoffs(ndcg_at, name="ndcg_at")
    n_db_hint = None if db_codes is None and distances is None else (
        distances.shape[1] if distances is not None else getattr(db_codes, "shape", (0,))[0]
    )
    rank_grid = _rank_grid(n_db_hint) if n_db_hint else ()

    scores, conventions = _score(
        query_codes, db_codes, query_labels, db_labels, distances=distances, n_bits=n_bits,
        conventions=conventions, cutoffs=set(map_at) | set(precision_at) | set(rank_grid),
        ndcg_cutoffs=ndcg_at, chunk_size=chunk_size, progress=progress,
    )
    n_db = scores.n_database
    harmonic = harmonic_numbers(n_db)

    metrics = {"map": _average_precision(scores, n_db, conventions, harmonic)}
    for k in map_at:
        metrics[f"map@{k}"] = _average_precision(scores, k, conventions, harmonic)
    precision_recall = {n: _precision_recall_at(scores, n, conventions) for n in precision_at}
    for n, (precision, _) in precision_recall.items():
        metrics[f"precision@{n}"] = precision
    for n, (_, recall) in precision_recall.items():
        metrics[f"recall@{n}"] = recall
    if ndcg_at:
        discounts = discount_sums(n_db)
        for k in ndcg_at:
            metrics[f"ndcg@{k}"] = _ndcg(scores, k, conventions, discounts)
    radius_curve = _radius_curve(scores, conventions)
    metrics.update(_lookup_figures(scores, radius_curve, LOOKUP_RADIUS))

    capped = {}
    for name, cutoffs in (("map", map_at), ("precision", precision_at), ("recall", precision_at), ("ndcg", ndcg_at)):
        for cutoff, size in _capped(cutoffs, n_db).items():
            capped[f"{name}@{cutoff}"] = size

    rank_curve = [_precision_recall_at(scores, n, conventions) for n in rank_grid]
    return {
        "metrics": metrics,
        "curves": {
            "pr_radius": {
                "radius": radius_curve.radius.tolist(),
                "precision": _plain_list(radius_curve.precision),
                "recall": _plain_list(radius_curve.recall),
                "precision_macro": _plain_list(radius_curve.precision_macro),
                "recall_macro": _plain_list(radius_curve.recall_macro),
            },
            "precision_at_n": {
                "n": list(precision_at),
                "precision": [precision_recall[n][0] for n in precision_at],
                "recall": [precision_recall[n][1] for n in precision_at],
            },
            "pr_rank": {
                "n": list(rank_grid),
                "precision": [precision for precision, _ in rank_curve],
                "recall": [recall for _, recall in rank_curve],
            },
        },
        "capped": capped,
        "conventions": conventions.as_dict(),
        "n_queries": int(scores.n_queries),
        "n_database": int(n_db),
        "n_bits": int(scores.n_bits),
        "n_empty_queries": int((scores.n_relevant == 0).sum()),
    }
