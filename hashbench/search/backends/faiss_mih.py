"""Approximate Hamming search with faiss ``IndexBinaryMultiHash`` (multi-index hashing).

Multi-index hashing (Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing", CVPR 2012) splits each code into ``nhash`` disjoint substrings of ``b`` bits and keeps
one hash table per substring. A query probes, in every table, the buckets whose key differs from
its own substring in at most ``nflip`` bits. The codes in those buckets are then ranked by the
full Hamming distance.

By the pigeonhole principle, an item at distance ``d`` differs in at most ``d // nhash`` bits in
at least one substring. A radius search is therefore exact when ``nflip >= radius // nhash``, and
a k-NN search is exact (up to the choice among ties) when ``nflip >= t // nhash`` for the k-th
nearest distance ``t``. Otherwise items are missed, and recall must be measured.
"""

import logging
import math

from hashbench.search.backends._faiss_support import (
    faiss_threads,
    faiss_unavailable_reason,
    import_faiss,
    serialized_bytes,
)
from hashbench.search.backends.faiss_flat import sort_range_result
from hashbench.search.base import SearchIndex, _check_int, sort_by_distance_then_id
from hashbench.search.registry import register_backend

logger = logging.getLogger(__name__)

# Hash keys longer than this make tables that are almost all empty buckets.
_MAX_SUBSTRING_BITS = 32


def default_substrings(n_bits, n_database):
    """Choose ``(nhash, b)`` as Norouzi et al. recommend: substrings of about log2(n_database) bits.

    Parameters
    ----------
    n_bits : int
        Code length.
    n_database : int
        Number of indexed codes.

    Returns
    -------
    nhash, b : int
        Number of hash tables and bits per substring, with ``nhash * b <= n_bits``.
    """
    target = min(_MAX_SUBSTRING_BITS, max(1.0, math.log2(max(n_database, 2))))
    nhash = max(1, round(n_bits / target))
    return nhash, n_bits // nhash


@register_backend("faiss-mih")
class FaissMultiHashIndex(SearchIndex):
    """Approximate Hamming search with faiss ``IndexBinaryMultiHash``.

    Results are sorted into the defined order. A k-NN query whose probed buckets hold fewer than
    ``k`` items gets id -1 and distance ``n_bits + 1`` in the missing places.

    Parameters
    ----------
    threads : int, default=1
        OpenMP threads faiss may use during a search.
    nhash : int, optional
        Number of hash tables. Default: chosen by :func:`default_substrings` at build time.
    b : int, optional
        Bits per substring; ``nhash * b`` must not exceed the code length. Default: chosen by
        :func:`default_substrings`.
    nflip : int, default=1
        Maximum number of differing substring bits in a probed bucket. Higher is slower and
        finds more neighbours.
    """

    exact = False

    def __init__(self, *, threads=1, nhash=None, b=None, nflip=1):
        super().__init__(threads=threads)
        hint = "Leave it unset for the default."
        self.nhash = None if nhash is None else _check_int(nhash, "nhash", minimum=1, hint=hint)
        self.b = None if b is None else _check_int(b, "b", minimum=1, hint=hint)
        self.nflip = _check_int(nflip, "nflip", minimum=0, hint="Use 0 to probe only the query's own buckets.")

    @classmethod
    def unavailable_reason(cls):
        return faiss_unavailable_reason()

    def _build(self, db_codes):
        self._faiss = import_faiss()
        default_nhash, default_b = default_substrings(self.n_bits, self.n_database)
        nhash = self.nhash or default_nhash
        b = self.b or self.n_bits // nhash
        if nhash * b > self.n_bits or b > _MAX_SUBSTRING_BITS:
            raise ValueError(
                f"nhash={nhash} substrings of b={b} bits do not fit {self.n_bits}-bit codes: "
                f"nhash * b must be at most {self.n_bits} and b at most {_MAX_SUBSTRING_BITS}. "
                f"Leave nhash and b unset for nhash={default_nhash}, b={default_b}."
            )
        self.nhash_, self.b_ = nhash, b
        self._index = self._faiss.IndexBinaryMultiHash(self.n_bits, nhash, b)
        self._index.nflip = self.nflip
        with faiss_threads(self._faiss, self.threads):
            self._index.add(db_codes)
        logger.debug("Built multi-index hashing with nhash=%d, b=%d, nflip=%d", nhash, b, self.nflip)

    def _index_bytes(self):
        return serialized_bytes(self._faiss, self._index)

    def _search(self, query_codes, k):
        with faiss_threads(self._faiss, self.threads):
            distances, ids = self._index.search(query_codes, k)
        missing = ids < 0
        distances[missing] = self.n_bits + 1
        return sort_by_distance_then_id(distances, ids)

    def _range_search(self, query_codes, radius):
        # faiss returns distances strictly below its radius; this interface includes the radius.
        with faiss_threads(self._faiss, self.threads):
            lims, distances, ids = self._index.range_search(query_codes, radius + 1)
        return sort_range_result(lims, distances, ids)
