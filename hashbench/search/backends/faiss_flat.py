"""Exact exhaustive Hamming search with faiss ``IndexBinaryFlat``, in the defined tie order."""

import logging

import numpy as np

from hashbench.search.backends._faiss_support import (
    faiss_threads,
    faiss_unavailable_reason,
    import_faiss,
    serialized_bytes,
)
from hashbench.search.base import RangeResult, SearchIndex, sort_by_distance_then_id
from hashbench.search.registry import register_backend

logger = logging.getLogger(__name__)

# faiss is asked for k + max(k, _MIN_EXTRA) neighbours, so that ties at the k-th distance
# usually fit in one search.
_MIN_EXTRA = 32


def sort_range_result(faiss_lims, faiss_distances, faiss_ids):
    """Sort faiss radius-search output into a :class:`RangeResult` in the defined order.

    Parameters
    ----------
    faiss_lims : ndarray of shape (n_queries + 1,)
        Offsets of each query's results.
    faiss_distances : ndarray of shape (n_results,)
        Hamming distances.
    faiss_ids : ndarray of shape (n_results,)
        Database ids.

    Returns
    -------
    RangeResult
    """
    lims = np.asarray(faiss_lims, dtype=np.int64)
    distances = np.asarray(faiss_distances, dtype=np.int32)
    ids = np.asarray(faiss_ids, dtype=np.int64)
    query_of_result = np.repeat(np.arange(len(lims) - 1), np.diff(lims))
    order = np.lexsort((ids, distances, query_of_result))
    return RangeResult(lims=lims, ids=ids[order], distances=distances[order])


@register_backend("faiss-flat")
class FaissFlatIndex(SearchIndex):
    """Exact exhaustive Hamming search with faiss ``IndexBinaryFlat``.

    faiss keeps the ``k`` best items in a heap, so when several items share the k-th distance it
    returns an arbitrary subset of them. This backend requests ``k + max(k, 32)`` items from faiss.
    When the last of them is farther than the k-th, every item at the k-th distance is among them,
    and sorting by (distance, id) gives the defined order. Otherwise a radius search at the k-th
    distance fetches all tied items for that query. Results equal the ``numpy`` backend exactly.
    faiss 1.15.1 was seen to keep the lowest ids among ties already, but faiss does not document
    a tie order, so the check stays.

    Parameters
    ----------
    threads : int, default=1
        OpenMP threads faiss may use during a search.
    """

    exact = True
    exhaustive = True

    @classmethod
    def unavailable_reason(cls):
        return faiss_unavailable_reason()

    def _build(self, db_codes):
        self._faiss = import_faiss()
        self._index = self._faiss.IndexBinaryFlat(self.n_bits)
        with faiss_threads(self._faiss, self.threads):
            self._index.add(db_codes)

    def _index_bytes(self):
        return serialized_bytes(self._faiss, self._index)

    def _search(self, query_codes, k):
        n_fetch = min(self.n_database, k + max(k, _MIN_EXTRA))
        with faiss_threads(self._faiss, self.threads):
            fetched_distances, fetched_ids = self._index.search(query_codes, n_fetch)
        fetched_distances, fetched_ids = sort_by_distance_then_id(fetched_distances, fetched_ids)
        distances = fetched_distances[:, :k].copy()
        ids = fetched_ids[:, :k].copy()

        kth_distance = fetched_distances[:, k - 1]
        if n_fetch == self.n_database:
            return distances, ids
        incomplete = np.flatnonzero(fetched_distances[:, -1] <= kth_distance)
        if incomplete.size:
            logger.debug("Fetching ties at the k-th distance for %d queries", incomplete.size)
        for query in incomplete:
            tied = self._range_search(query_codes[query:query + 1], int(kth_distance[query]))
            distances[query] = tied.distances[:k]
            ids[query] = tied.ids[:k]
        return distances, ids

    def _range_search(self, query_codes, radius):
        # faiss returns distances strictly below its radius; this interface includes the radius.
        with faiss_threads(self._faiss, self.threads):
            lims, distances, ids = self._index.range_search(query_codes, radius + 1)
        return sort_range_result(lims, distances, ids)
