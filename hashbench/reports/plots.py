"""Plots of one comparable set of runs, drawn with matplotlib's Agg canvas.

Every plot function returns a :class:`Plot`: the figure and the arrays it drew (means over seeds
and their standard deviations), so that checks can compare the drawing with the stored runs.
Curves come from each run record's ``curves``; figures across code lengths come from the summary
(:func:`hashbench.report.summarize_runs`). Seeds appear as a band of ± one sample standard
deviation (curves) or as error bars (points). Each method keeps the colour and marker of
:func:`hashbench.reports.styles.method_style`.

The figures use the object-oriented API with an Agg canvas and never touch pyplot, so drawing a
report does not change the matplotlib backend of the calling program.
"""

import io
import logging
import math
import textwrap
from dataclasses import dataclass, field

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from hashbench.report import STD_DDOF, params_label
from hashbench.reports.styles import method_style, variant_linestyle
from hashbench.store import canonical_json

logger = logging.getLogger(__name__)

#: Resolution of the PNG files, in dots per inch.
PNG_DPI = 100

# Size of one panel in inches.
_PANEL_SIZE = (6.0, 4.4)

_BAND_ALPHA = 0.18

_CURVE_NOTE = "line: mean over seeds; band: ± 1 sample standard deviation"
_POINT_NOTE = "points: mean over seeds; bars: ± 1 sample standard deviation"


@dataclass
class Series:
    """One line or set of points of a plot: a method setting at one code length or across them.

    Attributes
    ----------
    label : str
        Legend entry: the method, with backbone and parameter hash when the method has several
        settings in the set.
    method : str
    n_bits : int or None
        Code length of a curve; None for a series across code lengths.
    x, y : ndarray of shape (n_points,), float64
        Means over seeds of what the axes show.
    x_std, y_std : ndarray of shape (n_points,), float64, or None
        Sample standard deviations over seeds (0 for a single seed), drawn as a band or bars.
        None where the coordinate does not vary over seeds (a cut-off N or a code length).
    at : ndarray of shape (n_points,) or None
        What each point stands for: the Hamming radius, the cut-off N or the code length.
    n_seeds : int
        Seeds averaged into each point.
    """

    label: str
    method: str
    n_bits: int | None
    x: np.ndarray
    y: np.ndarray
    x_std: np.ndarray | None
    y_std: np.ndarray | None
    at: np.ndarray | None
    n_seeds: int


@dataclass
class Plot:
    """A drawn figure and the arrays behind it.

    Attributes
    ----------
    name : str
        File stem, for example ``"pr_radius"``.
    title : str
    xlabel, ylabel : str
        Axis labels, each with its unit.
    series : list of Series
    figure : matplotlib.figure.Figure
    front : ndarray of shape (n_front, 2), float64, or None
        Points ``(x, y)`` on the Pareto front, by ascending x. Only the search time plot has one.
    front_labels : list of str
        ``"label, N bits"`` of each front point.
    """

    name: str
    title: str
    xlabel: str
    ylabel: str
    series: list
    figure: Figure
    front: np.ndarray | None = None
    front_labels: list = field(default_factory=list)

    def png(self):
        """Render the figure as PNG bytes, without a timestamp or version in the metadata."""
        FigureCanvasAgg(self.figure)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
        return buffer.getvalue()


def _wrap(title, width=72):
    """Wrap each line of a plot title, so a long protocol name stays inside the figure."""
    return "\n".join(textwrap.fill(line, width) for line in title.split("\n"))


# ---------------------------------------------------------------------------------------------
# Series from records


def _variant(record):
    return record["method"], record.get("backbone"), canonical_json(record.get("params") or {})


def _variant_labels(variants):
    """Return a legend label and a line style index for each (method, backbone, params)."""
    labels, styles = {}, {}
    by_method = {}
    for variant in variants:
        by_method.setdefault(variant[0], []).append(variant)
    for method, members in by_method.items():
        members = sorted(members, key=lambda v: (v[1] or "", v[2]))
        backbones = {backbone for _, backbone, _ in members}
        parameter_sets = {params for _, _, params in members}
        for index, (_, backbone, params) in enumerate(members):
            details = []
            if len(backbones) > 1:
                details.append(backbone or "no backbone")
            if len(parameter_sets) > 1:
                details.append(f"params {params_label(params)}")
            variant = (method, backbone, params)
            labels[variant] = f"{method} ({', '.join(details)})" if details else method
            styles[variant] = index
    return labels, styles


def _as_float_array(values):
    # Stored curves hold None where a figure is undefined (empty_queries drop); draw those as gaps.
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def _mean_std(rows):
    stacked = np.vstack(rows)
    mean = stacked.mean(axis=0)
    std = stacked.std(axis=0, ddof=STD_DDOF) if len(rows) > 1 else np.zeros_like(mean)
    return mean, std


def _curve_arrays(records, curve, keys):
    """Return one array per key for every record, or None with a reason when a record lacks one."""
    keys = tuple(dict.fromkeys(keys))
    arrays = {key: [] for key in keys}
    for record in records:
        stored = (record.get("curves") or {}).get(curve)
        if not isinstance(stored, dict) or any(not isinstance(stored.get(key), list) for key in keys):
            return None, f"seed {record['seed']} has no curves[{curve!r}] with {', '.join(keys)}"
        for key in keys:
            arrays[key].append(_as_float_array(stored[key]))
    lengths = {len(array) for values in arrays.values() for array in values}
    if len(lengths) != 1:
        return None, f"the seeds' curves[{curve!r}] have different lengths {sorted(lengths)}"
    return arrays, None


def _curve_series(records, curve, x_key, y_key, at_key, x_varies):
    """Average one stored curve over seeds, per method setting and code length."""
    groups = {}
    for record in records:
        groups.setdefault((_variant(record), int(record["n_bits"])), []).append(record)
    labels, _ = _variant_labels({variant for variant, _ in groups})

    series, left_out = [], []
    for (variant, n_bits), members in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        members = sorted(members, key=lambda record: record["seed"])
        arrays, reason = _curve_arrays(members, curve, (x_key, y_key, at_key))
        if arrays is None:
            left_out.append(f"{labels[variant]} at {n_bits} bits ({reason})")
            continue
        if not x_varies and any(not np.array_equal(arrays[x_key][0], other, equal_nan=True)
                                for other in arrays[x_key][1:]):
            left_out.append(f"{labels[variant]} at {n_bits} bits (the seeds use different {x_key} values)")
            continue
        x, x_std = _mean_std(arrays[x_key])
        y, y_std = _mean_std(arrays[y_key])
        series.append(Series(
            label=labels[variant], method=variant[0], n_bits=n_bits, x=x, y=y,
            x_std=x_std if x_varies else None, y_std=y_std, at=arrays[at_key][0], n_seeds=len(members),
        ))
    if left_out:
        # Records written before a curve existed lack it entirely; that is expected, not a fault.
        log = logger.warning if series else logger.info
        log("The %s plot leaves out %d of %d method settings and code lengths, e.g. %s",
            curve, len(left_out), len(groups), left_out[0])
    return series


# ---------------------------------------------------------------------------------------------
# Drawing


def _panels(count):
    columns = 1 if count == 1 else 2
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(_PANEL_SIZE[0] * columns, _PANEL_SIZE[1] * rows + 0.6), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for extra in axes[count:]:
        extra.set_visible(False)
    return figure, axes[:count]


def _style(series, style_index):
    colour, marker = method_style(series.method)
    return {"color": colour, "marker": marker, "linestyle": variant_linestyle(style_index)}


def _style_indices(series_list):
    labels = {}
    for series in series_list:
        labels.setdefault(series.method, [])
        if series.label not in labels[series.method]:
            labels[series.method].append(series.label)
    return {series.label: labels[series.method].index(series.label) for series in series_list}


def _draw_curve_panels(series_list, *, title, xlabel, ylabel, log_x=False, hide_empty=False):
    bits = sorted({series.n_bits for series in series_list})
    figure, axes = _panels(len(bits))
    styles = _style_indices(series_list)
    for n_bits, ax in zip(bits, axes):
        for series in (s for s in series_list if s.n_bits == n_bits):
            style = _style(series, styles[series.label])
            x, y, y_std = series.x, series.y, series.y_std
            if hide_empty:
                # A radius that retrieves nothing stores precision 0 and recall 0 (micro-average
                # convention); drawing it would add a false drop to (0, 0).
                shown = ~((x == 0) & (y == 0))
                x, y, y_std = x[shown], y[shown], y_std[shown]
            ax.plot(x, y, label=series.label, markevery=max(1, len(x) // 10),
                    markersize=5, linewidth=1.5, **style)
            # Precision and recall are fractions, so the band stops at 0 and 1.
            ax.fill_between(x, np.clip(y - y_std, 0, 1), np.clip(y + y_std, 0, 1),
                            color=style["color"], alpha=_BAND_ALPHA, linewidth=0)
        ax.set_title(f"{n_bits} bits")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log_x:
            ax.set_xscale("log")
        ax.grid(True, alpha=0.3)

    # One legend beside the panels: a legend inside each panel hides curves once many methods run.
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        figure.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize="small")
    figure.suptitle(_wrap(f"{title}\n{_CURVE_NOTE}"), fontsize="medium")
    return figure


def _empty_plot(name, title, xlabel, ylabel):
    figure = Figure(figsize=_PANEL_SIZE)
    return Plot(name, title, xlabel, ylabel, [], figure)


def plot_pr_radius(records, *, title):
    """Plot precision against recall within each Hamming radius, one panel per code length.

    Parameters
    ----------
    records : list of dict
        Run records of one comparable set.
    title : str
        Dataset and protocol, put above the panels.

    Returns
    -------
    Plot
        Named ``pr_radius``. Each series is one method setting at one code length: ``x`` the
        mean of ``curves["pr_radius"]["recall"]``, ``y`` of ``["precision"]`` (micro-averaged),
        ``at`` the radii. No series when no record has the curve. Radii that retrieve nothing
        (stored as precision 0 and recall 0) are kept in the series but not drawn.
    """
    xlabel = "recall within radius (fraction of relevant items)"
    ylabel = "precision within radius (fraction)"
    series = _curve_series(records, "pr_radius", "recall", "precision", "radius", x_varies=True)
    if not series:
        return _empty_plot("pr_radius", title, xlabel, ylabel)
    figure = _draw_curve_panels(series, title=f"{title}: precision-recall by Hamming radius",
                                xlabel=xlabel, ylabel=ylabel, hide_empty=True)
    return Plot("pr_radius", title, xlabel, ylabel, series, figure)


def plot_pr_rank(records, *, title):
    """Plot precision@N against recall@N over rank cut-offs N, one panel per code length.

    Returns
    -------
    Plot
        Named ``pr_rank``; ``x`` and ``y`` are the means of ``curves["pr_rank"]["recall"]`` and
        ``["precision"]``, ``at`` the cut-offs N. Records written before this curve existed
        give no series.
    """
    xlabel = "recall@N (fraction of relevant items)"
    ylabel = "precision@N (fraction)"
    series = _curve_series(records, "pr_rank", "recall", "precision", "n", x_varies=True)
    if not series:
        return _empty_plot("pr_rank", title, xlabel, ylabel)
    figure = _draw_curve_panels(series, title=f"{title}: precision-recall by rank",
                                xlabel=xlabel, ylabel=ylabel)
    return Plot("pr_rank", title, xlabel, ylabel, series, figure)


def plot_precision_at_n(records, *, title):
    """Plot precision@N against the cut-off N, one panel per code length.

    Returns
    -------
    Plot
        Named ``precision_at_n``; ``x`` is ``curves["precision_at_n"]["n"]`` (equal for every
        seed), ``y`` the mean of ``["precision"]``.
    """
    xlabel = "N, items retrieved (count)"
    ylabel = "precision@N (fraction)"
    series = _curve_series(records, "precision_at_n", "n", "precision", "n", x_varies=False)
    if not series:
        return _empty_plot("precision_at_n", title, xlabel, ylabel)
    figure = _draw_curve_panels(series, title=f"{title}: precision@N", xlabel=xlabel, ylabel=ylabel)
    return Plot("precision_at_n", title, xlabel, ylabel, series, figure)


# ---------------------------------------------------------------------------------------------
# Figures across code lengths, from the summary


def _summary_series(frame, x_column, y_column):
    """One series per method setting: summary rows sorted by code length."""
    variants = list(dict.fromkeys(zip(frame["method"], frame["backbone"], frame["params"])))
    labels, _ = _variant_labels(variants)
    series = []
    for variant in variants:
        rows = frame[(frame["method"] == variant[0]) & (frame["params"] == variant[2])
                     & frame["backbone"].map(lambda value, b=variant[1]: value == b)]
        rows = rows[rows[y_column].notna() & (rows[x_column].notna() if x_column != "n_bits" else True)]
        if rows.empty:
            continue
        rows = rows.sort_values("n_bits")
        x_std = None if x_column == "n_bits" else rows[f"{x_column}_std"].to_numpy(dtype=np.float64)
        series.append(Series(
            label=labels[variant], method=variant[0], n_bits=None,
            x=rows[x_column].to_numpy(dtype=np.float64), y=rows[y_column].to_numpy(dtype=np.float64),
            x_std=x_std, y_std=rows[f"{y_column}_std"].to_numpy(dtype=np.float64),
            at=rows["n_bits"].to_numpy(dtype=np.int64), n_seeds=int(rows["n_seeds"].min()),
        ))
    return series


def plot_map_vs_bits(frame, *, title):
    """Plot mAP against code length, one line per method setting, seeds as error bars.

    Parameters
    ----------
    frame : pandas.DataFrame
        Summary rows of one comparable set.
    title : str

    Returns
    -------
    Plot
        Named ``map_vs_bits``; ``x`` the code lengths, ``y`` and ``y_std`` the summary's ``map``
        and ``map_std``. No series without a ``map`` column.
    """
    xlabel = "code length (bits)"
    ylabel = "mAP (fraction)"
    if "map" not in frame.columns:
        return _empty_plot("map_vs_bits", title, xlabel, ylabel)
    series = _summary_series(frame, "n_bits", "map")
    if not series:
        return _empty_plot("map_vs_bits", title, xlabel, ylabel)

    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = figure.subplots()
    styles = _style_indices(series)
    for line in series:
        style = _style(line, styles[line.label])
        ax.errorbar(line.x, line.y, yerr=line.y_std, label=line.label, capsize=3, markersize=6, **style)
    ticks = sorted({int(bits) for line in series for bits in line.x})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(tick) for tick in ticks])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(_wrap(f"{title}: mAP against code length\n{_POINT_NOTE}"), fontsize="medium")
    return Plot("map_vs_bits", title, xlabel, ylabel, series, figure)


def pareto_front(points):
    """Return the indices of the points that no other point beats in both time and accuracy.

    A point ``(x, y)`` (time, accuracy) is on the front when no other point has ``x' <= x`` and
    ``y' >= y`` with one of them strict. Equal points are all on the front.

    Parameters
    ----------
    points : ndarray of shape (n, 2), float64

    Returns
    -------
    ndarray of shape (n_front,), int64
        Indices into ``points``, by ascending x.
    """
    points = np.asarray(points, dtype=np.float64)
    order = np.lexsort((-points[:, 1], points[:, 0]))
    front, best = [], -np.inf
    previous = None
    for index in order:
        x, y = points[index]
        if y > best or (previous is not None and (x, y) == previous):
            front.append(int(index))
            best = max(best, y)
            previous = (x, y)
    return np.array(front, dtype=np.int64)


def plot_map_vs_search_time(frame, *, title):
    """Plot mAP against mean search time per query and mark the Pareto front.

    Each point is one method setting at one code length: the summary's ``search_ms_per_query``
    and ``map``, with error bars of their standard deviations over seeds. The Pareto front (no
    other point is both faster and more accurate) is a dashed step line through circled points.

    Parameters
    ----------
    frame : pandas.DataFrame
        Summary rows of one comparable set.
    title : str

    Returns
    -------
    Plot
        Named ``map_vs_search_time``, with ``front`` and ``front_labels``. No series when the
        summary lacks ``map`` or ``search_ms_per_query``.
    """
    xlabel = "search time (ms per query, mean)"
    ylabel = "mAP (fraction)"
    if "map" not in frame.columns or "search_ms_per_query" not in frame.columns:
        return _empty_plot("map_vs_search_time", title, xlabel, ylabel)
    series = _summary_series(frame, "search_ms_per_query", "map")
    if not series:
        return _empty_plot("map_vs_search_time", title, xlabel, ylabel)

    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = figure.subplots()
    styles = _style_indices(series)
    for line in series:
        style = _style(line, styles[line.label])
        style["linestyle"] = "none"
        ax.errorbar(line.x, line.y, xerr=line.x_std, yerr=line.y_std, label=line.label, capsize=3,
                    markersize=6, **style)
        for x, y, bits in zip(line.x, line.y, line.at):
            ax.annotate(f"{bits}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize="x-small",
                        color=style["color"])

    points = np.array([(x, y) for line in series for x, y in zip(line.x, line.y)], dtype=np.float64)
    names = [f"{line.label}, {bits} bits" for line in series for bits in line.at]
    indices = pareto_front(points)
    front = points[indices]
    ax.step(front[:, 0], front[:, 1], where="post", color="black", linestyle="--", linewidth=1,
            label="Pareto front")
    ax.scatter(front[:, 0], front[:, 1], s=140, facecolors="none", edgecolors="black", linewidths=1)
    if (points[:, 0] > 0).all():
        ax.set_xscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(_wrap(f"{title}: mAP against search time (labels: bits)\n{_POINT_NOTE}"), fontsize="medium")
    return Plot("map_vs_search_time", title, xlabel, ylabel, series, figure,
                front=front, front_labels=[names[index] for index in indices])


#: The plots of a report, in page order: (function, input), where input is "records" or "summary".
PLOTS = (
    (plot_pr_radius, "records"),
    (plot_pr_rank, "records"),
    (plot_precision_at_n, "records"),
    (plot_map_vs_bits, "summary"),
    (plot_map_vs_search_time, "summary"),
)
