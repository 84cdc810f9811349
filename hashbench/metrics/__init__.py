"""Retrieval metrics on packed binary codes: Hamming distances, mAP, precision@N, PR curves."""

from hashbench.metrics.evaluate import evaluate_codes
from hashbench.metrics.hamming import hamming_distances
from hashbench.metrics.ranking import (
    CONVENTIONS,
    DEFAULT_PRECISION_AT,
    PrecisionAtN,
    RadiusCurve,
    mean_average_precision,
    mean_average_precision_at_k,
    precision_at_n,
    precision_recall_by_radius,
)

__all__ = [
    "CONVENTIONS",
    "DEFAULT_PRECISION_AT",
    "PrecisionAtN",
    "RadiusCurve",
    "evaluate_codes",
    "hamming_distances",
    "mean_average_precision",
    "mean_average_precision_at_k",
    "precision_at_n",
    "precision_recall_by_radius",
]
