"""Graphs of DSTDH, kept in factored form: k-means, the image-concept hypergraph and the anchor graph.

Both affinities are n x n in principle, but only their factors are stored:

- hypergraph: ``S_H = D_v^{-1/2} H D_e^{-1} H^T D_v^{-1/2}`` with the soft incidence ``H`` of shape
  (n, m_H) (Zhou, Huang and Schoelkopf, "Learning with hypergraphs", NIPS 2006);
- anchor graph: ``S_A = V Lambda^{-1} V^T`` with the anchor weights ``V`` of shape (n, m_A) (Liu, Wang,
  Kumar and Chang, "Hashing with graphs", ICML 2011).

Applying either to an (n, r) matrix costs O(n m r) time and O(n (m + r)) memory.
"""

import logging

import numpy as np
import scipy.sparse as sp

from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

# Rows per block when computing item-to-centre distances, which bounds memory at block x n_centres.
_BLOCK_ROWS = 4096


def _squared_norms(dense, sparse):
    norms = np.einsum("ij,ij->i", dense, dense, dtype=np.float64)
    if sparse is not None:
        norms = norms + np.asarray(sparse.multiply(sparse).sum(axis=1)).ravel()
    return norms


def squared_distances(dense, sparse, centres_dense, centres_sparse_part):
    """Squared Euclidean distances between items ``[dense, sparse]`` and centres.

    Parameters
    ----------
    dense : ndarray of shape (n, d1), dtype float32
        Dense part of the items.
    sparse : scipy.sparse matrix of shape (n, d2), or None
        Sparse part of the items (tag vectors), concatenated after ``dense``.
    centres_dense : ndarray of shape (m, d1)
    centres_sparse_part : ndarray of shape (m, d2), or None

    Returns
    -------
    ndarray of shape (n, m), dtype float32
        Squared distances, clipped at 0 against rounding.
    """
    n = dense.shape[0]
    centre_norms = np.einsum("ij,ij->i", centres_dense, centres_dense, dtype=np.float64)
    if centres_sparse_part is not None:
        centre_norms = centre_norms + np.einsum(
            "ij,ij->i", centres_sparse_part, centres_sparse_part, dtype=np.float64
        )
    item_norms = _squared_norms(dense, sparse)
    out = np.empty((n, centres_dense.shape[0]), dtype=np.float32)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(start + _BLOCK_ROWS, n)
        cross = dense[start:stop] @ centres_dense.T
        if sparse is not None:
            cross = cross + np.asarray(sparse[start:stop] @ centres_sparse_part.T)
        block = item_norms[start:stop, None] + centre_norms[None, :] - 2.0 * cross
        out[start:stop] = np.maximum(block, 0.0)
    return out


def kmeans(dense, sparse=None, *, n_clusters, n_iter=20, rng, progress=NULL_PROGRESS, label="k-means"):
    """Lloyd's k-means with k-means++ seeding on items ``[dense, sparse]``.

    Parameters
    ----------
    dense : ndarray of shape (n, d1), dtype float32
    sparse : scipy.sparse.csr_matrix of shape (n, d2), or None
        Optional sparse block of the item vectors (kept sparse throughout).
    n_clusters : int
        Number of centres, at most n.
    n_iter : int, default=20
        Lloyd iterations; stops early when no assignment changes.
    rng : numpy.random.Generator
        Seeds the k-means++ choices.

    Returns
    -------
    centres_dense : ndarray of shape (n_clusters, d1), dtype float32
    centres_sparse_part : ndarray of shape (n_clusters, d2), dtype float32, or None
        Centres of the sparse block (dense arrays, since means of sparse rows are dense).
    """
    n = dense.shape[0]
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must be between 1 and the number of items ({n}), got {n_clusters}.")
    dense = np.ascontiguousarray(dense, dtype=np.float32)
    if sparse is not None:
        sparse = sp.csr_matrix(sparse, dtype=np.float32)

    def rows(index):
        part = sparse[index].toarray() if sparse is not None else None
        return dense[index].copy(), part

    # k-means++ seeding: each new centre is drawn with probability proportional to D(x)^2.
    chosen = [int(rng.integers(n))]
    centre_dense, centre_sparse = rows([chosen[0]])
    closest = squared_distances(dense, sparse, centre_dense, centre_sparse)[:, 0].astype(np.float64)
    with progress.task(f"{label}: seeding {n_clusters} centres", total=n_clusters) as advance:
        advance(1)
        for _ in range(1, n_clusters):
            total = closest.sum()
            if total <= 0:
                candidate = int(rng.integers(n))
            else:
                candidate = int(np.searchsorted(np.cumsum(closest), rng.random() * total, side="right"))
                candidate = min(candidate, n - 1)
            chosen.append(candidate)
            new_dense, new_sparse = rows([candidate])
            distances = squared_distances(dense, sparse, new_dense, new_sparse)[:, 0]
            np.minimum(closest, distances, out=closest)
            advance(1)
    centres_dense, centres_sparse = rows(chosen)

    # Lloyd iterations; an empty cluster keeps its previous centre.
    assignment = None
    with progress.task(f"{label}: Lloyd iterations", total=n_iter) as advance:
        for iteration in range(n_iter):
            distances = squared_distances(dense, sparse, centres_dense, centres_sparse)
            new_assignment = distances.argmin(axis=1)
            advance(1)
            if assignment is not None and np.array_equal(new_assignment, assignment):
                logger.debug("%s converged after %d iterations", label, iteration)
                break
            assignment = new_assignment
            membership = sp.csr_matrix(
                (np.ones(n, dtype=np.float32), (assignment, np.arange(n))), shape=(n_clusters, n)
            )
            counts = np.asarray(membership.sum(axis=1)).ravel()
            filled = counts > 0
            sums = np.asarray(membership @ dense)
            centres_dense[filled] = sums[filled] / counts[filled, None]
            if sparse is not None:
                sums_sparse = np.asarray((membership @ sparse).todense())
                centres_sparse[filled] = sums_sparse[filled] / counts[filled, None]
    return centres_dense, centres_sparse


def _nearest(distances, k):
    """Return the column indices and squared distances of the k smallest entries of each row."""
    index = np.argpartition(distances, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(distances, index, axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    return np.take_along_axis(index, order, axis=1), np.take_along_axis(values, order, axis=1)


class HypergraphAffinity:
    """Normalised hypergraph affinity ``S_H = D_v^{-1/2} H D_e^{-1} H^T D_v^{-1/2}`` in factored form.

    Parameters
    ----------
    incidence : ndarray or scipy.sparse matrix of shape (n, m_H)
        Soft incidence ``h(i, e)`` of item i in hyperedge e, non-negative; hyperedge weights are 1.

    Attributes
    ----------
    vertex_degree : ndarray of shape (n,)
        Row sums of the incidence (``D_v``).
    edge_degree : ndarray of shape (m_H,)
        Column sums of the incidence (``D_e``).
    """

    def __init__(self, incidence):
        self.incidence = incidence.tocsr() if sp.issparse(incidence) else np.asarray(incidence, dtype=np.float64)
        self.vertex_degree = np.asarray(self.incidence.sum(axis=1), dtype=np.float64).ravel()
        self.edge_degree = np.asarray(self.incidence.sum(axis=0), dtype=np.float64).ravel()
        if np.any(self.vertex_degree <= 0):
            raise ValueError("Every item needs a positive incidence to at least one hyperedge.")
        self._inv_sqrt_dv = 1.0 / np.sqrt(self.vertex_degree)
        with np.errstate(divide="ignore"):
            self._inv_de = np.where(self.edge_degree > 0, 1.0 / self.edge_degree, 0.0)

    @property
    def shape(self):
        n = self.incidence.shape[0]
        return (n, n)

    def apply(self, matrix):
        """Return ``S_H @ matrix`` for a matrix of shape (n, r), without forming S_H."""
        scaled = self._inv_sqrt_dv[:, None] * matrix
        edge_sums = np.asarray(self.incidence.T @ scaled) * self._inv_de[:, None]
        return self._inv_sqrt_dv[:, None] * np.asarray(self.incidence @ edge_sums)

    def trivial_eigenvector(self):
        """Return the unit eigenvector of eigenvalue 1, ``D_v^{1/2} 1`` normalised.

        ``S_H D_v^{1/2} 1 = D_v^{1/2} 1`` because ``H^T 1`` are the edge degrees and ``H 1`` the
        vertex degrees.
        """
        vector = np.sqrt(self.vertex_degree)
        return vector / np.linalg.norm(vector)

    def dense(self):
        """Return S_H as a dense (n, n) array; for tests on tiny problems only."""
        h = self.incidence.toarray() if sp.issparse(self.incidence) else self.incidence
        return (self._inv_sqrt_dv[:, None] * h) @ np.diag(self._inv_de) @ (h.T * self._inv_sqrt_dv[None, :])


class AnchorGraphAffinity:
    """Anchor graph affinity ``S_A = V Lambda^{-1} V^T`` in factored form.

    Parameters
    ----------
    weights : scipy.sparse.csr_matrix of shape (n, m_A)
        Row-normalised anchor weights ``V``; each row has its s nearest anchors.
    """

    def __init__(self, weights):
        self.weights = sp.csr_matrix(weights, dtype=np.float64)
        self.anchor_degree = np.asarray(self.weights.sum(axis=0)).ravel()
        with np.errstate(divide="ignore"):
            self._inv_lambda = np.where(self.anchor_degree > 0, 1.0 / self.anchor_degree, 0.0)

    @property
    def shape(self):
        n = self.weights.shape[0]
        return (n, n)

    def apply(self, matrix):
        """Return ``S_A @ matrix`` for a matrix of shape (n, r), without forming S_A."""
        anchor_sums = np.asarray(self.weights.T @ matrix) * self._inv_lambda[:, None]
        return np.asarray(self.weights @ anchor_sums)

    def trivial_eigenvector(self):
        """Return the unit eigenvector of eigenvalue 1, the constant vector (rows of V sum to 1)."""
        n = self.weights.shape[0]
        return np.full(n, 1.0 / np.sqrt(n))

    def dense(self):
        """Return S_A as a dense (n, n) array; for tests on tiny problems only."""
        v = self.weights.toarray()
        return v @ np.diag(self._inv_lambda) @ v.T


class DeflatedAffinity:
    """An affinity with its trivial eigenvector removed: ``S - u u^T`` for the unit vector ``u``.

    Both DSTDH affinities have eigenvalue 1 on a trivial eigenvector (constant, or proportional
    to the square root of the degrees), so ``tr(Z^T S Z)`` is largest for codes whose bits are
    constant over all images. Removing that component, as Anchor Graph Hashing and spectral
    hashing do, makes the graph terms reward codes that split the data instead.

    Parameters
    ----------
    affinity : HypergraphAffinity or AnchorGraphAffinity
    """

    def __init__(self, affinity):
        self.affinity = affinity
        self.vector = affinity.trivial_eigenvector()

    @property
    def shape(self):
        return self.affinity.shape

    def apply(self, matrix):
        """Return ``(S - u u^T) @ matrix`` for a matrix of shape (n, r)."""
        return self.affinity.apply(matrix) - np.outer(self.vector, self.vector @ matrix)

    def dense(self):
        """Return the deflated affinity as a dense (n, n) array; for tests on tiny problems only."""
        return self.affinity.dense() - np.outer(self.vector, self.vector)


def build_hypergraph(unit_features, tags, *, n_edges, sigma, edges_per_item, rng, progress=NULL_PROGRESS):
    """Build the image-concept hypergraph from joint visual and tag vectors.

    Hyperedges ("concepts") are k-means centres ``c_e`` of the joint vectors ``[x_hat_i, y_i]``;
    the incidence is ``h(i, e) = exp(-||[x_hat_i, y_i] - c_e||^2 / (2 sigma^2))``.

    Parameters
    ----------
    unit_features : ndarray of shape (n, d), dtype float32
        L2-normalised visual features ``x_hat``.
    tags : scipy.sparse.csr_matrix of shape (n, c)
        0/1 tag vectors ``y``.
    n_edges : int
        Number of hyperedges m_H.
    sigma : float or "auto"
        Kernel width. ``"auto"`` takes the mean distance of the items to their
        ``edges_per_item``-th nearest centre.
    edges_per_item : int or None
        Keep only each item's nearest hyperedges (sparse incidence); None keeps all (dense).
    rng : numpy.random.Generator

    Returns
    -------
    affinity : HypergraphAffinity
    sigma : float
        The kernel width used.
    """
    centres, centres_tags = kmeans(
        unit_features, tags, n_clusters=n_edges, rng=rng, progress=progress, label="Hypergraph k-means"
    )
    distances = squared_distances(unit_features, tags, centres, centres_tags).astype(np.float64)
    n = distances.shape[0]
    keep = n_edges if edges_per_item is None else min(edges_per_item, n_edges)
    nearest, nearest_sq = _nearest(distances, keep)
    if sigma == "auto":
        sigma = float(np.mean(np.sqrt(nearest_sq[:, -1])))
        sigma = max(sigma, 1e-12)
    sigma = float(sigma)

    if edges_per_item is None:
        incidence = np.exp(-distances / (2.0 * sigma**2))
    else:
        values = np.exp(-nearest_sq / (2.0 * sigma**2))
        incidence = sp.csr_matrix(
            (values.ravel(), (np.repeat(np.arange(n), keep), nearest.ravel())), shape=(n, n_edges)
        )
    values = incidence.data if sp.issparse(incidence) else incidence
    logger.info(
        "Hypergraph: %d items, %d hyperedges, %s incidence, sigma_H=%.4g, incidence range [%.3g, %.3g]",
        n, n_edges, "dense" if edges_per_item is None else f"{keep}-nearest", sigma, values.min(), values.max(),
    )
    return HypergraphAffinity(incidence), sigma


def build_anchor_graph(unit_features, *, n_anchors, anchors_per_item, rng, progress=NULL_PROGRESS):
    """Build the anchor graph of Anchor Graph Hashing on L2-normalised features.

    Anchors are k-means centres of ``x_hat``. Item i keeps its s nearest anchors with weights
    ``exp(-d^2 / sigma_A^2)``, where ``sigma_A`` is the mean distance of the items to their s-th
    nearest anchor, and each row is normalised to sum to 1.

    Returns
    -------
    affinity : AnchorGraphAffinity
    sigma : float
        The kernel width used.
    """
    anchors, _ = kmeans(unit_features, None, n_clusters=n_anchors, rng=rng, progress=progress, label="Anchor k-means")
    distances = squared_distances(unit_features, None, anchors, None).astype(np.float64)
    n = distances.shape[0]
    s = min(anchors_per_item, n_anchors)
    nearest, nearest_sq = _nearest(distances, s)
    sigma = max(float(np.mean(np.sqrt(nearest_sq[:, -1]))), 1e-12)

    # Subtract each row's smallest distance before exponentiating; it cancels in the row
    # normalisation and keeps far-away rows from underflowing to all zeros.
    shifted = nearest_sq - nearest_sq[:, :1]
    values = np.exp(-shifted / sigma**2)
    values /= values.sum(axis=1, keepdims=True)
    weights = sp.csr_matrix(
        (values.ravel(), (np.repeat(np.arange(n), s), nearest.ravel())), shape=(n, n_anchors)
    )
    logger.info("Anchor graph: %d items, %d anchors, s=%d, sigma_A=%.4g", n, n_anchors, s, sigma)
    return AnchorGraphAffinity(weights), sigma
