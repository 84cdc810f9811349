"""DSH: density sensitive hashing.

Jin, Li, Lin and Cai, "Density sensitive hashing", IEEE Transactions on Cybernetics 44(8), 2014.
A few k-means iterations split the training items into ``round(alpha * n_bits)`` groups. Each
pair of r-adjacent groups (one centre among the ``r`` nearest centres of the other) proposes the
hyperplane that bisects their centres, ``w = mu_i - mu_j`` with ``t = w^T (mu_i + mu_j) / 2``, which
runs through a low-density region between two dense ones. DSH keeps the ``n_bits`` proposals with
the largest entropy of the split they make, and sets a bit when ``w^T x > t``.

The paper's defaults are ``alpha = 1.5``, ``r = 3`` and 3 k-means iterations. The entropy of a
split is measured on the training items, as in the paper. The authors' code measures it from the
group sizes instead.
"""

import logging

import numpy as np

from hashbench.codes import pack_codes
from hashbench.interface import Hasher
from hashbench.methods._common import check_float, check_int, kmeans, squared_distances
from hashbench.registry import register_method

logger = logging.getLogger(__name__)


def adjacent_pairs(centres, n_adjacent):
    """List the pairs of r-adjacent groups.

    Parameters
    ----------
    centres : ndarray of shape (n_groups, n_features), dtype float64
    n_adjacent : int
        ``r``: each group is paired with its ``r`` nearest other groups.

    Returns
    -------
    list of tuple of (int, int)
        Pairs ``(i, j)`` with ``i < j``, without repeats, in increasing order.
    """
    distances = squared_distances(centres, centres)
    np.fill_diagonal(distances, np.inf)
    n_neighbours = min(n_adjacent, len(centres) - 1)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :n_neighbours]
    pairs = {(min(i, int(j)), max(i, int(j))) for i in range(len(centres)) for j in nearest[i]}
    return sorted(pairs)


def split_entropy(projections, thresholds):
    """Return the entropy in bits of each hyperplane's split of the items.

    Parameters
    ----------
    projections : ndarray of shape (n_items, n_planes), dtype float64
    thresholds : ndarray of shape (n_planes,), dtype float64

    Returns
    -------
    ndarray of shape (n_planes,), dtype float64
        Between 0 (all items on one side) and 1 (an even split).
    """
    above = np.mean(projections > thresholds[None, :], axis=0)
    entropy = np.zeros_like(above)
    for p in (above, 1.0 - above):
        positive = p > 0
        entropy[positive] -= p[positive] * np.log2(p[positive])
    return entropy


@register_method("dsh")
class DSH(Hasher):
    """Density sensitive hashing: bisecting hyperplanes between adjacent k-means groups.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8.
    seed : int, default=0
        Seed of the k-means initialisation.
    alpha : float, default=1.5
        Groups per bit; k-means finds ``round(alpha * n_bits)`` groups.
    n_adjacent : int, default=3
        ``r`` of r-adjacency.
    kmeans_iter : int, default=3
        Lloyd iterations (the paper's 3; the groups need not converge).

    Attributes
    ----------
    projection_ : ndarray of shape (n_features, n_bits), dtype float64
        Hyperplane normals ``mu_i - mu_j``.
    thresholds_ : ndarray of shape (n_bits,), dtype float64
    entropies_ : ndarray of shape (n_bits,), dtype float64
        Training entropy of each selected split, in bits.
    """

    description = "Density sensitive hashing (Jin et al. 2014)"
    requires = frozenset({"features"})

    def __init__(self, *, n_bits=32, seed=0, alpha=1.5, n_adjacent=3, kmeans_iter=3):
        super().__init__(n_bits=n_bits, seed=seed)
        self.alpha = alpha
        self.n_adjacent = n_adjacent
        self.kmeans_iter = kmeans_iter

    def _fit(self, train, progress):
        features = train.features
        n_samples, n_features = features.shape
        alpha = check_float("alpha", self.alpha, exclusive_minimum=0.0)
        n_adjacent = check_int("n_adjacent", self.n_adjacent, minimum=1)
        kmeans_iter = check_int("kmeans_iter", self.kmeans_iter, minimum=0)
        n_groups = max(int(round(alpha * self.n_bits)), 2)
        if n_groups > n_samples:
            raise ValueError(
                f"DSH with n_bits={self.n_bits} and alpha={alpha} clusters the training items into "
                f"{n_groups} groups, but there are only {n_samples} training items. Use more "
                "training items, fewer bits or a smaller alpha."
            )
        self.n_features_in_ = n_features

        rng = np.random.default_rng(self.seed)
        centres, _ = kmeans(features, n_groups, n_iter=kmeans_iter, rng=rng)
        pairs = adjacent_pairs(centres, n_adjacent)
        if len(pairs) < self.n_bits:
            raise ValueError(
                f"DSH found {len(pairs)} pairs of adjacent groups among {n_groups} groups, fewer than "
                f"n_bits={self.n_bits}. Increase alpha or n_adjacent."
            )
        first = np.array([i for i, _ in pairs])
        second = np.array([j for _, j in pairs])
        normals = (centres[first] - centres[second]).T
        thresholds = np.einsum("ij,ji->i", (centres[first] + centres[second]) / 2, normals)

        entropy = split_entropy(np.asarray(features, dtype=np.float64) @ normals, thresholds)
        # Stable sort: among equal entropies the earlier pair wins.
        chosen = np.argsort(-entropy, kind="stable")[: self.n_bits]

        self.projection_ = normals[:, chosen]
        self.thresholds_ = thresholds[chosen]
        self.entropies_ = entropy[chosen]
        logger.info(
            "DSH: %d bits from %d candidate hyperplanes of %d groups (mean entropy %.3f bits) on %d items",
            self.n_bits, len(pairs), n_groups, float(self.entropies_.mean()), n_samples,
        )

    def _encode(self, features):
        return pack_codes(np.asarray(features, dtype=np.float64) @ self.projection_ > self.thresholds_[None, :])
