"""Benchmark of the Hamming search backends: throughput, latency, build time, size and recall.

For every database size and code length, seeded random codes are generated (uniform bits, so
distances follow a binomial distribution). Codes of stored runs can be added: each run's query
and database codes are benchmarked as they are. Every backend is built on the database, and the
queries are then timed in the style of ann-benchmarks. Queries go to the index in batches (one
query per call by default) and the whole query set runs several times. The fastest repetition
gives the throughput and the per-query latency percentiles.

Recall is measured for every backend against the ``numpy`` backend's exact result on the same
queries, with the tie-aware definition of :func:`hashbench.search.recall.knn_recall`.

A memory copy (``np.copyto`` between two large buffers, best of 3) gives the machine's memory
bandwidth. For exhaustive backends, ``scan_gb_s`` is the database bytes compared per second
(``qps * db_size * bits / 8``) and ``bandwidth_fraction`` is that rate over the copy rate, which
shows how close the scan is to the memory limit; both are None for other backends.
"""

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hashbench.codes import validate_n_bits
from hashbench.progress import NULL_PROGRESS
from hashbench.search.recall import knn_recall
from hashbench.search.registry import make_index
from hashbench.store import iter_runs, load_arrays

logger = logging.getLogger(__name__)

#: Columns of a result row, in display order.
COLUMNS = (
    "codes", "backend", "exact", "db_size", "bits", "k", "threads", "batch_size", "queries",
    "qps", "p50_ms", "p95_ms", "p99_ms", "build_s", "index_bytes", "recall", "scan_gb_s",
    "bandwidth_fraction",
)

DEFAULT_DB_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_BITS = (32, 64, 128)
DEFAULT_BACKENDS = ("numpy", "faiss-flat", "faiss-mih")

# The exact backend whose results are the reference for recall.
REFERENCE_BACKEND = "numpy"


@dataclass
class CodeSet:
    """Query and database codes to benchmark on.

    Attributes
    ----------
    source : str
        ``"random"`` or the run folder the codes come from, relative to the runs folder.
    query_codes : ndarray of shape (n_queries, n_bits // 8), dtype uint8
    db_codes : ndarray of shape (n_database, n_bits // 8), dtype uint8
    """

    source: str
    query_codes: np.ndarray
    db_codes: np.ndarray

    @property
    def n_bits(self):
        """Code length in bits."""
        return self.db_codes.shape[1] * 8


@dataclass
class BenchResult:
    """Rows of a benchmark and the memory copy rate they are compared with.

    Attributes
    ----------
    rows : list of dict
        One dict per (code set, backend, threads) with the keys of ``COLUMNS``.
    copy_gb_s : float or None
        Memory copy rate in GB/s (10**9 bytes copied per second); None when not measured.
    """

    rows: list = field(default_factory=list)
    copy_gb_s: float | None = None


def random_code_set(db_size, n_bits, n_queries, seed):
    """Draw seeded uniform random database and query codes.

    Parameters
    ----------
    db_size : int
        Number of database codes.
    n_bits : int
        Code length, a positive multiple of 8.
    n_queries : int
        Number of query codes, drawn independently of the database.
    seed : int
        Seed; the codes depend on it and on ``db_size`` and ``n_bits``.

    Returns
    -------
    CodeSet
    """
    n_bits = validate_n_bits(n_bits, name="bits")
    rng = np.random.default_rng([seed, db_size, n_bits])
    db_codes = rng.integers(0, 256, size=(db_size, n_bits // 8), dtype=np.uint8)
    query_codes = rng.integers(0, 256, size=(n_queries, n_bits // 8), dtype=np.uint8)
    return CodeSet(source="random", query_codes=query_codes, db_codes=db_codes)


def stored_code_sets(runs_dir, *, bits=None, n_queries=None):
    """Load the query and database codes of every stored run below a runs folder.

    Parameters
    ----------
    runs_dir : str or os.PathLike
        Runs folder of :class:`hashbench.store.RunStore`.
    bits : collection of int, optional
        Keep only runs with these code lengths.
    n_queries : int, optional
        Keep the first ``n_queries`` query codes of each run.

    Returns
    -------
    list of CodeSet
        One per run that stores ``query_codes`` and ``db_codes``; other runs are logged and
        skipped.

    Raises
    ------
    FileNotFoundError
        If ``runs_dir`` does not exist.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(
            f"the runs folder {runs_dir} does not exist; pass the --runs-dir of `hashbench run`."
        )
    code_sets = []
    for record in iter_runs(runs_dir):
        if bits is not None and record["n_bits"] not in bits:
            continue
        run_path = Path(record["run_path"])
        try:
            arrays = load_arrays(run_path)
        except FileNotFoundError as error:
            logger.warning("Skipping the run %s: %s", run_path, error)
            continue
        if "query_codes" not in arrays or "db_codes" not in arrays:
            logger.warning("Skipping the run %s, which stores no query_codes and db_codes", run_path)
            continue
        query_codes = arrays["query_codes"][:n_queries]
        code_sets.append(CodeSet(
            source=run_path.relative_to(runs_dir).as_posix(),
            query_codes=np.ascontiguousarray(query_codes),
            db_codes=np.ascontiguousarray(arrays["db_codes"]),
        ))
    logger.info("Loaded the codes of %d stored runs under %s", len(code_sets), runs_dir)
    return code_sets


def measure_copy_bandwidth(n_bytes=1 << 30, *, repeats=3):
    """Measure the memory copy rate with ``np.copyto`` between two buffers.

    Parameters
    ----------
    n_bytes : int, default=2**30
        Size of each buffer. Use a size well above the CPU caches.
    repeats : int, default=3
        Number of copies; the fastest counts.

    Returns
    -------
    float
        Bytes copied per second (each byte is read once and written once).
    """
    source = np.ones(n_bytes, dtype=np.uint8)
    target = np.zeros_like(source)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return n_bytes / best


def _time_queries(index, query_codes, k, *, batch_size, repetitions):
    """Run the query set ``repetitions`` times and keep the fastest run.

    Returns
    -------
    total_s : float
        Search time of the fastest run in seconds.
    latencies : ndarray of shape (n_batches,), dtype float64
        Seconds per query of each batch in that run (the batch's time over its size).
    ids : ndarray of shape (n_queries, k), dtype int64
        Results of that run.
    """
    best_total, best_latencies, best_ids = float("inf"), None, None
    for _ in range(repetitions):
        total, latencies, ids = 0.0, [], []
        for start in range(0, query_codes.shape[0], batch_size):
            batch = query_codes[start:start + batch_size]
            begin = time.perf_counter()
            _, batch_ids = index.search(batch, k)
            elapsed = time.perf_counter() - begin
            total += elapsed
            latencies.append(elapsed / batch.shape[0])
            ids.append(batch_ids)
        if total < best_total:
            best_total, best_latencies, best_ids = total, np.array(latencies), np.concatenate(ids)
    return best_total, best_latencies, best_ids


def benchmark_backend(name, code_set, k, *, threads, batch_size, repetitions, reference_distances,
                      copy_bytes_per_s=None):
    """Build one backend on a code set, time its queries and measure its recall.

    Parameters
    ----------
    name : str
        Registered backend name.
    code_set : CodeSet
        Codes to index and query.
    k : int
        Number of neighbours per query.
    threads : int
        Threads the backend may use.
    batch_size : int
        Queries per search call.
    repetitions : int
        Runs of the whole query set; the fastest counts.
    reference_distances : ndarray of shape (n_queries, k), dtype int32
        Exact k-NN distances of the queries, for recall.
    copy_bytes_per_s : float, optional
        Memory copy rate for ``bandwidth_fraction``.

    Returns
    -------
    dict
        One row with the keys of ``COLUMNS``.
    """
    index = make_index(name, threads=threads)
    start = time.perf_counter()
    index.build(code_set.db_codes)
    build_s = time.perf_counter() - start

    # One untimed search loads code and data into the caches.
    index.search(code_set.query_codes[:1], k)
    total_s, latencies, ids = _time_queries(
        index, code_set.query_codes, k, batch_size=batch_size, repetitions=repetitions,
    )
    n_queries = code_set.query_codes.shape[0]
    qps = n_queries / total_s
    db_size = code_set.db_codes.shape[0]
    # Only an exhaustive backend reads the whole database per query.
    scan_bytes_per_s = qps * db_size * code_set.n_bits / 8 if index.exhaustive else None
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000.0
    row = {
        "codes": code_set.source,
        "backend": name,
        "exact": bool(index.exact),
        "db_size": int(db_size),
        "bits": int(code_set.n_bits),
        "k": int(k),
        "threads": int(threads),
        "batch_size": int(batch_size),
        "queries": int(n_queries),
        "qps": float(qps),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "build_s": float(build_s),
        "index_bytes": int(index.index_bytes),
        "recall": knn_recall(code_set.query_codes, code_set.db_codes, ids, reference_distances),
        "scan_gb_s": None if scan_bytes_per_s is None else float(scan_bytes_per_s / 1e9),
        "bandwidth_fraction": (
            float(scan_bytes_per_s / copy_bytes_per_s)
            if scan_bytes_per_s is not None and copy_bytes_per_s else None
        ),
    }
    logger.info(
        "%s on %d x %d bits, k=%d, threads=%d: %.1f queries/s, p50 %.3f ms, recall %.4f",
        name, db_size, code_set.n_bits, k, threads, qps, p50, row["recall"],
    )
    return row


def run_search_benchmark(
    *,
    db_sizes=DEFAULT_DB_SIZES,
    bits=DEFAULT_BITS,
    k=100,
    backends=DEFAULT_BACKENDS,
    threads=(1,),
    n_queries=200,
    seed=0,
    runs_dir=None,
    batch_size=1,
    repetitions=3,
    copy_bytes=1 << 30,
    progress=NULL_PROGRESS,
):
    """Benchmark search backends on random codes and, optionally, on stored runs' codes.

    Parameters
    ----------
    db_sizes : sequence of int, default=(10_000, 100_000, 1_000_000)
        Database sizes of the random code sets.
    bits : sequence of int, default=(32, 64, 128)
        Code lengths of the random code sets; also filters the stored runs.
    k : int, default=100
        Number of neighbours per query; at most the smallest database.
    backends : sequence of str, default=("numpy", "faiss-flat", "faiss-mih")
        Registered backend names.
    threads : sequence of int, default=(1,)
        Thread counts; every backend runs with each.
    n_queries : int, default=200
        Queries per code set (random ones, or the first of a stored run).
    seed : int, default=0
        Seed of the random codes.
    runs_dir : str or os.PathLike, optional
        Runs folder whose stored codes are benchmarked as well.
    batch_size : int, default=1
        Queries per search call; 1 times each query on its own.
    repetitions : int, default=3
        Runs of the query set per backend; the fastest counts.
    copy_bytes : int, default=2**30
        Buffer size of the memory copy measurement; 0 skips it.
    progress : hashbench.progress.Progress, optional
        Progress reporter, advanced once per row.

    Returns
    -------
    BenchResult

    Raises
    ------
    ValueError
        If ``k`` exceeds a database size or an option is out of range.
    ImportError
        If a backend needs a package that is not installed.
    """
    for backend in backends:
        make_index(backend)
    code_set_specs = [(db_size, n_bits) for db_size in db_sizes for n_bits in bits]
    stored = []
    if runs_dir is not None:
        stored = stored_code_sets(runs_dir, bits=set(bits), n_queries=n_queries)
        if not stored:
            raise ValueError(
                f"no run under {runs_dir} stores query_codes and db_codes of "
                f"{', '.join(map(str, bits))} bits; run `hashbench run` first or change the bits."
            )
    smallest = min([size for size, _ in code_set_specs] + [s.db_codes.shape[0] for s in stored])
    if k > smallest:
        raise ValueError(
            f"k={k} exceeds the smallest database of {smallest} codes; pass k <= {smallest} or "
            "larger databases."
        )

    copy_bytes_per_s = None
    if copy_bytes:
        copy_bytes_per_s = measure_copy_bandwidth(copy_bytes)
        logger.info("Memory copy rate: %.2f GB/s", copy_bytes_per_s / 1e9)
    result = BenchResult(copy_gb_s=None if copy_bytes_per_s is None else copy_bytes_per_s / 1e9)

    def code_sets():
        for db_size, n_bits in code_set_specs:
            yield random_code_set(db_size, n_bits, n_queries, seed)
        yield from stored

    total = (len(code_set_specs) + len(stored)) * len(backends) * len(threads)
    with progress.task("Benchmarking search backends", total=total) as advance:
        for code_set in code_sets():
            reference = make_index(REFERENCE_BACKEND).build(code_set.db_codes)
            reference_distances, _ = reference.search(code_set.query_codes, k)
            del reference
            for name in backends:
                for thread_count in threads:
                    result.rows.append(benchmark_backend(
                        name, code_set, k, threads=thread_count, batch_size=batch_size,
                        repetitions=repetitions, reference_distances=reference_distances,
                        copy_bytes_per_s=copy_bytes_per_s,
                    ))
                    advance(1)
    return result
