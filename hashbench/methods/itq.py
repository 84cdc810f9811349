"""ITQ: PCA, then an orthogonal rotation that minimises the quantization loss.

Gong and Lazebnik, "Iterative quantization: a Procrustean approach to learning binary codes",
CVPR 2011. Centred features are projected on their top ``n_bits`` principal directions ``V``; the
rotation ``R`` alternates ``B = sign(V R)`` with the orthogonal Procrustes solution
``R = argmin ||B - V R||_F`` (an SVD of ``V^T B``), starting from a random orthogonal matrix.
"""

import logging

import numpy as np

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.registry import register_method

logger = logging.getLogger(__name__)


def pca_directions(centred, n_components):
    """Return the top principal directions of centred data.

    Parameters
    ----------
    centred : ndarray of shape (n_samples, n_features), dtype float32 or float64
        Data with zero column means.
    n_components : int
        Number of directions; at most ``n_features``.

    Returns
    -------
    ndarray of shape (n_features, n_components), dtype float64
        Orthonormal columns, ordered by decreasing variance, each with its largest-magnitude entry
        positive so the result does not depend on the eigensolver's sign choice.
    """
    centred = np.asarray(centred, dtype=np.float64)
    covariance = centred.T @ centred / max(len(centred) - 1, 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][:n_components]
    directions = eigenvectors[:, order]

    # Fix the sign of each direction for determinism across LAPACK builds.
    largest = np.argmax(np.abs(directions), axis=0)
    signs = np.sign(directions[largest, np.arange(directions.shape[1])])
    signs[signs == 0] = 1
    return directions * signs


def learn_itq_rotation(projected, n_iter, rng):
    """Learn the ITQ rotation for PCA-projected data.

    Parameters
    ----------
    projected : ndarray of shape (n_samples, n_bits), dtype float64
        Centred data projected on its principal directions.
    n_iter : int
        Number of alternations between the codes and the rotation.
    rng : numpy.random.Generator
        Source of the random initial rotation.

    Returns
    -------
    rotation : ndarray of shape (n_bits, n_bits), dtype float64
        Orthogonal rotation.
    losses : list of float
        Quantization loss ``||sign(V R) - V R||_F^2`` before each update, then after the last.
    """
    n_bits = projected.shape[1]
    rotation, _ = np.linalg.qr(rng.standard_normal((n_bits, n_bits)))
    losses = []
    for _ in range(n_iter):
        rotated = projected @ rotation
        codes = binarize(rotated).astype(np.float64)
        losses.append(float(np.sum((codes - rotated) ** 2)))

        # Orthogonal Procrustes: R = argmin ||B - V R|| over orthogonal R.
        u, _, vt = np.linalg.svd(projected.T @ codes)
        rotation = u @ vt
    rotated = projected @ rotation
    losses.append(float(np.sum((binarize(rotated) - rotated) ** 2)))
    return rotation, losses


@register_method("itq")
class ITQ(Hasher):
    """Iterative quantization on PCA-projected features.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8, at most the number of feature dimensions.
    seed : int, default=0
        Seed of the initial random rotation.
    n_iter : int, default=50
        Rotation updates (the paper uses 50).

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), dtype float32
    projection_ : ndarray of shape (n_features, n_bits), dtype float32
        PCA directions times the learned rotation.
    quantization_losses_ : list of float
        Loss before each rotation update and after the last.
    """

    description = "PCA then iterative quantization (Gong and Lazebnik 2011)"
    requires = frozenset({"features"})

    def __init__(self, *, n_bits=32, seed=0, n_iter=50):
        super().__init__(n_bits=n_bits, seed=seed)
        self.n_iter = n_iter

    def _fit(self, train, progress):
        features = train.features
        n_samples, n_features = features.shape
        if self.n_bits > n_features:
            raise ValueError(
                f"n_bits must be at most n_features={n_features} for PCA-based ITQ, got {self.n_bits}."
            )
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, int) or self.n_iter < 0:
            raise ValueError(f"n_iter must be a non-negative integer, got {self.n_iter!r}.")
        self.n_features_in_ = n_features

        mean = features.mean(axis=0, dtype=np.float64)
        centred = features - mean
        directions = pca_directions(centred, self.n_bits)
        rotation, losses = learn_itq_rotation(centred @ directions, self.n_iter, np.random.default_rng(self.seed))

        self.mean_ = mean.astype(np.float32)
        self.projection_ = (directions @ rotation).astype(np.float32)
        self.quantization_losses_ = losses
        logger.info(
            "ITQ: %d bits from %d-d features of %d items, quantization loss %.1f -> %.1f",
            self.n_bits, n_features, n_samples, losses[0], losses[-1],
        )

    def _encode(self, features):
        return pack_codes(binarize((features - self.mean_) @ self.projection_))
