"""The DSTDH hash network: a fully connected layer from backbone features to r outputs.

The released recipe trains only the new ``n_features -> r`` layer on a frozen ImageNet backbone:
weights drawn from N(0, 0.01^2), bias 0, dropout 0.5 on the backbone features during training,
loss = mean squared error between ``tanh(F(x))`` and the +-1 codes, SGD with learning rate 0.01
(0.02 for the bias), momentum 0.9, weight decay 5e-4, batch 15, 18 epochs, learning rate x0.1
every 6 epochs. On the CPU path the backbone features are cached, so the layer trains on them.
"""

import logging

import numpy as np
import torch

from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)


class HashLayer(torch.nn.Module):
    """Dropout, then a linear layer to r outputs (tanh is applied by the callers that need it)."""

    def __init__(self, n_features, n_bits, dropout, generator):
        super().__init__()
        self.dropout = torch.nn.Dropout(dropout)
        self.linear = torch.nn.Linear(n_features, n_bits)
        with torch.no_grad():
            self.linear.weight.normal_(0.0, 0.01, generator=generator)
            self.linear.bias.zero_()

    def forward(self, features):
        return self.linear(self.dropout(features))


def make_hash_layer(n_features, n_bits, *, dropout, seed):
    """Create a hash layer with seeded N(0, 0.01^2) weights and zero bias."""
    generator = torch.Generator().manual_seed(int(seed))
    return HashLayer(n_features, n_bits, dropout, generator)


def network_outputs(layer, features, *, batch_size=4096):
    """Return the raw outputs ``F(x)`` in evaluation mode.

    Parameters
    ----------
    layer : HashLayer
    features : ndarray of shape (n, n_features), dtype float32

    Returns
    -------
    ndarray of shape (n, n_bits), dtype float32
    """
    layer.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            outputs.append(layer(torch.from_numpy(features[start:start + batch_size])).numpy())
    return np.concatenate(outputs, axis=0)


def train_hash_layer(layer, features, codes, *, epochs, batch_size, lr, bias_lr, momentum, weight_decay,
                     lr_step, seed, progress=NULL_PROGRESS):
    """Train the hash layer so that ``tanh(F(x))`` regresses the +-1 codes.

    Parameters
    ----------
    layer : HashLayer
    features : ndarray of shape (n, n_features), dtype float32
    codes : ndarray of shape (n, n_bits)
        Target codes in {-1, +1}.
    epochs, batch_size, lr, bias_lr, momentum, weight_decay, lr_step
        SGD settings; the learning rate drops by 10 every ``lr_step`` epochs.
    seed : int
        Seeds the data order and the dropout masks.

    Returns
    -------
    list of float
        Mean training loss of each epoch.
    """
    generator = torch.Generator().manual_seed(int(seed))
    order_rng = np.random.default_rng(seed)
    optimizer = torch.optim.SGD(
        [
            {"params": [layer.linear.weight], "lr": lr, "weight_decay": weight_decay},
            {"params": [layer.linear.bias], "lr": bias_lr, "weight_decay": 0.0},
        ],
        momentum=momentum,
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step, gamma=0.1)
    inputs = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    targets = torch.from_numpy(np.asarray(codes, dtype=np.float32))
    n = len(inputs)
    losses = []

    layer.train()
    with progress.task("DSTDH hash layer training", total=epochs) as advance:
        for epoch in range(epochs):
            order = torch.from_numpy(order_rng.permutation(n))
            total = 0.0
            for start in range(0, n, batch_size):
                index = order[start:start + batch_size]
                batch = inputs[index]

                # Dropout masks come from the seeded generator, not torch's global state.
                keep = 1.0 - layer.dropout.p
                mask = torch.bernoulli(torch.full_like(batch, keep), generator=generator) / keep
                outputs = torch.tanh(layer.linear(batch * mask))
                loss = torch.mean((outputs - targets[index]) ** 2)

                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
            scheduler.step()
            losses.append(total / n)
            logger.debug("hash layer epoch %d: loss %.5f", epoch + 1, losses[-1])
            advance(1)
    layer.eval()
    return losses
