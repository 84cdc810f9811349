"""SGH: scalable graph hashing with feature transformation.

Jiang and Li, "Scalable graph hashing with feature transformation", IJCAI 2015. The target
similarity is ``S~ = 2 exp(-||x_i - x_j||^2 / rho) - 1``. With ``||x|| <= 1`` and ``rho = 2`` the
factor ``exp(2 x_i^T x_j / rho)`` is replaced by its first-order fit on [-1, 1],
``(e - 1/e) / 2 * t + (e + 1/e) / 2``, so that ``S~ = P Q^T`` exactly for the transformed features
``P = [a e^{-||x||^2/rho} x, sqrt(e + 1/e) e^{-||x||^2/rho}, 1]`` and ``Q`` (the same with -1 as
last entry), ``a = sqrt(2 (e - 1/e) / rho)``. The graph ``S~`` is never formed.

Hash functions are ``sign(K(x) w_t)`` on centred Gaussian kernel features ``K`` of 300 anchors
drawn from the training items. They are learned one bit at a time: ``w_t`` is the top generalized
eigenvector of ``K^T R_{t-1} K w = lambda (K^T K + gamma I) w`` with ``R_0 = n_bits * S~``, and the
residual is updated as ``R_t = R_{t-1} - sign(K w_t) sign(K w_t)^T``, so each bit corrects the
error of the bits before it.

Implementation choices that the paper leaves open follow the authors' code: the kernel width
``2 delta`` with ``delta`` the mean squared distance to the anchors, and ``gamma = 1e-6``. The
paper assumes unit-norm features; here they are centred and divided by the largest training norm so
that ``||x|| <= 1`` holds for the training items.
"""

import logging

import numpy as np
import scipy.linalg

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.methods._common import check_float, check_int, squared_distances
from hashbench.registry import register_method

logger = logging.getLogger(__name__)

# Bandwidth of the target similarity exp(-||x - y||^2 / rho) for features of norm at most 1.
_RHO = 2.0


def transformed_features(features):
    """Return ``P`` and ``Q`` with ``P Q^T`` the approximated similarity ``2 S - 1``.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features), dtype float64
        Norms at most 1.

    Returns
    -------
    p, q : ndarray of shape (n_items, n_features + 2), dtype float64
    """
    norm_factor = np.exp(-np.sum(features**2, axis=1) / _RHO)
    scale = np.sqrt(2 * (np.e - np.exp(-1)) / _RHO)
    part = scale * features * norm_factor[:, None]
    constant = np.sqrt(np.e + np.exp(-1)) * norm_factor
    ones = np.ones(len(features))
    p = np.column_stack([part, constant, ones])
    q = np.column_stack([part, constant, -ones])
    return p, q


@register_method("sgh")
class SGH(Hasher):
    """Scalable graph hashing with feature transformation and bit-wise sequential learning.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8, at most ``n_anchors``.
    seed : int, default=0
        Seed of the anchor sample.
    n_anchors : int, default=300
        Kernel anchors drawn from the training items (300 in the paper).
    gamma : float, default=1e-6
        Ridge term added to ``K^T K``.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), dtype float64
    scale_ : float
        Largest training norm after centring; features are divided by it.
    anchors_ : ndarray of shape (n_anchors, n_features), dtype float64
        Scaled anchors.
    delta_ : float
        Mean squared training distance to the anchors; the kernel is ``exp(-d^2 / (2 delta))``.
    kernel_mean_ : ndarray of shape (n_anchors,), dtype float64
        Training mean of the kernel features, subtracted before projecting.
    projection_ : ndarray of shape (n_anchors, n_bits), dtype float64
    """

    description = "Scalable graph hashing with feature transformation (Jiang and Li 2015)"
    requires = frozenset({"features"})

    def __init__(self, *, n_bits=32, seed=0, n_anchors=300, gamma=1e-6):
        super().__init__(n_bits=n_bits, seed=seed)
        self.n_anchors = n_anchors
        self.gamma = gamma

    def _fit(self, train, progress):
        features = train.features
        n_samples, n_features = features.shape
        n_anchors = check_int(
            "n_anchors", self.n_anchors, minimum=1, maximum=n_samples,
            reason=f"anchors are drawn from the {n_samples} training items",
        )
        gamma = check_float("gamma", self.gamma, exclusive_minimum=0.0)
        if self.n_bits > n_anchors:
            raise ValueError(
                f"n_bits must be at most n_anchors={n_anchors} for SGH, whose hash functions live in "
                f"the span of the kernel features of the anchors, got {self.n_bits}. "
                "Use more anchors or fewer bits."
            )
        self.n_features_in_ = n_features

        # Scale the training items into the unit ball, which the approximation of S~ assumes.
        mean = features.mean(axis=0, dtype=np.float64)
        centred = features - mean
        scale = float(np.sqrt(np.max(np.sum(centred**2, axis=1))))
        scale = scale if scale > 0 else 1.0
        scaled = centred / scale
        p, q = transformed_features(scaled)

        rng = np.random.default_rng(self.seed)
        anchors = scaled[rng.choice(n_samples, size=n_anchors, replace=False)]
        distances = squared_distances(scaled, anchors)
        delta = float(distances.mean())
        delta = delta if delta > 0 else 1.0
        kernel = np.exp(-distances / (2 * delta))
        kernel_mean = kernel.mean(axis=0)
        kernel -= kernel_mean

        projection = self._learn_sequentially(kernel, p, q, gamma)

        self.mean_ = mean
        self.scale_ = scale
        self.anchors_ = anchors
        self.delta_ = delta
        self.kernel_mean_ = kernel_mean
        self.projection_ = projection
        logger.info("SGH: %d bits from %d anchors on %d items", self.n_bits, n_anchors, n_samples)

    def _learn_sequentially(self, kernel, p, q, gamma):
        """Learn one projection per bit against the residual similarity (Algorithm 1 of the paper)."""
        # K^T R_0 K = n_bits (K^T P)(K^T Q)^T, an n_anchors x n_anchors matrix.
        residual = self.n_bits * (kernel.T @ p) @ (kernel.T @ q).T
        residual = (residual + residual.T) / 2
        gram = kernel.T @ kernel + gamma * np.eye(kernel.shape[1])
        projection = np.zeros((kernel.shape[1], self.n_bits))
        for bit in range(self.n_bits):
            n = kernel.shape[1]
            _, vectors = scipy.linalg.eigh(residual, gram, subset_by_index=[n - 1, n - 1])
            w = vectors[:, 0]
            # Fix the sign: the eigensolver may return either.
            if w[np.argmax(np.abs(w))] < 0:
                w = -w
            projection[:, bit] = w

            # Remove what this bit explains: R_t = R_{t-1} - b b^T, b = sign(K w).
            explained = kernel.T @ binarize(kernel @ w).astype(np.float64)
            residual -= np.outer(explained, explained)
        return projection

    def _encode(self, features):
        scaled = (np.asarray(features, dtype=np.float64) - self.mean_) / self.scale_
        kernel = np.exp(-squared_distances(scaled, self.anchors_) / (2 * self.delta_)) - self.kernel_mean_
        return pack_codes(binarize(kernel @ self.projection_))
