"""Evaluation conventions and the named presets that reproduce legacy evaluation code.

Hashing papers compute "mAP" under different conventions, and numbers computed under different
conventions are not comparable. Every evaluation in hashbench therefore runs under one explicit
``Conventions`` object and names it in its output. The conventions are:

``ties``
    How items at equal Hamming distance are ordered in a ranking.

    - ``stable``: in database order (a stable sort; MATLAB's ``sort``).
    - ``shuffle``: in a random order drawn from ``seed`` and the query's index, the same for
      every figure of that query.
    - ``tie-aware``: the expected value of each figure over all orders of the tied items, in
      closed form (He, Liu, Wang and Sclaroff, "Hashing as Tie-Aware Learning to Rank",
      CVPR 2018). No order is drawn, so the database order cannot influence the result.
    - ``unstable``: whatever order numpy's default ``argsort`` leaves on float32 distances, as
      research code that calls ``np.argsort`` per query gets. The order among ties depends on the
      numpy release and the CPU, so this reproduces such code only on the same setup.

``empty_queries``
    What happens to a query for which a figure is undefined: a query with no relevant item in the
    database (undefined for every figure), a mAP@k whose normaliser is 0, or a precision within a
    Hamming radius that retrieves nothing.

    - ``zero``: the figure counts as 0 and the query stays in the mean.
    - ``drop``: the query is left out of that figure's mean.

``topk_normaliser``
    What AP@k divides the sum of precision at the relevant ranks within the top k by.

    - ``retrieved``: the number of relevant items retrieved within the top k.
    - ``min-k-relevant``: min(k, number of relevant items in the database).

Relevance is fixed: a database item is relevant to a query when their label rows share at least
one label, and the graded relevance of NDCG is the number of shared labels.
"""

from dataclasses import dataclass

#: Allowed values of each convention, in documentation order.
TIES = ("stable", "shuffle", "tie-aware", "unstable")
EMPTY_QUERIES = ("zero", "drop")
TOPK_NORMALISERS = ("retrieved", "min-k-relevant")

#: Fixed definitions that every evaluation reports beside the options.
RELEVANCE = "share at least one label"
NDCG_GAIN = "2^(shared labels) - 1, discount 1 / log2(rank + 1)"

#: The preset that ``hashbench run`` and ``hashbench evaluate`` use unless another preset is requested.
DEFAULT_PRESET = "hashbench"


def _check_choice(value, allowed, name):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")


@dataclass(frozen=True)
class Conventions:
    """One choice for each evaluation convention.

    Parameters
    ----------
    ties : {"stable", "shuffle", "tie-aware", "unstable"}, default="tie-aware"
        Order of items at equal Hamming distance.
    empty_queries : {"zero", "drop"}, default="zero"
        Whether an undefined per-query figure counts as 0 or is left out of the mean.
    topk_normaliser : {"retrieved", "min-k-relevant"}, default="min-k-relevant"
        Denominator of AP@k.
    seed : int or None, default=None
        Seed of the tie order under ``ties="shuffle"``; required there and unused otherwise.
    preset : str or None, default=None
        Name of the preset these conventions came from, for the record only.
    """

    ties: str = "tie-aware"
    empty_queries: str = "zero"
    topk_normaliser: str = "min-k-relevant"
    seed: int | None = None
    preset: str | None = None

    def __post_init__(self):
        _check_choice(self.ties, TIES, "ties")
        _check_choice(self.empty_queries, EMPTY_QUERIES, "empty_queries")
        _check_choice(self.topk_normaliser, TOPK_NORMALISERS, "topk_normaliser")
        if self.ties == "shuffle":
            if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
                raise ValueError(
                    f"ties='shuffle' needs a seed, a non-negative integer, got {self.seed!r}. "
                    "Pass seed=0 (or --seed 0) to fix the random order of tied items."
                )

    def as_dict(self):
        """Return every convention by name, as plain strings, for records and JSON output."""
        named = {
            "preset": self.preset or "custom",
            "relevance": RELEVANCE,
            "ties": self.ties,
            "empty_queries": self.empty_queries,
            "topk_normaliser": self.topk_normaliser,
            "pr_radius": "micro and macro",
            "ndcg_gain": NDCG_GAIN,
        }
        if self.ties == "shuffle":
            named["seed"] = self.seed
        return named


@dataclass(frozen=True)
class Preset:
    """A named set of conventions and the evaluation code it reproduces."""

    name: str
    conventions: Conventions
    reproduces: str


def _preset(name, reproduces, **conventions):
    return Preset(name, Conventions(preset=name, **conventions), reproduces)


#: The named presets, by name.
PRESETS = {
    preset.name: preset
    for preset in (
        _preset(
            "hashbench",
            "hashbench's default: the expected value over tie orders, every query counted, "
            "AP@k normalised by min(k, relevant items)",
            ties="tie-aware", empty_queries="zero", topk_normaliser="min-k-relevant",
        ),
        _preset(
            "matlab",
            "the MATLAB scripts of DCMH and DSTDH (calcMapTopkMapTopkPreTopkRecLabel, "
            "calcPreRecRadiusLabel): stable sort, queries without a relevant item score 0",
            ties="stable", empty_queries="zero", topk_normaliser="retrieved",
        ),
        _preset(
            "deephash-pytorch",
            "CalcTopMap of DeepHash-pytorch: np.argsort per query, AP@k over the relevant items "
            "in the top k, a query with none there scores 0",
            ties="unstable", empty_queries="zero", topk_normaliser="retrieved",
        ),
        _preset(
            "thuml",
            "mean_average_precision of thuml DeepHash and HashNet: np.argsort, AP@k over the "
            "relevant items in the top k, a query with none there left out",
            ties="unstable", empty_queries="drop", topk_normaliser="retrieved",
        ),
    )
}


def resolve_conventions(preset=None, *, ties=None, empty_queries=None, topk_normaliser=None, seed=None):
    """Build ``Conventions`` from a preset name and individual overrides.

    Parameters
    ----------
    preset : str or None, default=None
        Name of a preset in ``PRESETS``; ``None`` means ``DEFAULT_PRESET``.
    ties, empty_queries, topk_normaliser : str or None, default=None
        Replace the preset's choice when given.
    seed : int or None, default=None
        Seed for ``ties="shuffle"``.

    Returns
    -------
    Conventions
        The conventions. ``preset`` names the preset when no override changed it, and is
        ``"<preset>+custom"`` otherwise.
    """
    name = DEFAULT_PRESET if preset is None else preset
    if name not in PRESETS:
        raise ValueError(
            f"Unknown evaluation preset {name!r}; choose one of {', '.join(PRESETS)}."
        )
    base = PRESETS[name].conventions
    chosen = {
        "ties": ties or base.ties,
        "empty_queries": empty_queries or base.empty_queries,
        "topk_normaliser": topk_normaliser or base.topk_normaliser,
    }
    changed = any(chosen[key] != getattr(base, key) for key in chosen)
    return Conventions(**chosen, seed=seed, preset=f"{name}+custom" if changed else name)


def as_conventions(conventions):
    """Accept a ``Conventions``, a preset name or ``None`` (the default preset)."""
    if isinstance(conventions, Conventions):
        return conventions
    if conventions is None or isinstance(conventions, str):
        return resolve_conventions(conventions)
    raise TypeError(
        f"conventions must be a Conventions object, a preset name or None, got {conventions!r}."
    )
