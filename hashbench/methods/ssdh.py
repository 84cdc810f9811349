"""SSDH: semantic structure-based unsupervised deep hashing.

Yang, Deng, Liu, Liu and Tao, "Semantic structure-based unsupervised deep hashing", IJCAI 2018.
The cosine distances between backbone features of training pairs are modelled by two half
Gaussians that meet at the mode of their histogram. The left one is fitted to the distances below
the mode, mirrored about it, and the right one to those above. A pair is similar (``S = 1``) when its
distance is below ``m_l - alpha * s_l``, dissimilar (``S = -1``) above ``m_r + beta * s_r`` and
unknown (``S = 0``) otherwise. The hash head's outputs ``v`` are relaxed with ``tanh`` and trained
so that ``tanh(v_i)^T tanh(v_j) / n_bits`` matches ``S`` on the known pairs of each batch:

    loss = sum_ij |S_ij| (tanh(v_i)^T tanh(v_j) / n_bits - S_ij)^2 / batch_size^2

Codes are the sign of ``v``.

Deviations: the two half Gaussians are fitted on the pairs of at most ``n_structure_samples``
random training items, not on all pairs, and the histogram has bins of width 0.01 over the
cosine distance range [0, 2]. Only the hash head is trained, on cached features (see
``hashbench.methods._deep``). The defaults ``alpha = 2``, SGD with learning rate 1e-3, momentum
0.9, weight decay 1e-5, batch size 24 and 50 epochs are those of the public PyTorch
reimplementation by the SSDH_PyTorch project. NOTE: ``beta = 2`` is assumed, and the authors' own
values were not checked.
"""

import logging

import numpy as np
import torch
from scipy.spatial.distance import pdist

from hashbench.methods._common import check_float, check_int
from hashbench.methods._deep import CachedFeatureHasher
from hashbench.registry import register_method

logger = logging.getLogger(__name__)

_BIN_WIDTH = 0.01


def structure_thresholds(features, alpha, beta):
    """Fit the two half Gaussians to the pairwise cosine distances and return the thresholds.

    Parameters
    ----------
    features : ndarray of shape (n_items, n_features)
    alpha, beta : float
        Multiples of the left and right standard deviations.

    Returns
    -------
    similar_below : float
        ``m_l - alpha * s_l``; pairs closer than this are similar.
    dissimilar_above : float
        ``m_r + beta * s_r``; pairs farther than this are dissimilar.
    """
    distances = pdist(np.asarray(features, dtype=np.float64), "cosine")
    distances = distances[np.isfinite(distances)]
    counts, edges = np.histogram(distances, bins=int(round(2.0 / _BIN_WIDTH)), range=(0.0, 2.0))
    mode = edges[int(np.argmax(counts))]

    # Mirror each side about the mode, so that each half is a full symmetric sample.
    left = distances[distances <= mode]
    right = distances[distances > mode]
    left = np.concatenate([left, 2 * mode - left])
    right = np.concatenate([2 * mode - right, right])
    similar_below = left.mean() - alpha * left.std() if len(left) else -np.inf
    dissimilar_above = right.mean() + beta * right.std() if len(right) else np.inf
    return float(similar_below), float(dissimilar_above)


@register_method("ssdh")
class SSDH(CachedFeatureHasher):
    """SSDH hash head on cached backbone features.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8.
    seed : int, default=0
        Seed of the weights, of the batch order and of the structure sample.
    alpha : float, default=2.0
        Left standard deviations below the left mean that mark a pair similar.
    beta : float, default=2.0
        Right standard deviations above the right mean that mark a pair dissimilar.
    n_structure_samples : int, default=4000
        Training items whose pairwise distances fit the half Gaussians.
    hidden_units : list of int, default=[]
        Hidden ReLU layers of the head; empty for a linear hash layer.
    epochs : int, default=50
    batch_size : int, default=24
    lr : float, default=1e-3
        SGD learning rate.
    momentum : float, default=0.9
    weight_decay : float, default=1e-5
    device : str, default="cpu"
        Torch device for training; encoding runs on the CPU.

    Attributes
    ----------
    similar_below_ : float
        Cosine distance under which a pair is similar.
    dissimilar_above_ : float
        Cosine distance above which a pair is dissimilar.
    head_ : torch.nn.Sequential
    history_ : dict
    """

    description = "SSDH: semantic structure from feature distances, hash head on cached features (Yang et al. 2018)"
    _min_batch = 2

    def __init__(self, *, n_bits=32, seed=0, alpha=2.0, beta=2.0, n_structure_samples=4000, hidden_units=(),
                 epochs=50, batch_size=24, lr=1e-3, momentum=0.9, weight_decay=1e-5, device="cpu"):
        super().__init__(n_bits=n_bits, seed=seed)
        self.alpha = alpha
        self.beta = beta
        self.n_structure_samples = n_structure_samples
        self._store_training_params(hidden_units=hidden_units, epochs=epochs, batch_size=batch_size, lr=lr,
                                    momentum=momentum, weight_decay=weight_decay, device=device)

    def _prepare(self, features):
        alpha = check_float("alpha", self.alpha)
        beta = check_float("beta", self.beta)
        n_structure_samples = check_int("n_structure_samples", self.n_structure_samples, minimum=2)
        rng = np.random.default_rng(self.seed)
        if len(features) > n_structure_samples:
            sample = features[np.sort(rng.choice(len(features), size=n_structure_samples, replace=False))]
        else:
            sample = features
        self.similar_below_, self.dissimilar_above_ = structure_thresholds(sample, alpha, beta)
        logger.info(
            "SSDH: pairs with cosine distance below %.4f are similar, above %.4f dissimilar",
            self.similar_below_, self.dissimilar_above_,
        )

    def similarity(self, features):
        """Return the semantic structure ``S`` of a batch.

        Parameters
        ----------
        features : torch.Tensor of shape (n, n_features)

        Returns
        -------
        torch.Tensor of shape (n, n)
            1 for similar, -1 for dissimilar and 0 for unknown pairs.
        """
        normalised = torch.nn.functional.normalize(features, dim=1)
        distances = 1.0 - normalised @ normalised.T
        similar = (distances < self.similar_below_).to(features.dtype)
        dissimilar = (distances > self.dissimilar_above_).to(features.dtype)
        return similar - dissimilar

    def _loss(self, features, outputs, index):
        structure = self.similarity(features)
        relaxed = torch.tanh(outputs)
        inner = relaxed @ relaxed.T / self.n_bits
        return torch.sum(structure.abs() * (inner - structure) ** 2) / features.shape[0] ** 2
