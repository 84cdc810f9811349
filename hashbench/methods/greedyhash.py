"""GreedyHash, unsupervised: a sign layer trained with the straight-through gradient.

Su, Zhang, Han and Tian, "Greedy hash: towards fast optimization for accurate hash coding in CNN",
NeurIPS 2018. The hash layer outputs ``b = sign(h)`` in the forward pass and passes the gradient of
``b`` unchanged to ``h`` in the backward pass, the greedy principle of the paper. The unsupervised
loss makes the cosine similarity of two items' codes match that of their backbone features, for
pairs formed by the first and the second half of each batch, plus the penalty
``alpha * mean(| |h| - 1 |^3)`` that pulls ``h`` towards +-1:

    loss = mean((cos(b_i, b_j) - cos(x_i, x_j))^2) + alpha * mean(| |h| - 1 |^3)

Defaults follow the unsupervised GreedyHash configuration of the DeepHash-pytorch project: a linear
hash layer on frozen fc7-like features, ``alpha = 0.1``, SGD with learning rate 1e-4 and weight
decay 5e-4 (momentum 0.9 is assumed). The paper trains the whole VGG-16 on augmented images. Here
only the hash head is trained, on cached features (see ``hashbench.methods._deep``).
"""

import torch

from hashbench.methods._common import check_float
from hashbench.methods._deep import CachedFeatureHasher, cosine_pairs
from hashbench.registry import register_method


class _SignStraightThrough(torch.autograd.Function):
    """+1 where the input is >= 0 and -1 elsewhere, with the identity as gradient."""

    @staticmethod
    def forward(ctx, values):
        return torch.where(values >= 0, 1.0, -1.0).to(values.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


@register_method("greedyhash")
class GreedyHash(CachedFeatureHasher):
    """Unsupervised GreedyHash head on cached backbone features.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8.
    seed : int, default=0
        Seed of the initial weights and of the batch order.
    alpha : float, default=0.1
        Weight of the cubic penalty ``mean(| |h| - 1 |^3)``.
    hidden_units : list of int, default=[]
        Hidden ReLU layers of the head; empty for the paper's single linear hash layer.
    epochs : int, default=100
    batch_size : int, default=32
        Items per batch; the first half is paired with the second half.
    lr : float, default=1e-4
        SGD learning rate.
    momentum : float, default=0.9
    weight_decay : float, default=5e-4
    device : str, default="cpu"
        Torch device for training, for example ``"cuda"``; encoding runs on the CPU.

    Attributes
    ----------
    head_ : torch.nn.Sequential
    history_ : dict
        Mean loss of each epoch and training seconds.
    """

    description = "GreedyHash, unsupervised, hash head on cached features (Su et al. 2018)"
    _min_batch = 2

    def __init__(self, *, n_bits=32, seed=0, alpha=0.1, hidden_units=(), epochs=100, batch_size=32, lr=1e-4,
                 momentum=0.9, weight_decay=5e-4, device="cpu"):
        super().__init__(n_bits=n_bits, seed=seed)
        self.alpha = alpha
        self._store_training_params(hidden_units=hidden_units, epochs=epochs, batch_size=batch_size, lr=lr,
                                    momentum=momentum, weight_decay=weight_decay, device=device)

    def _prepare(self, features):
        check_float("alpha", self.alpha, minimum=0.0)

    def _loss(self, features, outputs, index):
        codes = _SignStraightThrough.apply(outputs)
        similarity = torch.nn.functional.mse_loss(cosine_pairs(codes), cosine_pairs(features))
        penalty = torch.mean(torch.abs(torch.abs(outputs) - 1.0) ** 3)
        return similarity + self.alpha * penalty
