"""Parameter checks and k-means shared by several hashing methods.

The module name starts with an underscore because it registers no method.
"""

import logging
import numbers

import numpy as np

logger = logging.getLogger(__name__)


def check_int(name, value, *, minimum, maximum=None, reason=None):
    """Check that a hyperparameter is an integer in ``[minimum, maximum]`` and return it.

    Parameters
    ----------
    name : str
        Parameter name used in the message.
    value : object
        Value to check; ``bool`` is rejected.
    minimum : int
        Smallest valid value.
    maximum : int, optional
        Largest valid value; no upper bound by default.
    reason : str, optional
        Where the upper bound comes from, appended to the message.

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        extra = f" ({reason})" if reason else ""
        raise ValueError(f"{name} must be {bound}{extra}, got {value}.")
    return int(value)


def check_float(name, value, *, minimum=None, exclusive_minimum=None, maximum=None):
    """Check that a hyperparameter is a real number in range and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if exclusive_minimum is not None and value <= exclusive_minimum:
        raise ValueError(f"{name} must be greater than {exclusive_minimum}, got {value}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}.")
    return float(value)


def check_bits_at_most_features(method, n_bits, n_features):
    """Reject a code longer than the feature dimension for methods with one projection per bit."""
    if n_bits > n_features:
        raise ValueError(
            f"n_bits must be at most n_features={n_features} for {method}, which takes one "
            f"principal direction per bit, got {n_bits}. Use at most {n_features} bits or "
            "higher-dimensional features."
        )


def squared_distances(a, b):
    """Return squared Euclidean distances.

    Parameters
    ----------
    a : ndarray of shape (n_a, n_features)
    b : ndarray of shape (n_b, n_features)

    Returns
    -------
    ndarray of shape (n_a, n_b), dtype float64
        Non-negative; rounding below zero is clipped.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    distances = (a * a).sum(axis=1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(axis=1)[None, :]
    return np.maximum(distances, 0.0)


def kmeans(data, n_clusters, *, n_iter, rng):
    """Cluster with Lloyd's algorithm from distinct random items.

    Parameters
    ----------
    data : ndarray of shape (n_samples, n_features)
    n_clusters : int
        At most ``n_samples``.
    n_iter : int
        Assignment and update steps; the loop stops early once no assignment changes.
    rng : numpy.random.Generator
        Picks the initial centres.

    Returns
    -------
    centres : ndarray of shape (n_clusters, n_features), dtype float64
    assignment : ndarray of shape (n_samples,), dtype int64
        Index of each item's nearest centre.

    Notes
    -----
    A cluster that loses all its items keeps its previous centre.
    """
    data = np.asarray(data, dtype=np.float64)
    centres = data[rng.choice(len(data), size=n_clusters, replace=False)].copy()
    assignment = np.argmin(squared_distances(data, centres), axis=1)
    for _ in range(n_iter):
        counts = np.bincount(assignment, minlength=n_clusters)
        sums = np.zeros_like(centres)
        np.add.at(sums, assignment, data)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]

        updated = np.argmin(squared_distances(data, centres), axis=1)
        if np.array_equal(updated, assignment):
            break
        assignment = updated
    return centres, assignment
