"""The search index interface that every Hamming search backend implements.

An index is built from packed database codes (``hashbench.codes``: uint8 of shape
``(n_database, n_bits // 8)``, most significant bit first). It returns the k nearest
neighbours of each query, or every code within a radius, under the Hamming distance.

Exact backends return results in one defined order: ascending Hamming distance, ties broken by
ascending database id (the row number in ``db_codes``). Two exact backends therefore return
identical arrays for the same input. Approximate backends (``exact = False``) return at most the
same number of items in the same order, and may miss some.
"""

import abc
import logging
from dataclasses import dataclass

import numpy as np

from hashbench.codes import check_packed_codes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RangeResult:
    """Results of a radius search in compressed sparse row form, as faiss returns them.

    The results of query ``i`` are ``ids[lims[i]:lims[i + 1]]`` and
    ``distances[lims[i]:lims[i + 1]]``, in the defined order (ascending distance, then ascending
    database id).

    Attributes
    ----------
    lims : ndarray of shape (n_queries + 1,), dtype int64
        Start offset of each query's results; ``lims[0]`` is 0 and ``lims[-1]`` is ``len(ids)``.
    ids : ndarray of shape (n_results,), dtype int64
        Database ids of all queries' results, concatenated.
    distances : ndarray of shape (n_results,), dtype int32
        Hamming distances matching ``ids``.
    """

    lims: np.ndarray
    ids: np.ndarray
    distances: np.ndarray

    def __len__(self):
        return len(self.lims) - 1

    def query(self, index):
        """Return ``(ids, distances)`` of query ``index``, two 1-D arrays of equal length."""
        start, stop = self.lims[index], self.lims[index + 1]
        return self.ids[start:stop], self.distances[start:stop]

    @classmethod
    def from_lists(cls, per_query):
        """Build a result from a list of ``(ids, distances)`` pairs, one per query."""
        counts = np.array([len(ids) for ids, _ in per_query], dtype=np.int64)
        lims = np.zeros(len(per_query) + 1, dtype=np.int64)
        np.cumsum(counts, out=lims[1:])
        if per_query:
            ids = np.concatenate([np.asarray(ids, dtype=np.int64) for ids, _ in per_query])
            distances = np.concatenate(
                [np.asarray(distances, dtype=np.int32) for _, distances in per_query]
            )
        else:
            ids = np.zeros(0, dtype=np.int64)
            distances = np.zeros(0, dtype=np.int32)
        return cls(lims=lims, ids=ids, distances=distances)


def sort_by_distance_then_id(distances, ids):
    """Sort result rows into the defined order: ascending distance, then ascending id.

    Parameters
    ----------
    distances : ndarray of shape (n_queries, n_items), integer dtype
        Hamming distances.
    ids : ndarray of shape (n_queries, n_items), dtype int64
        Database ids matching ``distances``.

    Returns
    -------
    distances, ids : ndarray of shape (n_queries, n_items)
        The same entries, each row reordered.
    """
    order = np.lexsort((ids, distances), axis=-1)
    return np.take_along_axis(distances, order, axis=-1), np.take_along_axis(ids, order, axis=-1)


def _check_int(value, name, *, minimum, hint):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}. {hint}")
    return int(value)


class SearchIndex(abc.ABC):
    """Hamming search over packed binary codes.

    Subclasses register themselves with ``@register_backend("name")``
    (:mod:`hashbench.search.registry`) and implement ``_build``, ``_search`` and
    ``_range_search``; this class validates every input first.

    Parameters
    ----------
    threads : int, default=1
        Number of threads a search may use. Use 1 for single-thread measurements.

    Attributes
    ----------
    name : str
        Registered backend name, set by the registry.
    exact : bool
        True when results equal the exhaustive search, in the defined tie order.
    exhaustive : bool
        True when every search compares the query with every database code, so its speed can
        be compared with the memory bandwidth.
    n_bits : int
        Code length of the indexed codes; set by :meth:`build`.
    n_database : int
        Number of indexed codes; set by :meth:`build`.
    """

    name = None
    exact = True
    exhaustive = False

    def __init__(self, *, threads=1):
        self.threads = _check_int(threads, "threads", minimum=1, hint="Use 1 for a single thread.")
        self.n_bits = None
        self.n_database = 0

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, threads={self.threads})"

    @classmethod
    def unavailable_reason(cls):
        """Return why the backend cannot run here (a missing package), or None when it can."""
        return None

    # -----------------------------------------------------------------------------------------
    # Public interface

    def build(self, db_codes):
        """Index the database codes, replacing any previous content.

        Parameters
        ----------
        db_codes : ndarray of shape (n_database, n_bits // 8), dtype uint8
            Packed database codes; row ``i`` gets database id ``i``.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            If ``db_codes`` is not a uint8 numpy array.
        ValueError
            If ``db_codes`` is not 2-D or has no rows.
        """
        db_codes = check_packed_codes(db_codes, name="db_codes")
        if db_codes.shape[0] == 0:
            raise ValueError(
                f"db_codes is empty (shape {db_codes.shape}); build the index from at least one "
                "database code."
            )
        if db_codes.shape[1] == 0:
            raise ValueError(
                f"db_codes has no bytes per item (shape {db_codes.shape}); codes need at least 8 bits."
            )
        self.n_bits = db_codes.shape[1] * 8
        self.n_database = db_codes.shape[0]
        self._build(db_codes)
        logger.debug("Built %s on %d codes of %d bits", self.name, self.n_database, self.n_bits)
        return self

    def search(self, query_codes, k):
        """Find the ``k`` nearest database codes of each query under the Hamming distance.

        Parameters
        ----------
        query_codes : ndarray of shape (n_queries, n_bits // 8), dtype uint8
            Packed query codes with the code width of the index.
        k : int
            Number of neighbours per query, from 1 to ``n_database``. A larger ``k`` is rejected
            rather than padded, so every returned entry is a real database item.

        Returns
        -------
        distances : ndarray of shape (n_queries, k), dtype int32
            Hamming distances, ascending in each row.
        ids : ndarray of shape (n_queries, k), dtype int64
            Database ids; equal distances come in ascending id order. An approximate backend
            marks a missing neighbour with id -1 and distance ``n_bits + 1``.

        Raises
        ------
        RuntimeError
            If the index has not been built.
        TypeError, ValueError
            If the queries or ``k`` are invalid.
        """
        query_codes = self._check_queries(query_codes)
        k = _check_int(k, "k", minimum=1, hint="Request at least one neighbour per query.")
        if k > self.n_database:
            raise ValueError(
                f"k={k} exceeds the database size of {self.n_database} codes; pass k <= "
                f"{self.n_database} or index more codes."
            )
        if query_codes.shape[0] == 0:
            return np.zeros((0, k), dtype=np.int32), np.zeros((0, k), dtype=np.int64)
        distances, ids = self._search(query_codes, k)
        return distances.astype(np.int32, copy=False), ids.astype(np.int64, copy=False)

    def range_search(self, query_codes, radius):
        """Find every database code within a Hamming radius of each query.

        Parameters
        ----------
        query_codes : ndarray of shape (n_queries, n_bits // 8), dtype uint8
            Packed query codes with the code width of the index.
        radius : int
            Maximum Hamming distance, inclusive: an item at distance ``radius`` is returned.
            ``radius >= n_bits`` returns the whole database.

        Returns
        -------
        RangeResult
            Per-query ids and distances in the defined order.

        Raises
        ------
        RuntimeError
            If the index has not been built.
        TypeError, ValueError
            If the queries or ``radius`` are invalid.
        """
        query_codes = self._check_queries(query_codes)
        radius = _check_int(radius, "radius", minimum=0, hint="Use 0 to find identical codes.")
        if query_codes.shape[0] == 0:
            return RangeResult.from_lists([])
        return self._range_search(query_codes, min(radius, self.n_bits))

    @property
    def index_bytes(self):
        """Memory held by the index in bytes (its codes and any lookup structure)."""
        self._check_built()
        return int(self._index_bytes())

    # -----------------------------------------------------------------------------------------
    # Validation

    def _check_built(self):
        if self.n_bits is None:
            raise RuntimeError(
                f"the {self.name} index is empty; call build(db_codes) before searching it."
            )

    def _check_queries(self, query_codes):
        self._check_built()
        query_codes = check_packed_codes(query_codes, name="query_codes")
        if query_codes.shape[1] * 8 != self.n_bits:
            raise ValueError(
                f"query_codes have {query_codes.shape[1]} bytes per item "
                f"({query_codes.shape[1] * 8} bits) but the index holds {self.n_bits}-bit codes "
                f"({self.n_bits // 8} bytes). Encode the queries with the hasher that encoded "
                "the database."
            )
        return query_codes

    # -----------------------------------------------------------------------------------------
    # Backend hooks: inputs are validated, C-contiguous and non-empty.

    @abc.abstractmethod
    def _build(self, db_codes):
        """Index validated database codes."""

    @abc.abstractmethod
    def _search(self, query_codes, k):
        """Return ``(distances, ids)`` of shape (n_queries, k) in the defined order."""

    @abc.abstractmethod
    def _range_search(self, query_codes, radius):
        """Return a :class:`RangeResult` of items within the inclusive ``radius``."""

    @abc.abstractmethod
    def _index_bytes(self):
        """Return the memory held by the index in bytes."""
