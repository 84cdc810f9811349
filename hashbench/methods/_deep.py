"""Training of a hash head on cached backbone features, shared by the deep unsupervised methods.

The deep methods in hashbench (GreedyHash, Bi-half, SSDH) train only a hash head, a linear layer
or a small MLP, on features that a frozen backbone computed once and cached. The papers fine-tune
the whole network on augmented images. That image-level training is not done here, so results
measure the hashing objective on fixed features. The DeepHash-pytorch reimplementations of
unsupervised GreedyHash and Bi-half also freeze VGG-16 and train only the hash layer on fc7, which
a linear head on cached fc7 features reproduces except for the augmentations.

Training is seeded: parameters are initialised under ``torch.manual_seed(seed)`` inside
``torch.random.fork_rng`` (the global generator is left as it was) and batches are drawn with a
``torch.Generator`` seeded with ``seed``. On the CPU two fits with the same seed, data and thread
count give identical codes; CUDA kernels may not be deterministic.
"""

import logging
import time

import numpy as np
import torch

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.methods._common import check_float, check_int

logger = logging.getLogger(__name__)

# Items per forward pass when encoding.
_ENCODE_BATCH = 4096


def resolve_device(device):
    """Return ``device`` as a ``torch.device`` after checking that it can be used.

    Parameters
    ----------
    device : str or torch.device
        For example ``"cpu"``, ``"cuda"`` or ``"cuda:1"``.

    Returns
    -------
    torch.device
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} requests a CUDA GPU, but torch.cuda.is_available() is False on this "
            "machine. Use device='cpu'."
        )
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or a CUDA device, got {device!r}.")
    return resolved


def build_head(n_features, n_bits, hidden_units):
    """Build the hash head: optional hidden ReLU layers, then a linear layer to ``n_bits`` outputs.

    Parameters
    ----------
    n_features : int
    n_bits : int
    hidden_units : list of int
        Widths of the hidden layers; empty for a single linear layer.

    Returns
    -------
    torch.nn.Sequential
    """
    layers = []
    width = n_features
    for units in hidden_units:
        layers += [torch.nn.Linear(width, units), torch.nn.ReLU()]
        width = units
    layers.append(torch.nn.Linear(width, n_bits))
    return torch.nn.Sequential(*layers)


class CachedFeatureHasher(Hasher):
    """Base class of hash heads trained with SGD on cached features.

    Subclasses define ``__init__`` with their hyperparameters (calling ``_store_training_params``),
    ``_loss(features, outputs)`` that returns a scalar tensor for one batch, and may override
    ``_min_batch``. Encoding thresholds the head's output at zero.

    Attributes
    ----------
    head_ : torch.nn.Sequential
        Trained head, on the CPU.
    history_ : dict
        ``{"loss": [mean loss of each epoch], "seconds": training time}``.
    """

    requires = frozenset({"features"})
    deterministic = True
    # Smallest batch a loss can use; a smaller last batch of an epoch is skipped.
    _min_batch = 2

    def _store_training_params(self, *, hidden_units, epochs, batch_size, lr, momentum, weight_decay, device):
        self.hidden_units = hidden_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.device = device

    def _check_training_params(self):
        if isinstance(self.hidden_units, (bool, str)) or not isinstance(self.hidden_units, (list, tuple)):
            raise ValueError(
                f"hidden_units must be a list of layer widths (empty for a linear head), got {self.hidden_units!r}."
            )
        for units in self.hidden_units:
            check_int("each entry of hidden_units", units, minimum=1)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=self._min_batch)
        check_float("lr", self.lr, exclusive_minimum=0.0)
        check_float("momentum", self.momentum, minimum=0.0, maximum=1.0)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        return resolve_device(self.device)

    def _prepare(self, features):
        """Compute anything the loss needs from all training features; called before training."""

    def _fit(self, train, progress):
        device = self._check_training_params()
        features = train.features
        n_samples, n_features = features.shape
        self.n_features_in_ = n_features
        self._prepare(features)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            head = build_head(n_features, self.n_bits, list(self.hidden_units))
        head = head.to(device)
        optimizer = torch.optim.SGD(
            head.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        generator = torch.Generator().manual_seed(self.seed)
        data = torch.from_numpy(features).to(device)

        losses = []
        start = time.perf_counter()
        with progress.task(f"{self.name} epochs", total=self.epochs) as advance:
            for epoch in range(self.epochs):
                order = torch.randperm(n_samples, generator=generator).to(device)
                total, n_batches = 0.0, 0
                for first in range(0, n_samples, self.batch_size):
                    index = order[first:first + self.batch_size]
                    if len(index) < self._min_batch:
                        continue
                    batch = data[index]
                    loss = self._loss(batch, head(batch), index)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach())
                    n_batches += 1
                losses.append(total / max(n_batches, 1))
                advance(1)
                logger.debug("%s epoch %d: loss %.5f", self.name, epoch + 1, losses[-1])
        seconds = time.perf_counter() - start

        self.head_ = head.cpu().eval()
        self.history_ = {"loss": losses, "seconds": seconds}
        logger.info(
            "%s: trained a %d-bit head on %d items of %d-d features for %d epochs in %.1f s, loss %.4f -> %.4f",
            self.name, self.n_bits, n_samples, n_features, self.epochs, seconds, losses[0], losses[-1],
        )

    def outputs(self, features):
        """Return the head's real-valued outputs.

        Parameters
        ----------
        features : ndarray of shape (n_items, n_features), dtype float32

        Returns
        -------
        ndarray of shape (n_items, n_bits), dtype float32
        """
        features = np.ascontiguousarray(features, dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for first in range(0, len(features), _ENCODE_BATCH):
                parts.append(self.head_(torch.from_numpy(features[first:first + _ENCODE_BATCH])).numpy())
        if not parts:
            return np.empty((0, self.n_bits), dtype=np.float32)
        return np.concatenate(parts)

    def _encode(self, features):
        return pack_codes(binarize(self.outputs(features)))


def cosine_pairs(values):
    """Return the cosine similarity between the first and the second half of a batch.

    Parameters
    ----------
    values : torch.Tensor of shape (n, d)
        ``n`` even.

    Returns
    -------
    torch.Tensor of shape (n // 2,)
    """
    half = values.shape[0] // 2
    return torch.nn.functional.cosine_similarity(values[:half], values[half:2 * half], dim=1)
