"""DSTDH ablation and tuning on a validation split drawn from the training images.

The standard protocol's training images (restricted to those present with ``--allow-partial``)
are split once, with a fixed seed, into validation queries and a validation database that is also
the training set. Queries of the protocol are never used, so numbers from this script are safe to
tune on. Each configuration is the method's defaults with some parameters replaced; the script
prints mAP over the whole validation database, the fit time and the fraction of training bits that
code learning changed from the ITQ initialisation.

Features come from the same cache as ``hashbench run`` (same dataset, rows and backbone), so run
it after ``hashbench run --method dstdh --allow-partial`` to avoid extracting them again::

    python benchmarks/ablate_dstdh.py --bits 16,32,64,128 --cache-dir cache
"""

import argparse
import json
import logging
import time

import numpy as np

from hashbench.data import load_dataset, load_split
from hashbench.features import compute_features, get_backbone
from hashbench.interface import TrainingSet
from hashbench.metrics import evaluate_codes
from hashbench.paths import default_data_root
from hashbench.registry import make_hasher

ABLATIONS = [
    ("default", {}),
    ("no anchor graph (alpha=0)", {"alpha": 0.0}),
    ("no hypergraph (beta=0)", {"beta": 0.0}),
    ("no network term (nu=0)", {"nu": 0.0}),
    ("no tag term (Z = YP + A dropped)", {"use_tags": False}),
    ("no graph deflation", {"deflate_graphs": False}),
    ("released-code variant", {"variant": "released-code"}),
]


def validation_split(train_rows, n_queries, seed):
    """Split training rows into validation queries and the validation database/training set."""
    rng = np.random.default_rng(seed)
    permuted = rng.permutation(train_rows)
    return np.sort(permuted[:n_queries]), np.sort(permuted[n_queries:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", default="32", help="Comma-separated code lengths.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the methods.")
    parser.add_argument("--validation-queries", type=int, default=600)
    parser.add_argument("--validation-seed", type=int, default=123)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--cache-dir", default="cache")
    parser.add_argument("--configs", default=None,
                        help='JSON list of [name, {"param": value}] pairs to run instead of the ablations.')
    parser.add_argument("--json", action="store_true", help="Print one JSON object per line.")
    parser.add_argument("--preset", default="matlab",
                        help="Evaluation preset; matlab (stable ties) produced the table in docs/dstdh.md.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    dataset = load_dataset("mirflickr25k", args.data_root or default_data_root())
    split = load_split(dataset, allow_partial=True)
    rows = np.union1d(split.database, split.query)
    backbone = get_backbone("efficientnet-lite0")
    features = compute_features(backbone, [dataset.image_paths[i] for i in rows], dataset.ids[rows],
                                dataset=dataset.name, cache_dir=args.cache_dir)
    position = {row: i for i, row in enumerate(rows)}
    queries, database = validation_split(split.train, args.validation_queries, args.validation_seed)
    query_features = features[[position[r] for r in queries]]
    db_features = features[[position[r] for r in database]]
    train = TrainingSet(ids=dataset.ids[database], features=db_features, tags=dataset.tags[database])
    print(f"validation: {len(queries)} queries, {len(database)} database/training images "
          f"(from the {len(split.train)} training images of {split.protocol})")

    configs = json.loads(args.configs) if args.configs else ABLATIONS
    for n_bits in [int(b) for b in args.bits.split(",")]:
        for method, name, overrides in [("lsh", "LSH", {}), ("itq", "ITQ", {})] + [("dstdh", n, o) for n, o in configs]:
            hasher = make_hasher(method, n_bits=n_bits, seed=args.seed, dataset=dataset.name, overrides=overrides)
            start = time.perf_counter()
            hasher.fit(train)
            fit_s = time.perf_counter() - start
            hasher.calibrate(db_features)
            scores = evaluate_codes(hasher.encode(query_features), hasher.encode(db_features),
                                    dataset.labels[queries], dataset.labels[database], map_at=(), precision_at=(),
                                    ndcg_at=(), conventions=args.preset)
            changed = float(np.mean(hasher.codes_ != hasher.initial_codes_)) if method == "dstdh" else None
            row = {"bits": n_bits, "config": name, "map": scores["metrics"]["map"], "fit_s": fit_s,
                   "bits_changed_from_itq": changed}
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                extra = f"  changed {changed:.3f}" if changed is not None else ""
                print(f"{n_bits:>4} bits  {name:34s} mAP {row['map']:.4f}  fit {fit_s:6.1f} s{extra}", flush=True)


if __name__ == "__main__":
    main()
