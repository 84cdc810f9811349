"""PCAH: the sign of the top principal components.

The baseline of Wang, Kumar and Chang, "Semi-supervised hashing for large-scale search", IEEE
TPAMI 34(12), 2012, and of Gong and Lazebnik (CVPR 2011): centred features are projected on their
top ``n_bits`` principal directions and each projection is thresholded at zero.
"""

import logging

import numpy as np

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.methods._common import check_bits_at_most_features
from hashbench.methods.itq import pca_directions
from hashbench.registry import register_method

logger = logging.getLogger(__name__)


@register_method("pcah")
class PCAH(Hasher):
    """PCA hashing: sign of the centred features projected on the top principal directions.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8, at most the number of feature dimensions.
    seed : int, default=0
        Unused, because PCAH is deterministic; kept for the common interface.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), dtype float32
        Training mean.
    projection_ : ndarray of shape (n_features, n_bits), dtype float32
        Principal directions, ordered by decreasing variance.
    """

    description = "Sign of the top principal components (PCAH, Wang et al. 2012)"
    requires = frozenset({"features"})

    def __init__(self, *, n_bits=32, seed=0):
        super().__init__(n_bits=n_bits, seed=seed)

    def _fit(self, train, progress):
        features = train.features
        n_samples, n_features = features.shape
        check_bits_at_most_features("PCAH", self.n_bits, n_features)
        self.n_features_in_ = n_features

        mean = features.mean(axis=0, dtype=np.float64)
        directions = pca_directions(features - mean, self.n_bits)
        self.mean_ = mean.astype(np.float32)
        self.projection_ = directions.astype(np.float32)
        logger.info("PCAH: %d bits from %d-d features of %d items", self.n_bits, n_features, n_samples)

    def _encode(self, features):
        return pack_codes(binarize((features - self.mean_) @ self.projection_))
