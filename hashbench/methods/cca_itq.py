"""CCA-ITQ: canonical correlation analysis with the tags, then iterative quantization.

Gong, Lazebnik, Gordo and Perronnin, "Iterative quantization: a Procrustean approach to learning
binary codes for large-scale image retrieval", IEEE TPAMI 35(12), 2013, Section 5. CCA finds the
directions ``W_x`` of the features most correlated with a second view of the training items. The
paper uses class labels, and here the second view is the 0/1 tag matrix, so training is still free
of labels. Each direction is scaled by its canonical correlation, as in the paper, and ITQ then
learns a rotation of the projected, centred features. Queries and database items are encoded from
their features alone: ``sign((x - mean) W_x R)``.

``W_x`` are the top generalized eigenvectors of ``C_xy C_yy^-1 C_yx w = r^2 C_xx w`` with the ridge
term ``reg`` added to the diagonals of ``C_xx`` and ``C_yy`` (the authors' code uses 1e-4).
"""

import logging

import numpy as np
import scipy.linalg

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.methods._common import check_float, check_int
from hashbench.methods.itq import learn_itq_rotation
from hashbench.registry import register_method

logger = logging.getLogger(__name__)


def cca_directions(features, tags, n_components, reg):
    """Compute the CCA directions of the features against the tags.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
    tags : scipy.sparse.csr_matrix of shape (n_items, n_tags)
    n_components : int
        At most ``min(n_features, n_tags)``.
    reg : float
        Ridge term added to the diagonal of both covariance matrices.

    Returns
    -------
    directions : ndarray of shape (n_features, n_components), dtype float64
        ``W_x``, normalised so that ``W_x^T C_xx W_x = I``, each with its largest-magnitude entry
        positive.
    correlations : ndarray of shape (n_components,), dtype float64
        Canonical correlations, in decreasing order.
    """
    n_items = features.shape[0]
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)
    tag_mean = np.asarray(tags.mean(axis=0), dtype=np.float64).ravel()

    # Covariances with centred tags, computed without densifying the centred tag matrix.
    tags = tags.astype(np.float64)
    c_xx = x.T @ x / n_items + reg * np.eye(x.shape[1])
    c_xy = np.asarray(tags.T @ x).T / n_items
    c_yy = (tags.T @ tags).toarray() / n_items - np.outer(tag_mean, tag_mean) + reg * np.eye(tags.shape[1])

    # The features are centred, so C_xy needs no correction for the tag mean.
    target = c_xy @ np.linalg.solve(c_yy, c_xy.T)
    target = (target + target.T) / 2
    n = x.shape[1]
    eigenvalues, eigenvectors = scipy.linalg.eigh(target, c_xx, subset_by_index=[n - n_components, n - 1])
    order = np.argsort(eigenvalues)[::-1]
    correlations = np.sqrt(np.clip(eigenvalues[order], 0.0, None))
    directions = eigenvectors[:, order]

    largest = np.argmax(np.abs(directions), axis=0)
    signs = np.sign(directions[largest, np.arange(directions.shape[1])])
    signs[signs == 0] = 1
    return directions * signs, correlations


@register_method("cca-itq")
class CCAITQ(Hasher):
    """CCA against the tag matrix, scaled by the correlations, then ITQ.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8, at most the number of feature dimensions and the
        number of tags.
    seed : int, default=0
        Seed of the initial random rotation.
    n_iter : int, default=50
        ITQ rotation updates (50 in the paper).
    reg : float, default=1e-4
        Ridge term of the covariance matrices. It is relative to the feature variances, so
        features of a very different scale may need another value.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), dtype float32
    projection_ : ndarray of shape (n_features, n_bits), dtype float32
        Scaled CCA directions times the ITQ rotation.
    correlations_ : ndarray of shape (n_bits,), dtype float64
        Canonical correlations of the kept directions.
    quantization_losses_ : list of float
    """

    description = "CCA with the tags, then ITQ; encodes from features (Gong et al. 2013)"
    requires = frozenset({"features", "tags"})

    def __init__(self, *, n_bits=32, seed=0, n_iter=50, reg=1e-4):
        super().__init__(n_bits=n_bits, seed=seed)
        self.n_iter = n_iter
        self.reg = reg

    def _fit(self, train, progress):
        features = train.features
        tags = train.tags
        n_samples, n_features = features.shape
        n_tags = tags.shape[1]
        n_iter = check_int("n_iter", self.n_iter, minimum=0)
        reg = check_float("reg", self.reg, exclusive_minimum=0.0)
        limit = min(n_features, n_tags)
        if self.n_bits > limit:
            raise ValueError(
                f"n_bits must be at most min(n_features={n_features}, n_tags={n_tags}) = {limit} for "
                f"CCA-ITQ, which takes one canonical direction per bit, got {self.n_bits}."
            )
        if tags.nnz == 0:
            raise ValueError(
                f"CCA-ITQ learns from the tags, but none of the {n_samples} training items has a tag. "
                "Use a training set with tags."
            )
        self.n_features_in_ = n_features

        mean = features.mean(axis=0, dtype=np.float64)
        directions, correlations = cca_directions(features, tags, self.n_bits, reg)
        # NOTE: scaling by the correlation follows the paper's description; the authors' code may
        # use another power of the eigenvalues.
        scaled = directions * correlations[None, :]
        rotation, losses = learn_itq_rotation((features - mean) @ scaled, n_iter, np.random.default_rng(self.seed))

        self.mean_ = mean.astype(np.float32)
        self.projection_ = (scaled @ rotation).astype(np.float32)
        self.correlations_ = correlations
        self.quantization_losses_ = losses
        logger.info(
            "CCA-ITQ: %d bits from %d-d features and %d tags of %d items, correlations %.3f to %.3f",
            self.n_bits, n_features, n_tags, n_samples, correlations[0], correlations[-1],
        )

    def _encode(self, features):
        return pack_codes(binarize((features - self.mean_) @ self.projection_))
