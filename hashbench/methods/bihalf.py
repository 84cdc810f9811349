"""Bi-half: unsupervised hashing that maximises bit entropy with a half-and-half layer.

Li and van Gemert, "Deep unsupervised image hashing by maximizing bit entropy", AAAI 2021. In the
forward pass the bi-half layer sorts each bit's outputs over the batch and sets the top half to +1
and the bottom half to -1, the optimal transport of the outputs onto a balanced code
distribution. The backward pass adds ``gamma * (h - b) / numel(b)`` to the straight-through
gradient. The loss is the unsupervised similarity loss of GreedyHash: codes of the first and
second half of a batch must have the same cosine similarity as their backbone features.

The layer and the defaults ``gamma = 6``, batch size 32, learning rate 1e-4 and 300 epochs follow
the authors' unsupervised image code. The head is one linear layer, as on frozen VGG-16 fc7
features.
NOTE: the loss and the SGD optimiser follow public reimplementations that pair the bi-half layer
with the GreedyHash loss. The authors' own loss and optimiser were not checked.
Queries and database items are encoded with the sign of the head's output, because a single query
has no batch to split in half. The head is trained on cached features only (see
``hashbench.methods._deep``).
"""

import torch

from hashbench.methods._common import check_float
from hashbench.methods._deep import CachedFeatureHasher, cosine_pairs
from hashbench.registry import register_method


class _BiHalf(torch.autograd.Function):
    """Half-and-half binarisation of each column over the batch."""

    @staticmethod
    def forward(ctx, values, gamma):
        n = values.shape[0]
        order = torch.argsort(values, dim=0, descending=True, stable=True)
        ranked = torch.cat([
            torch.ones((n // 2, values.shape[1]), dtype=values.dtype, device=values.device),
            -torch.ones((n - n // 2, values.shape[1]), dtype=values.dtype, device=values.device),
        ])
        codes = torch.empty_like(values).scatter_(0, order, ranked)
        ctx.save_for_backward(values, codes)
        ctx.gamma = gamma
        return codes

    @staticmethod
    def backward(ctx, grad_output):
        values, codes = ctx.saved_tensors
        return grad_output + ctx.gamma * (values - codes) / codes.numel(), None


@register_method("bihalf")
class BiHalf(CachedFeatureHasher):
    """Bi-half hash head on cached backbone features.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8.
    seed : int, default=0
        Seed of the initial weights and of the batch order.
    gamma : float, default=6.0
        Weight of the ``(h - b)`` term added to the gradient.
    hidden_units : list of int, default=[]
        Hidden ReLU layers of the head; empty for the paper's linear hash layer.
    epochs : int, default=300
    batch_size : int, default=32
    lr : float, default=1e-4
        SGD learning rate.
    momentum : float, default=0.9
    weight_decay : float, default=1e-5
    device : str, default="cpu"
        Torch device for training; encoding runs on the CPU.

    Attributes
    ----------
    head_ : torch.nn.Sequential
    history_ : dict
    """

    description = "Bi-half: bit-entropy maximising hash head on cached features (Li and van Gemert 2021)"
    _min_batch = 2

    def __init__(self, *, n_bits=32, seed=0, gamma=6.0, hidden_units=(), epochs=300, batch_size=32, lr=1e-4,
                 momentum=0.9, weight_decay=1e-5, device="cpu"):
        super().__init__(n_bits=n_bits, seed=seed)
        self.gamma = gamma
        self._store_training_params(hidden_units=hidden_units, epochs=epochs, batch_size=batch_size, lr=lr,
                                    momentum=momentum, weight_decay=weight_decay, device=device)

    def _prepare(self, features):
        check_float("gamma", self.gamma, minimum=0.0)

    def _loss(self, features, outputs, index):
        codes = _BiHalf.apply(outputs, float(self.gamma))
        return torch.nn.functional.mse_loss(cosine_pairs(codes), cosine_pairs(features))
