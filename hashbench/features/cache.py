"""On-disk cache of backbone features, keyed by dataset, item ids, backbone and preprocessing.

For a key ``K`` the cache folder contains::

    <dataset>_<backbone>_<K[:16]>.npy     features, float32 of shape (n_items, n_features)
    <dataset>_<backbone>_<K[:16]>.json    key fields, full key, count, dim, seconds, SHA-256 of the .npy
    <dataset>_<backbone>_<K[:16]>.partial/rows-<first>-<stop>.npy
                                          chunks of an extraction in progress

Every file is written atomically. Chunks let an interrupted extraction resume from the last
finished chunk; the ``.partial`` folder is removed once the whole array is written. A cached array
is used only when its sidecar names the same key, its shape and dtype are right and its SHA-256
matches, so a truncated or corrupted file is recomputed with a warning.
"""

import hashlib
import io
import json
import logging
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hashbench.atomic import write_bytes_atomic, write_text_atomic
from hashbench.progress import NULL_PROGRESS, Progress

logger = logging.getLogger(__name__)

__all__ = ["CACHE_FORMAT_VERSION", "cache_key", "compute_features", "load_cached_features"]

#: Version of the cache layout and key. Changing it makes every earlier entry a miss.
CACHE_FORMAT_VERSION = 1

_DEFAULT_CHUNK_SIZE = 1024
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def cache_key(backbone, ids, *, dataset):
    """Compute the cache key of the features of ``ids`` under ``backbone``.

    The key is the SHA-256 of a JSON document with the dataset name, the SHA-256 of the ids,
    the backbone name, the SHA-256 of its weights, its preprocessing description and
    ``CACHE_FORMAT_VERSION``. Integer ids are hashed as little-endian int64, so int32 and int64
    arrays of the same ids give one key; string ids are hashed as UTF-8.

    Parameters
    ----------
    backbone : Backbone
        Any object with ``name``, ``weights_sha256`` and ``preprocessing`` attributes.
    ids : array-like of shape (n_items,), integer or str
        Item ids in row order; the order is part of the key.
    dataset : str
        Dataset name.

    Returns
    -------
    str
        64 lowercase hexadecimal digits.
    """
    return _key_fields(backbone, ids, dataset)[0]


def compute_features(
    backbone, image_paths, ids, *, dataset, cache_dir, batch_size=64, chunk_size=_DEFAULT_CHUNK_SIZE,
    progress=NULL_PROGRESS,
):
    """Return backbone features of the images, from the cache or computed and cached.

    A second call with the same key loads the array from disk without running the backbone. An
    interrupted computation leaves finished chunks of ``chunk_size`` images behind, and the next
    call with the same key and ``chunk_size`` computes only the missing chunks.

    Parameters
    ----------
    backbone : Backbone
        Feature extractor, for example from ``get_backbone("efficientnet-lite0")``.
    image_paths : sequence of (str or path-like) of length n_items
        Image file of each item, in the order of ``ids``.
    ids : array-like of shape (n_items,), integer or str
        Item ids; with ``dataset`` they identify the images in the cache key.
    dataset : str
        Dataset name.
    cache_dir : str or path-like
        Cache folder; created when missing.
    batch_size : int, default=64
        Images per forward pass.
    chunk_size : int, default=1024
        Images per saved chunk; at most this many images are computed again after an
        interruption.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Advanced by the number of images computed.

    Returns
    -------
    ndarray of shape (n_items, n_features), dtype float32
        Row ``i`` contains the features of ``image_paths[i]``.
    """
    image_paths = list(image_paths)
    key, fields = _key_fields(backbone, ids, dataset)
    if len(image_paths) != fields["n_items"]:
        raise ValueError(
            f"image_paths and ids must have the same length, got {len(image_paths)} paths and "
            f"{fields['n_items']} ids"
        )
    for name, value in (("batch_size", batch_size), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = _stem(dataset, backbone, key)
    array_path = cache_dir / f"{stem}.npy"
    sidecar_path = cache_dir / f"{stem}.json"
    shape = (len(image_paths), backbone.n_features)

    features = _load_cached(array_path, sidecar_path, key, shape)
    if features is not None:
        logger.info("Loaded %s features of %d %s items from %s", backbone.name, shape[0], dataset, array_path)
        return features

    start = time.perf_counter()
    features, n_resumed = _compute_in_chunks(
        backbone, image_paths, shape, cache_dir / f"{stem}.partial", chunk_size=chunk_size,
        batch_size=batch_size, progress=progress,
    )
    seconds = time.perf_counter() - start

    # The array goes first and the sidecar last, so a sidecar always describes a complete array.
    buffer = _npy_bytes(features)
    write_bytes_atomic(array_path, buffer)
    sidecar = {
        **fields,
        "key": key,
        "count": shape[0],
        "dim": shape[1],
        "dtype": "float32",
        "npy_sha256": hashlib.sha256(buffer).hexdigest(),
        "seconds": round(seconds, 3),
        "rows_resumed": n_resumed,
    }
    write_text_atomic(sidecar_path, json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(cache_dir / f"{stem}.partial", ignore_errors=True)
    logger.info(
        "Computed %s features of %d %s items in %.1f s (%d rows resumed from chunks), cached in %s",
        backbone.name, shape[0], dataset, seconds, n_resumed, array_path,
    )
    return features


# --------------------------------------------------------------------------------------------
# Key
# --------------------------------------------------------------------------------------------


def load_cached_features(backbone, ids, *, dataset, cache_dir):
    """Return the cached features of ``ids`` if a valid cache entry exists, without extracting.

    Parameters
    ----------
    backbone : Backbone
    ids : array-like of shape (n_items,)
        Item ids in row order, as given to ``compute_features``.
    dataset : str
        Dataset name.
    cache_dir : str or path-like
        Folder of the cache.

    Returns
    -------
    ndarray of shape (n_items, n_features), dtype float32, or None
        None when there is no entry, or when the entry is incomplete or corrupt.
    """
    key, fields = _key_fields(backbone, ids, dataset)
    stem = _stem(dataset, backbone, key)
    cache_dir = Path(cache_dir)
    shape = (fields["n_items"], backbone.n_features)
    return _load_cached(cache_dir / f"{stem}.npy", cache_dir / f"{stem}.json", key, shape)


def _stem(dataset, backbone, key):
    """File name stem of a cache entry, safe on every file system."""
    return _UNSAFE_NAME_CHARACTERS.sub("_", f"{dataset}_{backbone.name}_{key[:16]}")


def _key_fields(backbone, ids, dataset):
    """Return the key and the JSON-ready fields it hashes."""
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"dataset must be a non-empty str, got {dataset!r}")
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D of shape (n_items,), got shape {ids.shape}")

    if ids.dtype.kind in "iu":
        id_bytes = ids.astype("<i8").tobytes()
        id_kind = "int64"
    elif ids.dtype.kind == "U" or (ids.dtype.kind == "O" and all(isinstance(item, str) for item in ids)):
        id_bytes = b"\x00".join(str(item).encode("utf-8") for item in ids)
        id_kind = "str"
    elif ids.size == 0:
        id_bytes = b""
        id_kind = "int64"
    else:
        raise TypeError(f"ids must be integers or strings, got an array of dtype {ids.dtype}")

    fields = {
        "format_version": CACHE_FORMAT_VERSION,
        "dataset": dataset,
        "ids_sha256": hashlib.sha256(id_bytes).hexdigest(),
        "ids_kind": id_kind,
        "n_items": int(ids.shape[0]),
        "backbone": backbone.name,
        "weights_sha256": backbone.weights_sha256,
        "preprocessing": backbone.preprocessing,
    }
    document = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(document.encode("utf-8")).hexdigest(), fields


# --------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _load_cached(array_path, sidecar_path, key, shape):
    """Return the cached array, or None when it is missing or invalid (logged as a warning)."""
    if not array_path.exists() and not sidecar_path.exists():
        return None

    problem = None
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        data = array_path.read_bytes()
    except (OSError, ValueError) as exc:
        problem = f"it cannot be read ({exc})"
    else:
        if not isinstance(sidecar, dict) or sidecar.get("key") != key:
            problem = "its sidecar names another key"
        elif hashlib.sha256(data).hexdigest() != sidecar.get("npy_sha256"):
            problem = "its SHA-256 does not match the sidecar (truncated or corrupted)"
        else:
            features = _parse_npy(data)
            if features is None or features.shape != shape or features.dtype != np.float32:
                problem = f"it is not a float32 array of shape {shape}"
            else:
                return features

    logger.warning("Ignoring cached features %s because %s. Computing them again", array_path, problem)
    return None


def _parse_npy(data):
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None


def _load_chunk(path, n_rows, n_features):
    """Return a finished chunk, or None when it is unreadable or has the wrong shape."""
    try:
        chunk = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        logger.warning("Ignoring unreadable feature chunk %s (%s). Computing it again", path, exc)
        return None
    if chunk.shape != (n_rows, n_features) or chunk.dtype != np.float32:
        logger.warning(
            "Ignoring feature chunk %s: expected float32 of shape %s, found %s of shape %s. Computing it again",
            path, (n_rows, n_features), chunk.dtype, chunk.shape,
        )
        return None
    return chunk


# --------------------------------------------------------------------------------------------
# Chunked computation
# --------------------------------------------------------------------------------------------


def _compute_in_chunks(backbone, image_paths, shape, partial_dir, *, chunk_size, batch_size, progress):
    """Fill the feature array chunk by chunk, reusing chunks that a previous call saved."""
    n_items, n_features = shape
    features = np.empty(shape, dtype=np.float32)
    bounds = [(first, min(first + chunk_size, n_items)) for first in range(0, n_items, chunk_size)]

    missing = []
    n_resumed = 0
    for first, stop in bounds:
        path = partial_dir / f"rows-{first:09d}-{stop:09d}.npy"
        chunk = _load_chunk(path, stop - first, n_features) if path.exists() else None
        if chunk is None:
            missing.append((first, stop, path))
        else:
            features[first:stop] = chunk
            n_resumed += stop - first
    if n_resumed:
        logger.info(
            "Resuming %s features from %d of %d rows saved in %s", backbone.name, n_resumed, n_items, partial_dir,
        )

    n_to_compute = sum(stop - first for first, stop, _ in missing)
    with progress.task(f"{backbone.name} features", total=n_to_compute) as advance:
        inner_progress = _ForwardingProgress(advance)
        for first, stop, path in missing:
            chunk = backbone.extract(image_paths[first:stop], batch_size=batch_size, progress=inner_progress)
            write_bytes_atomic(path, _npy_bytes(chunk))
            features[first:stop] = chunk
    return features, n_resumed


class _ForwardingProgress(Progress):
    """Progress whose tasks advance one outer task, so chunks show as a single bar."""

    def __init__(self, advance):
        self._advance = advance

    @contextmanager
    def task(self, description, total=None):
        yield self._advance
