"""Time and peak memory of ``evaluate_codes`` against a plain evaluation at NUS-WIDE scale.

The problem has the shape of the NUS-WIDE retrieval protocol: 2,100 queries, 193,734 database
items, 64-bit codes and 21 labels. Codes and labels are random (seeded), and each item gets at
least one label, as NUS-WIDE keeps only labelled images.

The plain reference evaluates as research code usually does. It builds the full float32
Hamming-distance matrix from +-1 codes and the full relevance matrix. Then it argsorts each query's
row and computes AP, AP@k and precision@N with numpy, one query at a time. It uses a stable sort,
so it follows the conventions of the ``matlab`` preset, and ``evaluate_codes`` under that preset
must agree with it. ``evaluate_codes`` is also timed under the default ``hashbench`` preset
(tie-aware, which needs no sort), and with NDCG@100 and NDCG@1000 added.

Run with pytest (timings in the pytest-benchmark table, peak memory in ``extra_info``)::

    pytest benchmarks/bench_evaluate.py --benchmark-enable -m "slow or not slow"

or as a script, which prints seconds, peak MiB and their ratios::

    python benchmarks/bench_evaluate.py [--reference-queries N]

Peak memory is measured with ``tracemalloc``, which records numpy's array allocations, and is
counted from the start of each call, so the input arrays are not included.
"""

import argparse
import time
import tracemalloc

import numpy as np
import pytest

from hashbench.metrics import evaluate_codes

N_QUERIES = 2_100
N_DATABASE = 193_734
N_BITS = 64
N_LABELS = 21
MAP_AT = (1000, 5000)
PRECISION_AT = (500, 1000, 2000, 3000, 4000, 5000)

# Chance of each label per item, which gives about 2 labels per item as in NUS-WIDE.
LABEL_PROBABILITY = 0.1


def make_problem(seed=0):
    """Build random packed codes and 0/1 labels of NUS-WIDE size."""
    rng = np.random.default_rng(seed)
    query_codes = rng.integers(0, 256, size=(N_QUERIES, N_BITS // 8), dtype=np.uint8)
    db_codes = rng.integers(0, 256, size=(N_DATABASE, N_BITS // 8), dtype=np.uint8)

    labels = rng.random((N_QUERIES + N_DATABASE, N_LABELS)) < LABEL_PROBABILITY
    unlabelled = np.flatnonzero(~labels.any(axis=1))
    labels[unlabelled, rng.integers(0, N_LABELS, size=len(unlabelled))] = True
    labels = labels.astype(np.uint8)
    return query_codes, db_codes, labels[:N_QUERIES], labels[N_QUERIES:]


def plain_reference(query_codes, db_codes, query_labels, db_labels):
    """Evaluate with full distance and relevance matrices and one argsort per query."""
    query_signs = np.unpackbits(query_codes, axis=1).astype(np.float32) * 2 - 1
    db_signs = np.unpackbits(db_codes, axis=1).astype(np.float32) * 2 - 1
    n_bits = query_signs.shape[1]
    distances = 0.5 * (n_bits - query_signs @ db_signs.T)
    relevance = (query_labels.astype(np.float32) @ db_labels.astype(np.float32).T) > 0

    n_queries, n_db = distances.shape
    average_precision = np.zeros(n_queries)
    average_precision_at = {k: np.zeros(n_queries) for k in MAP_AT}
    precision_at = {n: np.zeros(n_queries) for n in PRECISION_AT}
    for i in range(n_queries):
        ranked = relevance[i, np.argsort(distances[i], kind="stable")]
        hits = np.cumsum(ranked)
        relevant_ranks = np.flatnonzero(ranked) + 1
        precision_at_hits = np.arange(1, len(relevant_ranks) + 1) / relevant_ranks
        if len(relevant_ranks):
            average_precision[i] = precision_at_hits.mean()
        for k in MAP_AT:
            in_top = relevant_ranks <= k
            if in_top.any():
                average_precision_at[k][i] = precision_at_hits[in_top].mean()
        for n in PRECISION_AT:
            precision_at[n][i] = hits[min(n, n_db) - 1] / min(n, n_db)

    metrics = {"map": float(average_precision.mean())}
    metrics.update({f"map@{k}": float(values.mean()) for k, values in average_precision_at.items()})
    metrics.update({f"precision@{n}": float(values.mean()) for n, values in precision_at.items()})
    return metrics


def evaluate(query_codes, db_codes, query_labels, db_labels, conventions="matlab", ndcg_at=()):
    return evaluate_codes(
        query_codes, db_codes, query_labels, db_labels, conventions=conventions,
        map_at=MAP_AT, precision_at=PRECISION_AT, ndcg_at=ndcg_at,
    )


def evaluate_default(*arrays):
    return evaluate(*arrays, conventions="hashbench")


def evaluate_default_ndcg(*arrays):
    return evaluate(*arrays, conventions="hashbench", ndcg_at=(100, 1000))


def measure(function, *arrays):
    """Run ``function(*arrays)`` once and return its result, seconds and peak MiB."""
    tracemalloc.start()
    try:
        started = time.perf_counter()
        result = function(*arrays)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, seconds, peak / 2**20


@pytest.fixture(scope="module")
def problem():
    return make_problem()


@pytest.mark.slow
def test_bench_evaluate_codes(benchmark, problem):
    benchmark.group = "nus-wide-scale"
    report, _, peak_mib = measure(evaluate, *problem)
    benchmark.extra_info["peak_mib"] = peak_mib
    benchmark.pedantic(evaluate, args=problem, rounds=1, iterations=1)
    assert peak_mib < 1024


@pytest.mark.slow
def test_bench_evaluate_codes_default_preset(benchmark, problem):
    benchmark.group = "nus-wide-scale"
    _, _, peak_mib = measure(evaluate_default_ndcg, *problem)
    benchmark.extra_info["peak_mib"] = peak_mib
    benchmark.pedantic(evaluate_default_ndcg, args=problem, rounds=1, iterations=1)
    assert peak_mib < 1024


@pytest.mark.slow
def test_bench_plain_reference(benchmark, problem):
    benchmark.group = "nus-wide-scale"
    metrics, _, peak_mib = measure(plain_reference, *problem)
    benchmark.extra_info["peak_mib"] = peak_mib
    benchmark.pedantic(plain_reference, args=problem, rounds=1, iterations=1)

    report = evaluate(*problem)
    for key, value in metrics.items():
        assert report["metrics"][key] == pytest.approx(value, abs=1e-12), key


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference-queries",
        type=int,
        default=N_QUERIES,
        help="number of queries given to the plain reference; its time and memory are scaled "
        f"linearly to {N_QUERIES} queries when smaller (default: {N_QUERIES}, no scaling)",
    )
    arguments = parser.parse_args()

    problem = make_problem()
    report, evaluate_seconds, evaluate_peak = measure(evaluate, *problem)
    _, default_seconds, default_peak = measure(evaluate_default, *problem)
    _, ndcg_seconds, ndcg_peak = measure(evaluate_default_ndcg, *problem)

    n_reference = arguments.reference_queries
    query_codes, db_codes, query_labels, db_labels = problem
    metrics, reference_seconds, reference_peak = measure(
        plain_reference, query_codes[:n_reference], db_codes, query_labels[:n_reference], db_labels
    )
    scale = N_QUERIES / n_reference
    subset = evaluate(query_codes[:n_reference], db_codes, query_labels[:n_reference], db_labels)
    difference = max(abs(subset["metrics"][key] - value) for key, value in metrics.items())

    print(f"{N_QUERIES} queries x {N_DATABASE} database items, {N_BITS} bits, {N_LABELS} labels")
    print(f"evaluate_codes, matlab preset      {evaluate_seconds:8.1f} s {evaluate_peak:9.0f} MiB peak")
    print(f"evaluate_codes, hashbench preset   {default_seconds:8.1f} s {default_peak:9.0f} MiB peak")
    print(f"  the same with NDCG@100, NDCG@1000 {ndcg_seconds:8.1f} s {ndcg_peak:9.0f} MiB peak")
    label = "plain reference"
    if scale != 1:
        label = f"plain reference ({n_reference} queries, scaled linearly: an estimate)"
    print(
        f"{label}   {reference_seconds * scale:8.1f} s "
        f"{reference_peak * scale:9.0f} MiB peak"
    )
    print(
        f"ratio reference / evaluate_codes (matlab preset): "
        f"{reference_seconds * scale / evaluate_seconds:.1f}x time, "
        f"{reference_peak * scale / evaluate_peak:.1f}x memory"
    )
    print(
        f"ratio reference / evaluate_codes (hashbench preset): "
        f"{reference_seconds * scale / default_seconds:.1f}x time, "
        f"{reference_peak * scale / default_peak:.1f}x memory"
    )
    print(f"largest metric difference on the reference queries: {difference:.1e}")
    print(f"mAP {report['metrics']['map']:.6f}, empty queries {report['n_empty_queries']}")


if __name__ == "__main__":
    main()
