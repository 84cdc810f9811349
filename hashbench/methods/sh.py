"""SH: spectral hashing with the analytical eigenfunctions of a uniform box.

Weiss, Torralba and Fergus, "Spectral hashing", NIPS 2008. The data are rotated to their principal
directions and assumed uniform on the box ``[a_j, b_j]`` spanned by the training data along each
direction. The eigenfunctions of the weighted Laplacian of that distribution along one direction
are ``cos(k * pi * (x - a_j) / (b_j - a_j))`` for ``k = 1, 2, ...``, with an eigenvalue that grows
with ``(k / (b_j - a_j)) ** 2``. SH keeps the ``n_bits`` one-dimensional modes of smallest
eigenvalue over all directions and thresholds each at zero. A direction with a long range can give
several bits, so SH can return more bits than feature dimensions.

As in the authors' code (``trainSH.m``), only one-dimensional modes are used (products of
eigenfunctions along several directions are left out) and the box spans the training minimum and
maximum along each direction.
"""

import logging

import numpy as np

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.methods.itq import pca_directions
from hashbench.registry import register_method

logger = logging.getLogger(__name__)


def smallest_modes(ranges, n_bits):
    """Select the one-dimensional box modes of smallest Laplacian eigenvalue.

    Parameters
    ----------
    ranges : ndarray of shape (n_directions,), dtype float64
        Length ``b_j - a_j`` of the box along each principal direction; positive.
    n_bits : int
        Number of modes to keep.

    Returns
    -------
    ndarray of shape (n_bits, n_directions), dtype float64
        Mode numbers ``k``: one positive entry per row, in the direction of that mode, and zeros
        elsewhere. Rows are ordered by increasing eigenvalue ``(k / range) ** 2``.
    """
    # Along direction j the first modes worth considering are k <= (n_bits + 1) * range_j / max range.
    max_mode = np.ceil((n_bits + 1) * ranges / ranges.max()).astype(int)
    candidates = []
    for direction, count in enumerate(max_mode):
        for k in range(1, count + 1):
            candidates.append(((k / ranges[direction]) ** 2, direction, k))

    # Python's sort is stable, so equal eigenvalues keep the direction order.
    candidates.sort(key=lambda item: item[0])
    modes = np.zeros((n_bits, len(ranges)))
    for row, (_, direction, k) in enumerate(candidates[:n_bits]):
        modes[row, direction] = k
    return modes


@register_method("sh")
class SpectralHashing(Hasher):
    """Spectral hashing with uniform-box eigenfunctions on principal components.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8.
    seed : int, default=0
        Unused, because SH is deterministic; kept for the common interface.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), dtype float32
        Training mean.
    projection_ : ndarray of shape (n_features, n_directions), dtype float32
        Principal directions, ``n_directions = min(n_bits, n_features)``.
    box_min_ : ndarray of shape (n_directions,), dtype float64
        Lower box bound ``a_j`` along each direction.
    box_range_ : ndarray of shape (n_directions,), dtype float64
        Box length ``b_j - a_j`` along each direction.
    modes_ : ndarray of shape (n_bits, n_directions), dtype float64
        Mode number of each bit along each direction (one non-zero per row).
    """

    description = "Spectral hashing: uniform-box eigenfunctions on PCA (Weiss et al. 2008)"
    requires = frozenset({"features"})

    def __init__(self, *, n_bits=32, seed=0):
        super().__init__(n_bits=n_bits, seed=seed)

    def _fit(self, train, progress):
        features = train.features
        n_samples, n_features = features.shape
        self.n_features_in_ = n_features

        # PCA on min(n_bits, n_features) directions, as in trainSH.m.
        n_directions = min(self.n_bits, n_features)
        mean = features.mean(axis=0, dtype=np.float64)
        directions = pca_directions(features - mean, n_directions)
        projected = (features - mean) @ directions

        # The box spans the training data; eps keeps a range positive for constant directions.
        eps = np.finfo(np.float64).eps
        box_min = projected.min(axis=0) - eps
        box_range = projected.max(axis=0) + eps - box_min
        box_range = np.maximum(box_range, 1e-12)

        self.mean_ = mean.astype(np.float32)
        self.projection_ = directions.astype(np.float32)
        self.box_min_ = box_min
        self.box_range_ = box_range
        self.modes_ = smallest_modes(box_range, self.n_bits)
        logger.info(
            "SH: %d bits from %d principal directions of %d-d features (%d items)",
            self.n_bits, n_directions, n_features, n_samples,
        )

    def eigenfunctions(self, features):
        """Evaluate the selected eigenfunctions before thresholding.

        Parameters
        ----------
        features : ndarray of shape (n_items, n_features), dtype float32

        Returns
        -------
        ndarray of shape (n_items, n_bits), dtype float64
            ``prod_j cos(k_j * pi * (x_j - a_j) / (b_j - a_j))``; only one factor differs from 1.
        """
        projected = (np.asarray(features, dtype=np.float64) - self.mean_) @ self.projection_
        shifted = projected - self.box_min_
        omegas = self.modes_ * (np.pi / self.box_range_)
        values = np.ones((len(projected), self.n_bits))
        for bit in range(self.n_bits):
            values[:, bit] = np.prod(np.cos(shifted * omegas[bit]), axis=1)
        return values

    def _encode(self, features):
        return pack_codes(binarize(self.eigenfunctions(features)))
