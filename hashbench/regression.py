"""Regression baselines that CI checks: fixed-seed mAP on real images, and speed ratios.

Quality: LSH, ITQ and DSTDH run at 32 bits with seed 0 on a seeded sample of the MIRFlickr-25K
standard protocol restricted to the images present (150 queries, 1,200 database items, sample
seed 0). Their mAP must equal the stored values within ``QUALITY_TOLERANCE``, in either direction:
a drop is a regression, and a rise must be made deliberate by regenerating the stored values.

Speed: absolute times on a shared machine are noise, so CI compares ratios measured in the same
process: the numpy search backend against faiss IndexBinaryFlat (k = 100, one thread), and the
plain evaluation most research code does against ``evaluate_codes``. A ratio may not worsen by more
than ``SPEED_TOLERANCE_FACTOR`` against the stored one.

Regenerate the stored values (``reports/regression/baseline.json``) with::

    HASHBENCH_DATA=/path/to/data python -m hashbench.regression --update
"""

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from hashbench.atomic import write_text_atomic
from hashbench.metrics import evaluate_codes
from hashbench.paths import PROJECT_ROOT, default_data_root

logger = logging.getLogger(__name__)

BASELINE_FILE = PROJECT_ROOT / "reports" / "regression" / "baseline.json"
REGENERATE_COMMAND = "HASHBENCH_DATA=/path/to/data python -m hashbench.regression --update"

#: The quality runs: methods, code length, seed and protocol sample.
QUALITY_METHODS = ("dstdh", "itq", "lsh")
QUALITY_BITS = 32
QUALITY_SEED = 0
QUALITY_SAMPLE = (150, 1200)
QUALITY_TOLERANCE = 1e-3

#: A stored speed ratio may fall by at most this factor before CI fails. Ratios on a shared 2-core
#: machine moved by up to 2x between runs, so the factor leaves room for that.
SPEED_TOLERANCE_FACTOR = 3.0


def quality_arguments(data_root, runs_dir, cache_dir, method):
    """Return the ``hashbench run`` arguments of one quality run."""
    return [
        "run", "--method", method, "--dataset", "mirflickr25k", "--allow-partial",
        "--bits", str(QUALITY_BITS), "--seeds", str(QUALITY_SEED),
        "--sample", f"{QUALITY_SAMPLE[0]},{QUALITY_SAMPLE[1]}",
        "--data-root", str(data_root), "--runs-dir", str(runs_dir), "--cache-dir", str(cache_dir),
    ]


def run_quality(data_root, workdir):
    """Run the quality runs through the CLI and return ``{method: map}``."""
    from typer.testing import CliRunner

    from hashbench.cli import app
    from hashbench.store import iter_runs

    workdir = Path(workdir)
    for method in QUALITY_METHODS:
        result = CliRunner().invoke(app, quality_arguments(data_root, workdir / "runs", workdir / "cache", method))
        if result.exit_code != 0:
            raise RuntimeError(f"The quality run of {method} failed:\n{result.output}")
    return {record["method"]: record["metrics"]["map"] for record in iter_runs(workdir / "runs")}


def _best_seconds_interleaved(functions, repeats=5):
    """Time each function ``repeats`` times, alternating between them, and keep each one's best.

    Alternating exposes every function to the same changes in machine load, which a block of
    repetitions per function would not.
    """
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for i, function in enumerate(functions):
            start = time.perf_counter()
            function()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def search_ratio(n_database=100_000, n_bits=64, n_queries=50, k=100, seed=0):
    """Return numpy-backend time over faiss-flat time for single-query k-NN search, one thread."""
    from hashbench.search import make_index

    rng = np.random.default_rng(seed)
    db_codes = rng.integers(0, 256, size=(n_database, n_bits // 8), dtype=np.uint8)
    query_codes = rng.integers(0, 256, size=(n_queries, n_bits // 8), dtype=np.uint8)
    searches = []
    for backend in ("numpy", "faiss-flat"):
        index = make_index(backend, threads=1).build(db_codes)

        def search_each(index=index):
            for i in range(n_queries):
                index.search(query_codes[i:i + 1], k)

        searches.append(search_each)
    numpy_seconds, faiss_seconds = _best_seconds_interleaved(searches)
    return numpy_seconds / faiss_seconds


def plain_evaluation(query_codes, db_codes, query_labels, db_labels):
    """Return mAP computed the way most research code does it.

    It builds a full float distance matrix and runs one stable argsort per query.
    """
    query_signs = np.unpackbits(query_codes, axis=1).astype(np.float32) * 2 - 1
    db_signs = np.unpackbits(db_codes, axis=1).astype(np.float32) * 2 - 1
    distances = 0.5 * (query_signs.shape[1] - query_signs @ db_signs.T)
    relevance = (query_labels.astype(np.float32) @ db_labels.astype(np.float32).T) > 0
    average_precisions = []
    for i in range(len(query_codes)):
        ranked = relevance[i, np.argsort(distances[i], kind="stable")]
        ranks = np.flatnonzero(ranked) + 1
        average_precisions.append(np.mean(np.arange(1, len(ranks) + 1) / ranks) if len(ranks) else 0.0)
    return float(np.mean(average_precisions))


def evaluation_ratios(n_queries=200, n_database=20_000, n_bits=64, n_labels=21, seed=0):
    """Return plain-evaluation time over ``evaluate_codes`` time for mAP, P@N and mAP@k.

    Returns
    -------
    dict
        ``plain_over_evaluate_codes_matlab``: against the ``matlab`` preset, which computes the
        same numbers (checked here). ``plain_over_evaluate_codes_default``: against the default
        ``hashbench`` preset (tie-aware), the evaluation every run uses.
    """
    rng = np.random.default_rng(seed)
    query_codes = rng.integers(0, 256, size=(n_queries, n_bits // 8), dtype=np.uint8)
    db_codes = rng.integers(0, 256, size=(n_database, n_bits // 8), dtype=np.uint8)
    query_labels = (rng.random((n_queries, n_labels)) < 0.1).astype(np.uint8)
    db_labels = (rng.random((n_database, n_labels)) < 0.1).astype(np.uint8)
    arrays = (query_codes, db_codes, query_labels, db_labels)

    def ours(preset):
        return evaluate_codes(*arrays, conventions=preset, map_at=(), precision_at=(), ndcg_at=())

    expected = plain_evaluation(*arrays)
    if abs(ours("matlab")["metrics"]["map"] - expected) > 1e-9:
        raise AssertionError("evaluate_codes and the plain evaluation disagree on mAP")
    plain, matlab, default = _best_seconds_interleaved(
        [lambda: plain_evaluation(*arrays), lambda: ours("matlab"), lambda: ours("hashbench")], repeats=3
    )
    return {
        "plain_over_evaluate_codes_matlab": plain / matlab,
        "plain_over_evaluate_codes_default": plain / default,
    }


def measure_speed():
    """Return the speed ratios CI compares: ``{name: ratio}``, larger is better for hashbench."""
    return {"faiss_flat_over_numpy_search": 1.0 / search_ratio(), **evaluation_ratios()}


def load_baseline(path=BASELINE_FILE):
    """Read the stored regression values."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure, or store with --update, the regression baselines.")
    parser.add_argument("--update", action="store_true", help=f"Write the values to {BASELINE_FILE}.")
    parser.add_argument("--data-root", default=None, help="Data root [default: $HASHBENCH_DATA, then ./data].")
    parser.add_argument(
        "--only", choices=("quality", "speed"), default=None,
        help="Measure only this part and keep the stored values of the other.",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    baseline = load_baseline() if arguments.only and BASELINE_FILE.exists() else {}
    if arguments.only != "speed":
        data_root = Path(arguments.data_root) if arguments.data_root else default_data_root()
        with tempfile.TemporaryDirectory() as workdir:
            quality = run_quality(data_root, workdir)
        baseline["quality"] = {
            "command": " ".join(quality_arguments("$HASHBENCH_DATA", "RUNS", "CACHE", "METHOD")),
            "tolerance": QUALITY_TOLERANCE,
            "map": quality,
        }
    if arguments.only != "quality":
        baseline["speed"] = {"tolerance_factor": SPEED_TOLERANCE_FACTOR, "ratios": measure_speed()}
    text = json.dumps(baseline, indent=2, sort_keys=True) + "\n"
    print(text, end="")
    if arguments.update:
        write_text_atomic(BASELINE_FILE, text)
        print(f"Wrote {BASELINE_FILE}")


if __name__ == "__main__":
    main()
