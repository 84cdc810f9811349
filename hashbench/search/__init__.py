"""Hamming search backends over packed binary codes and their benchmark.

Build an index by name and query it::

    from hashbench.search import make_index

    index = make_index("numpy", threads=1).build(db_codes)
    distances, ids = index.search(query_codes, k=100)

See :mod:`hashbench.search.base` for the interface and the result order.
"""

from hashbench.search.base import RangeResult, SearchIndex, sort_by_distance_then_id
from hashbench.search.recall import knn_recall, range_recall
from hashbench.search.registry import get_backend_class, list_backends, make_index, register_backend

__all__ = [
    "RangeResult",
    "SearchIndex",
    "get_backend_class",
    "knn_recall",
    "list_backends",
    "make_index",
    "range_recall",
    "register_backend",
    "sort_by_distance_then_id",
]
