"""The benchmark runner: one grid of (method, code length, seed) runs on one dataset split.

For each run the runner trains the method on the training items, encodes the database and the
queries from cached backbone features, ranks the database by Hamming distance for every query,
evaluates the ranking and stores the record and the codes. A run that already exists in the store
is skipped unless ``force`` is set, so an interrupted grid resumes where it stopped.
"""

import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from hashbench import __version__
from hashbench.codes import validate_n_bits
from hashbench.data import load_dataset, load_split, sample_split
from hashbench.environment import collect_environment
from hashbench.features import compute_features, get_backbone, load_cached_features
from hashbench.interface import TrainingSet
from hashbench.metrics import evaluate_codes
from hashbench.progress import NULL_PROGRESS
from hashbench.registry import get_method_class, make_hasher, resolve_params
from hashbench.search import make_index
from hashbench.store import RunKey, RunStore

logger = logging.getLogger(__name__)

# Images timed when measuring the backbone's per-item latency from pixels.
_LATENCY_IMAGES = 64

#: Search latency in run records: k nearest neighbours with this backend, one query per call.
SEARCH_K = 100
SEARCH_BACKEND = "numpy"


@dataclass
class RunRequest:
    """What ``hashbench run`` asks for.

    Attributes
    ----------
    method : str
        Registered method name.
    dataset : str
        Registered dataset name.
    bits : list of int
        Code lengths, each a positive multiple of 8.
    seeds : list of int
        Seeds; each run uses one.
    data_root, runs_dir, cache_dir : pathlib.Path
        Where the data are, where runs are stored and where features are cached.
    protocol : str or None
        Protocol name; None selects the dataset's standard protocol.
    backbone : str
        Feature extractor name.
    backbone_options : dict
        Extra keyword arguments of the backbone (for example ``weights_path``).
    allow_partial : bool
        Restrict the protocol to the images present on disk.
    overrides : dict
        Method parameters that replace the definition's values.
    force : bool
        Replace runs that exist already.
    batch_size : int
        Images per batch in feature extraction.
    sample : tuple of (int, int), or None
        Run on a seeded sample of (queries, database items) of the split; the training set is
        the part of the protocol's training set inside the sampled database.
    sample_seed : int
        Seed of that sample.
    """

    method: str
    dataset: str
    bits: list
    seeds: list
    data_root: object
    runs_dir: object
    cache_dir: object
    protocol: str | None = None
    backbone: str = "efficientnet-lite0"
    backbone_options: dict = field(default_factory=dict)
    allow_partial: bool = False
    overrides: dict = field(default_factory=dict)
    force: bool = False
    batch_size: int = 64
    sample: tuple | None = None
    sample_seed: int = 0


@dataclass
class RunOutcome:
    """One run of a grid: its key, where it is stored, whether it ran and its metrics."""

    key: RunKey
    path: object
    status: str
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def store_protocol_name(split):
    """Return the protocol name under which runs of ``split`` are stored and reported.

    A split restricted to the images present or sampled from the protocol is a different set of
    queries and database items, so its name carries the hash of its id lists: runs on different
    subsets never share a folder, a report row or a skip decision.
    """
    name = split.protocol
    if split.partial:
        name += f"-partial-{split.partial_split_hash[:8]}"
    if split.sample is not None:
        name += f"-sample-{split.sample['split_hash'][:8]}"
    return name


def _unique(values):
    return list(dict.fromkeys(values))


def _validate_request(request):
    bits = _unique(validate_n_bits(b, name="--bits value") for b in request.bits)
    request.seeds = _unique(request.seeds)
    if not bits:
        raise ValueError("--bits needs at least one code length, for example --bits 32.")
    for seed in request.seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"Seeds must be non-negative integers, got {seed!r}.")
    if not request.seeds:
        raise ValueError("--seeds needs at least one seed, for example --seeds 0.")
    get_method_class(request.method)
    return bits


def time_search(query_codes, db_codes, *, k=SEARCH_K, backend=SEARCH_BACKEND):
    """Time k-nearest-neighbour search of every query, one query per call, on one thread.

    Parameters
    ----------
    query_codes : ndarray of shape (n_queries, n_bytes), dtype uint8
    db_codes : ndarray of shape (n_database, n_bytes), dtype uint8
    k : int, default=100
        Neighbours per query, capped at the database size.
    backend : str, default="numpy"
        Search backend name (see ``hashbench.search``).

    Returns
    -------
    dict
        ``search_ms_per_query`` (mean), ``search_p50_ms`` and ``search_p95_ms`` (per-query
        latency percentiles) and ``index_bytes``.
    """
    index = make_index(backend, threads=1).build(db_codes)
    k = min(k, len(db_codes))
    latencies = np.empty(len(query_codes))
    for i in range(len(query_codes)):
        start = time.perf_counter()
        index.search(query_codes[i:i + 1], k)
        latencies[i] = 1000.0 * (time.perf_counter() - start)
    return {
        "search_ms_per_query": float(latencies.mean()),
        "search_p50_ms": float(np.percentile(latencies, 50)),
        "search_p95_ms": float(np.percentile(latencies, 95)),
        "index_bytes": float(index.index_bytes),
    }


def time_backbone(backbone, image_paths):
    """Return the backbone's milliseconds per image on up to 64 images (decoding included)."""
    paths = list(image_paths[:_LATENCY_IMAGES])
    start = time.perf_counter()
    backbone.extract(paths, batch_size=len(paths))
    return 1000.0 * (time.perf_counter() - start) / len(paths)


def _features_from_full_cache(backbone, dataset, full_split, rows, cache_name, cache_dir):
    """Take a sample's features from the cached features of its whole split, if they exist.

    Returns the features of ``rows`` (a subset of the split's query and database rows), or None
    when the whole split has no cache entry.
    """
    full_rows = np.union1d(full_split.database, full_split.query)
    full = load_cached_features(backbone, dataset.ids[full_rows], dataset=cache_name, cache_dir=cache_dir)
    if full is None:
        return None
    logger.info("Took the features of %d sampled items from the cache of all %d items", len(rows), len(full_rows))
    return full[np.searchsorted(full_rows, rows)]


def _backbone_details(backbone, features, request):
    """Describe the feature extractor of a run, or the precomputed features it used."""
    if backbone is None:
        return {"name": "precomputed", "n_features": int(features.shape[1])}
    return {
        "name": backbone.name, "preprocessing": backbone.preprocessing, "n_features": backbone.n_features,
        "options": {key: str(value) for key, value in request.backbone_options.items()},
    }


def run_grid(request, *, progress=NULL_PROGRESS, on_outcome=None):
    """Run every (code length, seed) combination of a request.

    Parameters
    ----------
    request : RunRequest
    progress : hashbench.progress.Progress, optional
    on_outcome : callable, optional
        Called with each ``RunOutcome`` as soon as it is known.

    Returns
    -------
    list of RunOutcome
    """
    bits_list = _validate_request(request)
    method_cls = get_method_class(request.method)
    store = RunStore(request.runs_dir)

    dataset = load_dataset(request.dataset, request.data_root, progress=progress)
    if "tags" in method_cls.requires and dataset.tags is None:
        raise ValueError(
            f"{request.method} trains on user tags, but dataset {dataset.name!r} has none. "
            "Choose a dataset with tags, such as mirflickr25k or nuswide."
        )
    split = load_split(dataset, request.protocol, allow_partial=request.allow_partial)
    full_split = split
    if request.sample is not None:
        n_query, n_database = request.sample
        split = sample_split(split, dataset.ids, n_query=n_query, n_database=n_database, seed=request.sample_seed)
        logger.info(
            "Sampled %d queries and %d database items (%d training items) with seed %d",
            len(split.query), len(split.database), len(split.train), request.sample_seed,
        )
    params = resolve_params(request.method, dataset.name, request.overrides)
    protocol_name = store_protocol_name(split)
    keys = [
        RunKey(
            method=request.method, dataset=dataset.name, protocol=protocol_name, n_bits=n_bits, seed=seed,
            params=params, backbone="precomputed" if dataset.features is not None else request.backbone,
        )
        for n_bits in bits_list
        for seed in request.seeds
    ]
    pending = [key for key in keys if request.force or not store.exists(key)]
    outcomes = []
    for key in keys:
        if key not in pending:
            stored = json.loads((store.path(key) / "record.json").read_text(encoding="utf-8"))
            outcome = RunOutcome(key=key, path=store.path(key), status="skipped (exists)",
                                 metrics=stored.get("metrics", {}), timings=stored.get("timings", {}))
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    if not pending:
        logger.info("All %d runs exist under %s; nothing to do (use --force to replace them)", len(keys), request.runs_dir)
        return outcomes

    # Features of every item the split uses, computed once and cached on disk. A dataset that
    # ships features (``dataset.features``) needs no backbone.
    rows = np.union1d(split.database, split.query)
    start = time.perf_counter()
    if dataset.features is not None:
        backbone = None
        features = np.ascontiguousarray(dataset.features[rows], dtype=np.float32)
    else:
        backbone = get_backbone(request.backbone, **request.backbone_options)
        # Two layouts of one dataset (CIFAR-10 pickles and JPEG files) share ids but not pixels.
        cache_name = f"{dataset.name}-{dataset.source.split(':')[0]}" if dataset.source else dataset.name
        features = None
        if split is not full_split:
            features = _features_from_full_cache(backbone, dataset, full_split, rows, cache_name, request.cache_dir)
        if features is None:
            features = compute_features(
                backbone, [dataset.image_paths[i] for i in rows], dataset.ids[rows], dataset=cache_name,
                cache_dir=request.cache_dir, batch_size=request.batch_size, progress=progress,
            )
    features_s = time.perf_counter() - start
    position = {row: i for i, row in enumerate(rows)}

    def features_of(selected):
        return features[[position[row] for row in selected]]

    train_features = features_of(split.train)
    db_features = features_of(split.database)
    query_features = features_of(split.query)
    backbone_ms = 0.0 if backbone is None else time_backbone(backbone, [dataset.image_paths[i] for i in split.query])
    environment = collect_environment()

    for key in pending:
        hasher = make_hasher(request.method, n_bits=key.n_bits, seed=key.seed, dataset=dataset.name,
                             overrides=request.overrides)
        train = TrainingSet(
            ids=dataset.ids[split.train],
            features=train_features,
            tags=dataset.tags[split.train] if "tags" in method_cls.requires else None,
        )
        logger.info("Run %s: fitting on %d items", key.relative_path, len(train))

        start = time.perf_counter()
        hasher.fit(train, progress=progress)
        fit_s = time.perf_counter() - start

        start = time.perf_counter()
        hasher.calibrate(db_features)
        db_codes = hasher.encode(db_features)
        query_codes = hasher.encode(query_features)
        encode_ms = 1000.0 * (time.perf_counter() - start) / (len(db_features) + len(query_features))

        search = time_search(query_codes, db_codes)
        evaluation = evaluate_codes(
            query_codes, db_codes, dataset.labels[split.query], dataset.labels[split.database], progress=progress,
        )
        timings = {
            "fit_s": fit_s,
            "encode_ms_per_item": encode_ms,
            "encode_pixels_ms_per_item": backbone_ms + encode_ms,
            **search,
            "features_s": features_s,
        }
        record = {
            # The store adds the key fields (method, dataset, protocol, n_bits, seed, params, backbone).
            "constructor_params": hasher.get_params(),
            "effective_params": hasher.effective_params() if hasattr(hasher, "effective_params") else None,
            "backbone_details": _backbone_details(backbone, features, request),
            "split": split.to_record(),
            "environment": environment,
            "metrics": evaluation["metrics"],
            "curves": evaluation["curves"],
            "capped": evaluation.get("capped", {}),
            "conventions": evaluation["conventions"],
            "timings": timings,
            "timing_setup": {"encode_batch_size": len(db_features), "feature_batch_size": request.batch_size,
                             "backbone_latency_images": min(_LATENCY_IMAGES, len(split.query)),
                             "torch_threads": environment.get("torch_num_threads"),
                             "search_backend": SEARCH_BACKEND, "search_k": min(SEARCH_K, len(db_codes)),
                             "search_threads": 1},
            "fit_details": getattr(hasher, "history_", None),
            "hashbench_version": __version__,
        }
        arrays = {
            "query_codes": query_codes,
            "db_codes": db_codes,
            "query_ids": dataset.ids[split.query],
            "db_ids": dataset.ids[split.database],
        }
        path = store.write(key, record, arrays, force=request.force)
        outcome = RunOutcome(key=key, path=path, status="done", metrics=evaluation["metrics"], timings=timings)
        outcomes.append(outcome)
        logger.info("Run %s: mAP %.4f, fit %.1f s", key.relative_path, evaluation["metrics"]["map"], fit_s)
        if on_outcome:
            on_outcome(outcome)
    return outcomes
