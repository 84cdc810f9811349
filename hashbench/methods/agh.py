"""AGH: anchor graph hashing, with one or two layers of thresholds.

Liu, Wang, Kumar and Chang, "Hashing with graphs", ICML 2011. Each item is linked to its ``s``
nearest of ``m`` k-means anchors with Gaussian weights ``exp(-d^2 / sigma^2)``, normalised to sum to
one per item, which gives the sparse matrix ``Z`` of shape (n, m). The anchor graph
``A = Z diag(1^T Z)^-1 Z^T`` has eigenvectors ``Z W`` with ``W = sqrt(n) Lambda^-1/2 V Sigma^-1/2``,
where ``V, Sigma`` are the eigenpairs of the m x m matrix ``Lambda^-1/2 Z^T Z Lambda^-1/2``
(``Lambda = diag(1^T Z)``) below the trivial eigenvalue 1. A new item ``x`` is embedded as
``z(x)^T W``.

One layer (1-AGH) thresholds each of ``n_bits`` eigenfunctions at zero. Two layers (2-AGH) take
``n_bits / 2`` eigenfunctions and give each a second bit that splits its positive and its negative
side again, at thresholds that minimise the cut of the anchor graph (Section 3.4 of the paper).
The kernel width ``sigma`` is the mean distance of the training items to their ``s``-th nearest
anchor, and the thresholds follow the authors' ``TwoLayerAGH_Train.m``.
"""

import logging

import numpy as np
import scipy.sparse as sp

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.methods._common import check_int, kmeans, squared_distances
from hashbench.registry import register_method

logger = logging.getLogger(__name__)

# Eigenvalues of the normalised anchor matrix at or above this value count as the trivial one.
_TRIVIAL_EIGENVALUE = 1.0 - 1e-3


def anchor_matrix(features, anchors, n_nearest, sigma):
    """Build the truncated, row-normalised anchor affinities ``Z``.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
    anchors : ndarray of shape (n_anchors, n_features), dtype float64
    n_nearest : int
        Anchors kept per item (``s``).
    sigma : float or None
        Gaussian kernel width; ``None`` estimates it as the mean distance to the ``s``-th nearest
        anchor.

    Returns
    -------
    z : scipy.sparse.csr_matrix of shape (n_items, n_anchors), dtype float64
        Each row has ``n_nearest`` positive entries that sum to 1.
    sigma : float
        The kernel width used.
    """
    distances = squared_distances(features, anchors)
    nearest = np.argpartition(distances, n_nearest - 1, axis=1)[:, :n_nearest]
    nearest_distances = np.take_along_axis(distances, nearest, axis=1)
    order = np.argsort(nearest_distances, axis=1)
    nearest = np.take_along_axis(nearest, order, axis=1)
    nearest_distances = np.take_along_axis(nearest_distances, order, axis=1)

    if sigma is None:
        sigma = float(np.mean(np.sqrt(nearest_distances[:, -1])))
        sigma = max(sigma, 1e-12)

    # Subtract each row's smallest distance before exponentiating: it cancels in the row
    # normalisation and keeps far items from underflowing to an all-zero row.
    weights = np.exp(-(nearest_distances - nearest_distances[:, :1]) / sigma**2)
    weights /= weights.sum(axis=1, keepdims=True)
    n_items = len(features)
    rows = np.repeat(np.arange(n_items), n_nearest)
    z = sp.csr_matrix((weights.ravel(), (rows, nearest.ravel())), shape=(n_items, len(anchors)))
    return z, sigma


def spectral_projection(z, n_eigenfunctions):
    """Compute ``W`` that maps anchor affinities to graph Laplacian eigenfunctions.

    Parameters
    ----------
    z : scipy.sparse.csr_matrix of shape (n_items, n_anchors)
    n_eigenfunctions : int

    Returns
    -------
    projection : ndarray of shape (n_anchors, n_eigenfunctions), dtype float64
    eigenvalues : ndarray of shape (n_eigenfunctions,), dtype float64
        In decreasing order, below the trivial eigenvalue 1.
    """
    n_items = z.shape[0]
    column_sums = np.asarray(z.sum(axis=0)).ravel()
    # An anchor that no item selected has a zero column; it cannot carry an eigenvector.
    used = column_sums > 0
    scale = np.zeros_like(column_sums)
    scale[used] = column_sums[used] ** -0.5
    gram = (z.T @ z).toarray()
    normalised = scale[:, None] * gram * scale[None, :]
    eigenvalues, eigenvectors = np.linalg.eigh(normalised)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues = eigenvalues[order]
    eigenvectors = eigenvectors[:, order]

    keep = (eigenvalues > 1e-10) & (eigenvalues < _TRIVIAL_EIGENVALUE)
    if keep.sum() < n_eigenfunctions:
        raise ValueError(
            f"The anchor graph has only {int(keep.sum())} non-trivial eigenvectors, but "
            f"{n_eigenfunctions} are needed. Use more anchors (n_anchors), more nearest anchors "
            "(n_nearest_anchors) or fewer bits."
        )
    eigenvalues = eigenvalues[keep][:n_eigenfunctions]
    eigenvectors = eigenvectors[:, keep][:, :n_eigenfunctions]

    # Fix each eigenvector's sign for determinism across LAPACK builds.
    largest = np.argmax(np.abs(eigenvectors), axis=0)
    signs = np.sign(eigenvectors[largest, np.arange(eigenvectors.shape[1])])
    eigenvectors = eigenvectors * signs

    projection = np.sqrt(n_items) * scale[:, None] * eigenvectors / np.sqrt(eigenvalues)[None, :]
    return projection, eigenvalues


def second_layer_thresholds(z, embedding):
    """Compute the 2-AGH thresholds ``(b+, b-)`` of each eigenfunction.

    The formulas are those of ``TwoLayerAGH_Train.m`` by the paper's first author: with ``y`` an
    eigenfunction on the training items, ``P`` its positive and ``N`` its other items,
    ``s1 = (1_P^T Z) Lambda^-1 (Z^T |y|)``, ``s2 = |P| - (1_P^T Z) Lambda^-1 (Z^T 1_P)`` and
    ``s3 = sum_P y``, the thresholds are ``b+ = (2 s3 + |N| (s3 - s1) / s2) / n`` and
    ``b- = (|P| (s3 - s1) / s2 - 2 s3) / n``.

    Parameters
    ----------
    z : scipy.sparse.csr_matrix of shape (n_items, n_anchors)
    embedding : ndarray of shape (n_items, n_eigenfunctions), dtype float64
        ``Z W`` on the training items.

    Returns
    -------
    ndarray of shape (2, n_eigenfunctions), dtype float64
        Row 0 is ``b+`` and row 1 is ``b-``.
    """
    n_items = z.shape[0]
    column_sums = np.asarray(z.sum(axis=0)).ravel()
    inverse = np.divide(1.0, column_sums, out=np.zeros_like(column_sums), where=column_sums > 0)
    thresholds = np.zeros((2, embedding.shape[1]))
    for k in range(embedding.shape[1]):
        y = embedding[:, k]
        positive = y > 0
        n_positive = int(positive.sum())
        n_negative = n_items - n_positive

        right = (z.T @ np.abs(y)) * inverse
        left = np.asarray(z[positive].sum(axis=0)).ravel()
        s1 = float(left @ right)
        s2 = n_positive - float(left @ (left * inverse))
        s3 = float(y[positive].sum())
        if abs(s2) < 1e-12:
            # All items on one side: there is no cut to balance, so split at zero.
            continue
        thresholds[0, k] = (2 * s3 + n_negative * (s3 - s1) / s2) / n_items
        thresholds[1, k] = (n_positive * (s3 - s1) / s2 - 2 * s3) / n_items
    return thresholds


@register_method("agh")
class AGH(Hasher):
    """Anchor graph hashing (1-AGH or 2-AGH).

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8, less than ``n_anchors`` (1-AGH) or
        ``2 * n_anchors`` (2-AGH).
    seed : int, default=0
        Seed of the k-means initialisation.
    layers : {1, 2}, default=1
        1-AGH thresholds ``n_bits`` eigenfunctions at zero; 2-AGH takes ``n_bits / 2``
        eigenfunctions and two bits from each.
    n_anchors : int, default=300
        Number of k-means anchors ``m`` (300 in the paper).
    n_nearest_anchors : int, default=2
        Anchors linked to each item ``s``. The paper uses 2 or 3, chosen per dataset.
    kmeans_iter : int, default=10
        Lloyd iterations of the anchor k-means. The paper does not state a count; the authors'
        demo runs a few iterations.

    Attributes
    ----------
    anchors_ : ndarray of shape (n_anchors, n_features), dtype float64
    sigma_ : float
        Gaussian kernel width.
    projection_ : ndarray of shape (n_anchors, n_eigenfunctions), dtype float64
    eigenvalues_ : ndarray of shape (n_eigenfunctions,), dtype float64
    thresholds_ : ndarray of shape (2, n_eigenfunctions), dtype float64, or None
        2-AGH thresholds ``b+`` (row 0) and ``b-`` (row 1); None for 1-AGH.
    """

    description = "Anchor graph hashing, one or two layers (Liu et al. 2011)"
    requires = frozenset({"features"})

    def __init__(self, *, n_bits=32, seed=0, layers=1, n_anchors=300, n_nearest_anchors=2, kmeans_iter=10):
        super().__init__(n_bits=n_bits, seed=seed)
        self.layers = layers
        self.n_anchors = n_anchors
        self.n_nearest_anchors = n_nearest_anchors
        self.kmeans_iter = kmeans_iter

    def _fit(self, train, progress):
        features = train.features
        n_samples, n_features = features.shape
        if self.layers not in (1, 2) or isinstance(self.layers, bool):
            raise ValueError(f"layers must be 1 (1-AGH) or 2 (2-AGH), got {self.layers!r}.")
        n_anchors = check_int(
            "n_anchors", self.n_anchors, minimum=2, maximum=n_samples,
            reason=f"anchors are k-means centres of the {n_samples} training items",
        )
        n_nearest = check_int(
            "n_nearest_anchors", self.n_nearest_anchors, minimum=1, maximum=n_anchors,
            reason=f"n_anchors={n_anchors}",
        )
        kmeans_iter = check_int("kmeans_iter", self.kmeans_iter, minimum=0)
        n_eigenfunctions = self.n_bits // self.layers
        if n_eigenfunctions >= n_anchors:
            raise ValueError(
                f"n_bits={self.n_bits} with layers={self.layers} needs {n_eigenfunctions} eigenvectors, "
                f"but n_anchors={n_anchors} anchors give at most {n_anchors - 1}. "
                "Use more anchors or fewer bits."
            )
        self.n_features_in_ = n_features

        rng = np.random.default_rng(self.seed)
        anchors, _ = kmeans(features, n_anchors, n_iter=kmeans_iter, rng=rng)
        z, sigma = anchor_matrix(features, anchors, n_nearest, None)
        projection, eigenvalues = spectral_projection(z, n_eigenfunctions)

        self.anchors_ = anchors
        self.sigma_ = sigma
        self.projection_ = projection
        self.eigenvalues_ = eigenvalues
        self.thresholds_ = second_layer_thresholds(z, z @ projection) if self.layers == 2 else None
        logger.info(
            "AGH: %d-layer, %d bits from %d anchors (s=%d, sigma=%.4g) on %d items",
            self.layers, self.n_bits, n_anchors, n_nearest, sigma, n_samples,
        )

    def embed(self, features):
        """Evaluate the graph Laplacian eigenfunctions ``z(x)^T W``.

        Parameters
        ----------
        features : ndarray of shape (n_items, n_features)

        Returns
        -------
        ndarray of shape (n_items, n_bits // layers), dtype float64
        """
        z, _ = anchor_matrix(features, self.anchors_, self.n_nearest_anchors, self.sigma_)
        return z @ self.projection_

    def _encode(self, features):
        embedding = self.embed(features)
        if self.layers == 1:
            return pack_codes(binarize(embedding))

        # Second layer: split the positive side at b+ and the negative side at b-.
        first_bits = binarize(embedding)
        second = np.where(first_bits > 0, embedding - self.thresholds_[0], -embedding + self.thresholds_[1])
        return pack_codes(np.concatenate([first_bits, binarize(second)], axis=1))
