"""Shared pieces of the faiss backends: the optional import, thread control and index size."""

import importlib.util
from contextlib import contextmanager

import numpy as np

FAISS_MISSING = "the faiss package is not installed; install it with `pip install faiss-cpu`."


def faiss_unavailable_reason():
    """Return why faiss cannot be imported, or None when it can."""
    return None if importlib.util.find_spec("faiss") is not None else FAISS_MISSING


def import_faiss():
    """Import faiss, raising ImportError with the install command when it is missing."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(FAISS_MISSING) from error
    return faiss


@contextmanager
def faiss_threads(faiss, threads):
    """Run the body with faiss limited to ``threads`` OpenMP threads, then restore the setting."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def serialized_bytes(faiss, index):
    """Return the size in bytes of a binary index serialised by faiss, codes and tables included."""
    return int(np.asarray(faiss.serialize_index_binary(index)).nbytes)
