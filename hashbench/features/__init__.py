"""Image features: frozen ImageNet backbones and the on-disk feature cache."""

from hashbench.features.backbones import (
    Backbone,
    ImageDecodeError,
    get_backbone,
    list_backbones,
    register_backbone,
)
from hashbench.features.cache import CACHE_FORMAT_VERSION, cache_key, compute_features, load_cached_features
from hashbench.features.gist import GIST

__all__ = [
    "Backbone",
    "CACHE_FORMAT_VERSION",
    "GIST",
    "ImageDecodeError",
    "cache_key",
    "compute_features",
    "load_cached_features",
    "get_backbone",
    "list_backbones",
    "register_backbone",
]
