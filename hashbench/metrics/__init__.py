"""Retrieval metrics on packed binary codes: Hamming distances, mAP, precision@N, NDCG, PR curves.

Every figure runs under explicit evaluation conventions (``Conventions``), chosen one by one or
through a named preset (``PRESETS``); ``docs/metrics.md`` defines each figure and convention.
"""

from hashbench.metrics.conventions import (
    DEFAULT_PRESET,
    PRESETS,
    Conventions,
    resolve_conventions,
)
from hashbench.metrics.evaluate import evaluate_codes
from hashbench.metrics.hamming import hamming_distances
from hashbench.metrics.ranking import (
    DEFAULT_NDCG_AT,
    DEFAULT_PRECISION_AT,
    PrecisionAtN,
    RadiusCurve,
    mean_average_precision,
    mean_average_precision_at_k,
    ndcg_at_k,
    precision_at_n,
    precision_recall_by_radius,
    precision_within_radius,
)

__all__ = [
    "Conventions",
    "DEFAULT_NDCG_AT",
    "DEFAULT_PRECISION_AT",
    "DEFAULT_PRESET",
    "PRESETS",
    "PrecisionAtN",
    "RadiusCurve",
    "evaluate_codes",
    "hamming_distances",
    "mean_average_precision",
    "mean_average_precision_at_k",
    "ndcg_at_k",
    "precision_at_n",
    "precision_recall_by_radius",
    "precision_within_radius",
    "resolve_conventions",
]
