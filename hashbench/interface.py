"""The common interface that every hashing method implements.

A ``Hasher`` learns from a ``TrainingSet`` and encodes items to packed binary codes (see
``hashbench.codes`` for the format). It declares as class data what it trains on, so the runner
can prepare exactly those inputs and refuse a dataset that lacks them.
"""

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hashbench.codes import check_packed_codes, validate_n_bits
from hashbench.progress import NULL_PROGRESS

#: The inputs a method may train on.
TRAINING_INPUTS = frozenset({"features", "tags", "images"})


@dataclass
class TrainingSet:
    """The training items handed to ``Hasher.fit``.

    Attributes
    ----------
    ids : ndarray of shape (n_train,), dtype int64
        Dataset item ids, in row order.
    features : ndarray of shape (n_train, n_features), dtype float32, or None
        Backbone features of the training images.
    tags : scipy.sparse.csr_matrix of shape (n_train, n_tags), dtype float32, or None
        0/1 user tags. Labels are never part of a training set: they are for evaluation only.
    image_paths : list of pathlib.Path, or None
        Image files, for methods that train on pixels.
    """

    ids: np.ndarray
    features: np.ndarray | None = None
    tags: sp.csr_matrix | None = None
    image_paths: list | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.ids = np.asarray(self.ids, dtype=np.int64)
        n = len(self.ids)
        if self.features is not None:
            self.features = np.ascontiguousarray(self.features, dtype=np.float32)
            if self.features.ndim != 2 or self.features.shape[0] != n:
                raise ValueError(
                    f"features must have shape ({n}, n_features) to match {n} ids, "
                    f"got {self.features.shape}."
                )
        if self.tags is not None:
            self.tags = sp.csr_matrix(self.tags, dtype=np.float32)
            if self.tags.shape[0] != n:
                raise ValueError(f"tags must have {n} rows to match the ids, got {self.tags.shape[0]}.")
        if self.image_paths is not None and len(self.image_paths) != n:
            raise ValueError(
                f"image_paths must list {n} files to match the ids, got {len(self.image_paths)}."
            )

    def __len__(self):
        return len(self.ids)

    def available_inputs(self):
        """Return the set of inputs present in this training set."""
        present = set()
        if self.features is not None:
            present.add("features")
        if self.tags is not None:
            present.add("tags")
        if self.image_paths is not None:
            present.add("images")
        return frozenset(present)


class NotFittedError(RuntimeError):
    """Raised when ``encode`` is called before ``fit``."""


class Hasher(ABC):
    """Base class of all hashing methods.

    Subclasses define ``__init__`` with keyword-only hyperparameters that are stored unchanged
    under attributes of the same name; ``get_params`` reads them from the signature. ``fit``
    validates, learns, sets attributes whose names end in an underscore and returns ``self``.

    Class attributes
    ----------------
    name : str
        Registry name, set by ``hashbench.registry.register_method``.
    description : str
        One-line description for listings.
    requires : frozenset of str
        Training inputs the method needs, a subset of ``{"features", "tags", "images"}``.
    deterministic : bool
        Whether two fits with the same seed give identical codes.
    """

    name = None
    description = ""
    requires = frozenset({"features"})
    deterministic = True

    def __init__(self, *, n_bits=32, seed=0):
        self.n_bits = n_bits
        self.seed = seed

    @classmethod
    def get_param_names(cls):
        """Return the constructor's parameter names, in signature order."""
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]

    def get_params(self):
        """Return the hyperparameters as a dict (JSON-serialisable values)."""
        return {name: getattr(self, name) for name in self.get_param_names()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit(self, train, *, progress=NULL_PROGRESS):
        """Learn the hash function from a training set and return ``self``.

        Parameters
        ----------
        train : TrainingSet
            Training items; must provide every input in ``requires``.
        progress : hashbench.progress.Progress, optional
            Receives progress of long steps.

        Returns
        -------
        self
        """
        validate_n_bits(self.n_bits)
        missing = self.requires - train.available_inputs()
        if missing:
            raise ValueError(
                f"{type(self).__name__} trains on {sorted(self.requires)}, but the training set "
                f"has no {sorted(missing)}. Choose a dataset that provides them."
            )
        if len(train) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 training items, got {len(train)}.")
        self._fit(train, progress)
        self.is_fitted_ = True
        return self

    def encode(self, features):
        """Encode items to packed binary codes.

        Parameters
        ----------
        features : array-like of shape (n_items, n_features)
            Backbone features of the items; converted to float32.

        Returns
        -------
        ndarray of shape (n_items, n_bits // 8), dtype uint8
            Packed codes (see ``hashbench.codes``).
        """
        if not getattr(self, "is_fitted_", False):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet. Call fit before encode.")
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"features must be 2-D (n_items, n_features), got shape {features.shape}.")
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and features.shape[1] != expected:
            raise ValueError(
                f"features have {features.shape[1]} columns, but {type(self).__name__} was fitted "
                f"on {expected}-dimensional features. Use the same backbone for fit and encode."
            )
        codes = self._encode(features)
        return check_packed_codes(codes, n_bits=self.n_bits)

    def calibrate(self, database_features):
        """Adjust encoding to the database before it is encoded; a no-op unless a method needs it.

        The runner calls this once with the database features before encoding the database and
        the queries. Methods whose binarisation depends on the database (for example a threshold
        at the mean database output) override it.

        Parameters
        ----------
        database_features : ndarray of shape (n_database, n_features), dtype float32

        Returns
        -------
        self
        """
        return self

    @abstractmethod
    def _fit(self, train, progress):
        """Learn from ``train``; called by ``fit`` after validation."""

    @abstractmethod
    def _encode(self, features):
        """Return packed codes for float32 ``features``; called by ``encode``."""
