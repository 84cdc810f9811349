"""Validation of evaluation inputs: packed codes, distance tables, label matrices and cut-offs."""

import numpy as np
import scipy.sparse as sp

from hashbench.metrics.hamming import MAX_N_BITS, check_code_pair



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


def _check_distance_table(distances, n_bits):
    """Validate a precomputed Hamming distance table and return it as uint16."""
    n_bits = _check_positive_int(n_bits, name="n_bits")
    if n_bits > MAX_N_BITS:
        raise ValueError(f"n_bits must be at most {MAX_N_BITS}, got {n_bits}.")
    if not isinstance(distances, np.ndarray):
        raise TypeError(
            f"distances must be a numpy array of shape (n_queries, n_database), got "
            f"{type(distances).__name__}."
        )
    if distances.ndim != 2:
        raise ValueError(
            f"distances must be 2-D of shape (n_queries, n_database), got shape {distances.shape}."
        )
    if not np.issubdtype(distances.dtype, np.integer):
        raise TypeError(
            f"distances must hold integer Hamming distances, got dtype {distances.dtype}."
        )
    if distances.size and (distances.min() < 0 or distances.max() > n_bits):
        raise ValueError(
            f"distances must lie in [0, n_bits] = [0, {n_bits}], got values from "
            f"{distances.min()} to {distances.max()}. Pass the code length the distances were "
            "computed with as n_bits."
        )
    return np.ascontiguousarray(distances, dtype=np.uint16)


def check_inputs(query_codes, db_codes, query_labels, db_labels, *, distances=None, n_bits=None):
    """Validate codes (or a distance table) and labels for evaluation.

    Returns
    -------
    query_codes, db_codes : ndarray of dtype uint8, or None
        The validated codes, or None when a distance table was given.
    distances : ndarray of shape (n_queries, n_database), dtype uint16, or None
    query_labels, db_labels : ndarray of dtype bool
    n_bits : int
    """
    if distances is None:
        if n_bits is not None:
            raise ValueError("n_bits is only used with a distance table; codes carry their own length.")
        query_codes, db_codes = check_code_pair(query_codes, db_codes)
        n_queries, n_db = query_codes.shape[0], db_codes.shape[0]
        n_bits = query_codes.shape[1] * 8
    else:
        if query_codes is not None or db_codes is not None:
            raise ValueError(
                "Give either codes (query_codes and db_codes) or a distance table (distances), "
                "not both; pass None for the codes when evaluating a distance table."
            )
        if n_bits is None:
            raise ValueError("A distance table needs n_bits, the code length it was computed with.")
        distances = _check_distance_table(distances, n_bits)
        n_queries, n_db = distances.shape
        n_bits = int(n_bits)

    query_name, db_name = ("query_codes", "db_codes") if distances is None else ("distances", "distances")
    if n_queries == 0:
        raise ValueError(f"{query_name} is empty (0 queries); evaluation needs at least one query.")
    if n_db == 0:
        raise ValueError(
            f"{db_name} is empty (0 database items); evaluation needs at least one database item."
        )

    query_labels = _check_labels(
        query_labels, name="query_labels", codes_name=query_name, n_items=n_queries
    )
    db_labels = _check_labels(
        db_labels, name="db_labels", codes_name=db_name, n_items=n_db
    )
    if query_labels.shape[1] != db_labels.shape[1]:
        raise ValueError(
            f"query_labels has {query_labels.shape[1]} label columns but db_labels has "
            f"{db_labels.shape[1]}; both must use the same label set."
        )
    return query_codes, db_codes, distances, query_labels, db_labels, n_bits
