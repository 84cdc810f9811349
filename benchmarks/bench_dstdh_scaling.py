"""Wall time and peak memory of DSTDH code learning as the training set grows.

Each size runs in a fresh subprocess so that its peak resident memory (``ru_maxrss``) is its own.
The data are synthetic but shaped like the real inputs: 1,280-d non-negative features drawn around
50 cluster centres (EfficientNet-Lite0 pooled features are non-negative) and 1,000-d sparse 0/1 tags
(about 6 tags per item, most of them drawn from the item's cluster). Code learning here is what
``DSTDH.fit`` does before the hash network trains: ITQ initialisation, the hypergraph and anchor
graph, and the augmented-Lagrangian solver.

Usage::

    python benchmarks/bench_dstdh_scaling.py --sizes 20000,100000 --bits 64
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

N_FEATURES = 1280
N_TAGS = 1000
N_CLUSTERS = 50


def make_data(n, seed=0):
    """Return synthetic features (n, 1280) float32 and tags (n, 1000) CSR float32."""
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.standard_normal((N_CLUSTERS, N_FEATURES))).astype(np.float32)
    cluster = rng.integers(N_CLUSTERS, size=n)
    features = np.abs(centres[cluster] + 0.5 * rng.standard_normal((n, N_FEATURES), dtype=np.float32))
    cluster_tags = rng.integers(N_TAGS, size=(N_CLUSTERS, 20))
    rows, cols = [], []
    for i in range(n):
        own = rng.choice(cluster_tags[cluster[i]], size=4, replace=False)
        noise = rng.integers(N_TAGS, size=2)
        for tag in np.unique(np.concatenate([own, noise])):
            rows.append(i)
            cols.append(tag)
    tags = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, N_TAGS))
    return features, tags


def measure(n, n_bits, n_hyperedges, n_anchors):
    """Run code learning once at size n in this process and return its figures."""
    from hashbench.methods.dstdh.graphs import DeflatedAffinity, build_anchor_graph, build_hypergraph
    from hashbench.methods.dstdh.solver import SolverSettings, TagRegression, learn_codes
    from hashbench.methods.itq import learn_itq_rotation, pca_directions
    from hashbench.codes import binarize

    features, tags = make_data(n)
    input_mb = (features.nbytes + tags.data.nbytes + tags.indices.nbytes + tags.indptr.nbytes) / 2**20
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(0)
    timings = {}

    start = time.perf_counter()
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    centred = features - features.mean(axis=0)
    directions = pca_directions(centred, n_bits)
    rotation, _ = learn_itq_rotation(centred @ directions, 50, rng)
    initial = binarize(centred @ directions @ rotation)
    del centred
    timings["itq_s"] = time.perf_counter() - start

    start = time.perf_counter()
    hypergraph, _ = build_hypergraph(unit, tags, n_edges=n_hyperedges, sigma="auto", edges_per_item=5, rng=rng)
    timings["hypergraph_s"] = time.perf_counter() - start
    start = time.perf_counter()
    anchors, _ = build_anchor_graph(unit, n_anchors=n_anchors, anchors_per_item=2, rng=rng)
    timings["anchor_graph_s"] = time.perf_counter() - start

    start = time.perf_counter()
    settings = SolverSettings(alpha=0.1, beta=0.1, nu=0.01)
    outputs = np.tanh(rng.standard_normal(initial.shape) * 0.1)
    result = learn_codes(initial, TagRegression(tags), DeflatedAffinity(hypergraph), DeflatedAffinity(anchors),
                         outputs, settings)
    timings["solver_s"] = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n": n, "n_bits": n_bits, "n_hyperedges": n_hyperedges, "n_anchors": n_anchors,
        "solver_iterations": result.n_iter, **timings,
        "total_s": sum(timings.values()), "input_mb": input_mb,
        "peak_rss_mb": peak_mb, "peak_over_baseline_mb": peak_mb - base_mb,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="Comma-separated training set sizes.")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--hyperedges", type=int, default=500)
    parser.add_argument("--anchors", type=int, default=100)
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.single:
        print(json.dumps(measure(args.single, args.bits, args.hyperedges, args.anchors)))
        return

    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        command = [sys.executable, __file__, "--single", str(n), "--bits", str(args.bits),
                   "--hyperedges", str(args.hyperedges), "--anchors", str(args.anchors)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        row = rows[-1]
        print(
            f"n={row['n']:>7,}  total {row['total_s']:7.1f} s (itq {row['itq_s']:.1f}, hypergraph "
            f"{row['hypergraph_s']:.1f}, anchors {row['anchor_graph_s']:.1f}, solver {row['solver_s']:.1f} in "
            f"{row['solver_iterations']} iterations)  peak RSS {row['peak_rss_mb']:,.0f} MB "
            f"(+{row['peak_over_baseline_mb']:,.0f} MB over data generation; inputs {row['input_mb']:,.0f} MB)",
            flush=True,
        )
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        growth = last["peak_over_baseline_mb"] / max(first["peak_over_baseline_mb"], 1e-9)
        print(f"memory growth {growth:.2f}x for {last['n'] / first['n']:.1f}x items")


if __name__ == "__main__":
    main()
