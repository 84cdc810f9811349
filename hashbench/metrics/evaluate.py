"""All retrieval metrics of a set of codes in one pass, as a JSON-serialisable report."""

from hashbench.metrics.ranking import (
    CONVENTIONS,
    DEFAULT_PRECISION_AT,
    _check_cutoffs,
    _reduce_mean_average_precision,
    _reduce_mean_average_precision_at_k,
    _reduce_precision_at_n,
    _reduce_radius_curve,
    _score_queries,
)
from hashbench.progress import NULL_PROGRESS


def evaluate_codes(
    query_codes,
    db_codes,
    query_labels,
    db_labels,
    *,
    map_at=(1000, 5000),
    precision_at=DEFAULT_PRECISION_AT,
    chunk_size=256,
    progress=NULL_PROGRESS,
):
    """Compute mAP, mAP@k, precision@N and precision-recall by Hamming radius in one pass.

    The queries are processed in chunks: each chunk computes its Hamming distances to the whole
    database, its relevance, and one stable ranking, from which every metric is taken. Memory
    therefore grows with ``chunk_size * n_database`` (about 4 bytes per pair, plus up to 70 MiB
    of ranking buffers), never with ``n_queries * n_database``.

    The conventions are those of the MATLAB evaluation code that DSTDH uses (see
    ``hashbench.metrics.ranking``) and are returned in the report under ``"conventions"``:

    - a database item is relevant to a query when they share at least one label;
    - ranking is by ascending Hamming distance, with ties kept in database order (stable sort);
    - a query with no relevant item in the database scores 0 for every ranking metric and stays
      in the means;
    - AP@k divides by the number of relevant items retrieved within the top k (0 if none);
    - a cut-off above the database size is computed at the database size and listed under
      ``"capped"`` (mAP@k then equals mAP);
    - precision and recall by radius are micro-averaged over all query-database pairs.

    See ``hashbench.metrics.ranking`` for the definition of each metric.

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
    map_at : int or sequence of int, default=(1000, 5000)
        Cut-offs k for mAP@k, positive integers. mAP over the whole database is always reported.
    precision_at : int or sequence of int, default=(500, 1000, 2000, 3000, 4000, 5000)
        Cut-offs N for precision@N and for the precision-recall curve by rank.
    chunk_size : int, default=256
        Number of queries ranked together; results do not depend on it.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Receives one advance per chunk of queries.

    Returns
    -------
    dict
        Plain Python values only (str, int, float, list, dict), so ``json.dumps`` accepts it:

        - ``"metrics"``: ``"map"``, ``"map@k"`` for each k and ``"precision@N"`` for each N,
          as floats;
        - ``"curves"``: ``"pr_radius"`` has the lists ``"radius"`` (0..n_bits), ``"precision"``
          and ``"recall"``. ``"precision_at_n"`` has the lists ``"n"`` (the requested cut-offs),
          ``"precision"`` and ``"recall"`` (mean recall@N, 0 for a query with no relevant item);
        - ``"capped"``: metric key to the database size, for each cut-off above it;
        - ``"conventions"``: the conventions above, by name;
        - ``"n_queries"``, ``"n_database"``, ``"n_bits"`` and ``"n_empty_queries"`` (queries
          with no relevant item in the database), as ints.

    Raises
    ------
    TypeError
        If the codes are not uint8 numpy arrays or the labels are not numeric.
    ValueError
        If shapes or code widths do not match, labels are not 0/1, either set is empty, or a
        cut-off or ``chunk_size`` is not a positive integer.
    """
    map_at = _check_cutoffs(map_at, name="map_at")
    precision_at = _check_cutoffs(precision_at, name="precision_at")
    scores = _score_queries(
        query_codes,
        db_codes,
        query_labels,
        db_labels,
        average_precision=True,
        map_at=map_at,
        precision_at=precision_at,
        radius=True,
        chunk_size=chunk_size,
        progress=progress,
    )
    n_db = scores.n_database

    metrics = {"map": _reduce_mean_average_precision(scores)}
    capped = {}
    for k in map_at:
        metrics[f"map@{k}"] = _reduce_mean_average_precision_at_k(scores, k)
        if k > n_db:
            capped[f"map@{k}"] = n_db

    precision_curve = _reduce_precision_at_n(scores, precision_at)
    for cutoff, precision in zip(precision_curve.n, precision_curve.precision):
        metrics[f"precision@{cutoff}"] = precision
    for cutoff, size in precision_curve.capped.items():
        capped[f"precision@{cutoff}"] = size

    radius_curve = _reduce_radius_curve(scores)
    return {
        "metrics": metrics,
        "curves": {
            "pr_radius": {
                "radius": radius_curve.radius.tolist(),
                "precision": radius_curve.precision.tolist(),
                "recall": radius_curve.recall.tolist(),
            },
            "precision_at_n": {
                "n": list(precision_curve.n),
                "precision": list(precision_curve.precision),
                "recall": list(precision_curve.recall),
            },
        },
        "capped": capped,
        "conventions": dict(CONVENTIONS),
        "n_queries": int(scores.n_relevant.shape[0]),
        "n_database": int(n_db),
        "n_bits": int(scores.n_bits),
        "n_empty_queries": int((scores.n_relevant == 0).sum()),
    }
