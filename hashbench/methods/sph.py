"""SpH: spherical hashing.

Heo, Lee, He, Chang and Yoon, "Spherical hashing", CVPR 2012. Bit ``k`` is set when an item lies
inside the hypersphere of centre ``p_k`` and radius ``t_k``. Training balances the spheres. Each
radius is the median distance of the training items to its centre, so each sphere contains half of
them. The centres repel or attract in pairs until every pair of spheres shares about a quarter of
the items, which makes the bits independent. The force between spheres ``i`` and ``j`` is
``(o_ij - n/4) / (n/4) * (p_i - p_j) / 2``, averaged over the ``n_bits`` spheres. Training stops
when the mean and the standard deviation of ``|o_ij - n/4|`` fall below ``0.1 n/4`` and
``0.15 n/4`` (the paper's tolerances), or after ``max_iter`` updates.

Deviation from the paper: the suite ranks by Hamming distance, so the paper's spherical Hamming
distance (the number of differing bits divided by the number of common set bits) is not used.
"""

import logging

import numpy as np

from hashbench.codes import pack_codes
from hashbench.interface import Hasher
from hashbench.methods._common import check_int, squared_distances
from hashbench.registry import register_method

logger = logging.getLogger(__name__)

# Convergence tolerances of the paper, as fractions of n/4.
_MEAN_TOLERANCE = 0.10
_STD_TOLERANCE = 0.15

# Training items averaged to initialise each centre, as in the authors' code.
_ITEMS_PER_INITIAL_CENTRE = 5


def sphere_statistics(data, centres):
    """Compute the median radii and the pairwise overlap counts of the spheres.

    Parameters
    ----------
    data : ndarray of shape (n_items, n_features), dtype float64
    centres : ndarray of shape (n_bits, n_features), dtype float64

    Returns
    -------
    radii : ndarray of shape (n_bits,), dtype float64
        Distance of the ``floor(n/2)``-th nearest item to each centre.
    overlaps : ndarray of shape (n_bits, n_bits), dtype float64
        ``overlaps[i, j]`` is the number of items inside both spheres ``i`` and ``j``.
    """
    distances = np.sqrt(squared_distances(centres, data))
    half = max(len(data) // 2 - 1, 0)
    radii = np.partition(distances, half, axis=1)[:, half]
    inside = (distances <= radii[:, None]).astype(np.float64)
    return radii, inside @ inside.T


@register_method("sph")
class SphericalHashing(Hasher):
    """Spherical hashing: one balanced hypersphere per bit.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8.
    seed : int, default=0
        Seed of the initial centres and of the training sample.
    max_iter : int, default=500
        Maximum number of centre updates. The authors' code has no limit; in low dimensions
        the overlaps can take a few hundred updates to reach the tolerances.
    n_train_samples : int, default=10000
        Training items used to place the spheres; all items when there are fewer.

    Attributes
    ----------
    centres_ : ndarray of shape (n_bits, n_features), dtype float64
    radii_ : ndarray of shape (n_bits,), dtype float64
    n_iter_ : int
        Centre updates done.
    converged_ : bool
        Whether the overlap tolerances were met.
    """

    description = "Spherical hashing: balanced hyperspheres (Heo et al. 2012)"
    requires = frozenset({"features"})

    def __init__(self, *, n_bits=32, seed=0, max_iter=500, n_train_samples=10000):
        super().__init__(n_bits=n_bits, seed=seed)
        self.max_iter = max_iter
        self.n_train_samples = n_train_samples

    def _fit(self, train, progress):
        features = train.features
        n_samples, n_features = features.shape
        max_iter = check_int("max_iter", self.max_iter, minimum=0)
        n_train_samples = check_int("n_train_samples", self.n_train_samples, minimum=4)
        self.n_features_in_ = n_features

        rng = np.random.default_rng(self.seed)
        if n_samples > n_train_samples:
            data = features[np.sort(rng.choice(n_samples, size=n_train_samples, replace=False))]
        else:
            data = features
        data = np.asarray(data, dtype=np.float64)
        n = len(data)

        # Each initial centre is the mean of a few random training items.
        picks = np.stack([rng.choice(n, size=min(_ITEMS_PER_INITIAL_CENTRE, n), replace=False)
                          for _ in range(self.n_bits)])
        centres = data[picks].mean(axis=1)
        radii, overlaps = sphere_statistics(data, centres)

        quarter = n / 4
        upper = np.triu_indices(self.n_bits, k=1)
        converged = False
        n_iter = 0
        while True:
            deviation = overlaps[upper] - quarter
            if np.mean(np.abs(deviation)) <= _MEAN_TOLERANCE * quarter and np.std(overlaps[upper]) <= _STD_TOLERANCE * quarter:
                converged = True
                break
            if n_iter >= max_iter:
                break

            # f_ij = (o_ij - n/4) / (n/4) * (p_i - p_j) / 2; each centre moves by the mean force.
            strength = 0.5 * (overlaps - quarter) / quarter
            np.fill_diagonal(strength, 0.0)
            forces = strength.sum(axis=1)[:, None] * centres - strength @ centres
            centres = centres + forces / self.n_bits
            radii, overlaps = sphere_statistics(data, centres)
            n_iter += 1

        if not converged:
            logger.warning(
                "SpH: overlaps did not reach the tolerances after %d updates (mean |o_ij - n/4| = %.1f, "
                "n/4 = %.1f); using the last spheres", n_iter, float(np.mean(np.abs(overlaps[upper] - quarter))), quarter,
            )
        self.centres_ = centres
        self.radii_ = radii
        self.n_iter_ = n_iter
        self.converged_ = converged
        logger.info("SpH: %d spheres on %d items after %d updates", self.n_bits, n, n_iter)

    def _encode(self, features):
        distances = np.sqrt(squared_distances(features, self.centres_))
        return pack_codes(distances <= self.radii_[None, :])
