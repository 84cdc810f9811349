"""LSH: random projections of centred features, then the sign.

Charikar, "Similarity estimation techniques from rounding algorithms", STOC 2002 (sign random
projections). Features are centred by the training mean so that each hyperplane passes through the
data and splits it roughly in half.
"""

import logging

import numpy as np

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.registry import register_method

logger = logging.getLogger(__name__)


@register_method("lsh")
class LSH(Hasher):
    """Locality-sensitive hashing with Gaussian random hyperplanes.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8.
    seed : int, default=0
        Seed of the random projections.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), dtype float32
        Training mean subtracted before projecting.
    projections_ : ndarray of shape (n_features, n_bits), dtype float32
        Standard normal projection matrix.
    """

    description = "Sign random projections of centred features (Charikar 2002)"
    requires = frozenset({"features"})

    def __init__(self, *, n_bits=32, seed=0):
        super().__init__(n_bits=n_bits, seed=seed)

    def _fit(self, train, progress):
        features = train.features
        self.n_features_in_ = features.shape[1]
        self.mean_ = features.mean(axis=0, dtype=np.float64).astype(np.float32)
        rng = np.random.default_rng(self.seed)
        self.projections_ = rng.standard_normal((self.n_features_in_, self.n_bits)).astype(np.float32)
        logger.info("LSH: drew %d projections of %d-d features", self.n_bits, self.n_features_in_)

    def _encode(self, features):
        return pack_codes(binarize((features - self.mean_) @ self.projections_))
