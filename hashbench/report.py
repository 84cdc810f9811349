"""Summaries of stored runs: mean and standard deviation over seeds, as a table or a file.

:func:`select_runs` keeps the run records that match the method, dataset, code length and date
filters. :func:`summarize_runs` groups them by method, dataset, protocol, code length, backbone
and parameters, and averages every number in ``metrics`` and ``timings`` over the seeds of a
group. :func:`split_comparable` cuts a summary into the sets of rows that may share a table (one
dataset, protocol and set of evaluation conventions). :func:`format_report` writes the summary as
Markdown, CSV or JSON, and :func:`table_cells` gives the formatted cells that a terminal table
needs. The folder report with plots and an HTML page is in :mod:`hashbench.reports`.
"""

import datetime as dt
import fnmatch
import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from hashbench.store import KEY_FIELDS, canonical_json, scan_runs

logger = logging.getLogger(__name__)

#: Columns of the summary before the metric and timing columns, in order.
GROUP_COLUMNS = ("method", "dataset", "protocol", "n_bits", "backbone", "params")
SUMMARY_COLUMNS = GROUP_COLUMNS + ("n_seeds", "seeds", "split_hash", "conventions")

#: Formats accepted by :func:`format_report`.
REPORT_FORMATS = ("markdown", "csv", "json")

#: Delta degrees of freedom of the standard deviation over seeds (1: sample standard deviation).
STD_DDOF = 1

# Columns the Markdown and terminal tables show before the metrics, with their headers.
_TABLE_KEY_COLUMNS = (
    ("method", "method"),
    ("dataset", "dataset"),
    ("protocol", "protocol"),
    ("n_bits", "bits"),
    ("backbone", "backbone"),
    ("params", "params"),
    ("n_seeds", "n_seeds"),
)

# A timing name ends in its unit, optionally "per" something: fit_s, encode_ms_per_item.
_TIMING_NAME = re.compile(r"(?P<base>.+?)_(?P<unit>s|ms|us|ns)(?:_per_(?P<per>[A-Za-z0-9_]+))?")

_MISSING_CELL = "–"


# ---------------------------------------------------------------------------------------------
# Column descriptions


def _natural_key(name):
    # Numbers inside names sort as numbers: map@100 before map@1000.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _timing_label(name):
    match = _TIMING_NAME.fullmatch(name)
    if match is None:
        return name, None
    unit = match["unit"] if match["per"] is None else f"{match['unit']}/{match['per']}"
    return f"{match['base']} ({unit})", unit


def _significant_decimals(value, digits=4):
    # Decimals that show ``digits`` significant digits of ``value``, without scientific notation.
    if not math.isfinite(value) or value == 0:
        return digits - 1
    return int(min(max(digits - 1 - math.floor(math.log10(abs(value))), 0), 9))


@dataclass(frozen=True)
class MetricColumn:
    """A measured quantity of the summary: its mean and standard deviation columns.

    Attributes
    ----------
    name : str
        Column with the mean over seeds, for example ``"map"`` or ``"fit_s"``.
    std_name : str
        Column with the standard deviation over seeds, ``name + "_std"``.
    kind : {"metric", "timing"}
        Whether the values came from the record's ``metrics`` or ``timings``.
    label : str
        Header for tables: the metric name, or the timing name with its unit, for example
        ``"fit (s)"`` or ``"encode (ms/item)"``.
    unit : str or None
        Unit of a timing read from its name, None for metrics and unrecognised names.
    """

    name: str
    std_name: str
    kind: str
    label: str
    unit: str | None

    def format_cell(self, mean, std):
        """Format ``mean ± std`` for a table cell.

        Metrics show 4 decimals. Timings stay in their unit and show 4 significant digits of
        the mean, with the standard deviation at the same number of decimals. A missing mean
        (NaN, the group has no such value) is shown as ``–``.

        Parameters
        ----------
        mean, std : float

        Returns
        -------
        str
        """
        if mean is None or (isinstance(mean, float) and math.isnan(mean)):
            return _MISSING_CELL
        decimals = 4 if self.kind == "metric" else _significant_decimals(mean)
        return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def metric_columns(frame):
    """Describe the metric and timing columns of a summary, in column order.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`summarize_runs`. Which columns are metrics and which are timings is
        read from ``frame.attrs``. When the attributes are lost (for example a frame read back
        from CSV), every column ``X`` with a partner ``X_std`` is a quantity, and names that end
        in a time unit (``_s``, ``_ms``, ``_ms_per_item``, ...) are timings.

    Returns
    -------
    list of MetricColumn
    """
    _check_frame(frame)
    metric_names = frame.attrs.get("metric_names")
    timing_names = frame.attrs.get("timing_names")
    if metric_names is None or timing_names is None:
        names = [
            column for column in frame.columns
            if column not in SUMMARY_COLUMNS and f"{column}_std" in frame.columns
        ]
        timing_names = [name for name in names if _TIMING_NAME.fullmatch(name)]
        metric_names = [name for name in names if name not in timing_names]

    columns = []
    for name in metric_names:
        if name in frame.columns:
            columns.append(MetricColumn(name, f"{name}_std", "metric", name, None))
    for name in timing_names:
        if name in frame.columns:
            label, unit = _timing_label(name)
            columns.append(MetricColumn(name, f"{name}_std", "timing", label, unit))
    return columns


# ---------------------------------------------------------------------------------------------
# Summary


def _as_patterns(values, name):
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    values = list(values)
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"{name} filter values must be str, got {value!r}.")
    return values


def _as_bits(values):
    if values is None:
        return None
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        values = [values]
    values = list(values)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"n_bits filter values must be integers, got {value!r}.")
    return {int(value) for value in values}


def _matches(value, patterns):
    return patterns is None or any(fnmatch.fnmatchcase(str(value), pattern) for pattern in patterns)


def _record_label(record):
    return record.get("run_path") or ", ".join(f"{name}={record.get(name)!r}" for name in KEY_FIELDS)


def _check_record(record):
    if not isinstance(record, dict):
        raise TypeError(f"each run record must be a dict, got {type(record).__name__}.")
    missing = [name for name in KEY_FIELDS if name not in record]
    if missing:
        raise ValueError(
            f"the run record {_record_label(record)} lacks {', '.join(missing)}; "
            "records written by RunStore.write carry every key field."
        )


def _numbers(section, record, section_name):
    """Return the numeric entries of ``record[section_name]``, skipping other values."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError(
            f"record[{section_name!r}] of the run {_record_label(record)} must be a dict of name "
            f"to number, got {type(section).__name__}."
        )
    numbers = {}
    for name, value in section.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[name] = float(value)
        else:
            logger.debug("Not averaging %s[%r] of %s: %r is not a number",
                         section_name, name, _record_label(record), value)
    return numbers


def _group_label(group):
    method, dataset, protocol, n_bits, backbone, params = group
    return (f"method={method}, dataset={dataset}, protocol={protocol}, bits={n_bits}, "
            f"backbone={backbone or 'none'}, params={params}")


def _check_same(records, group, field_name, read):
    """Raise ValueError when ``read(record)`` differs between the records of one group."""
    first = read(records[0])
    for record in records[1:]:
        value = read(record)
        if value != first:
            raise ValueError(
                f"the runs of {_group_label(group)} differ in {field_name}: seed {records[0]['seed']} "
                f"has {first} but seed {record['seed']} has {value}, so they cannot be averaged. "
                "Rerun the outdated runs with --force, or remove them from the runs folder."
            )
    return first


def _summarize_group(group, records):
    seeds = [record["seed"] for record in records]
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        paths = [_record_label(record) for record in records if record["seed"] in repeated]
        raise ValueError(
            f"the runs of {_group_label(group)} contain seed {repeated[0]} more than once "
            f"({'; '.join(paths)}); pass the records of one runs folder."
        )

    split_hash = _check_same(
        records, group, "split hash",
        lambda record: (record.get("split") or {}).get("split_hash"),
    )
    conventions = _check_same(
        records, group, "metric conventions",
        lambda record: canonical_json(record.get("conventions")),
    )

    row = {
        "method": group[0], "dataset": group[1], "protocol": group[2], "n_bits": group[3],
        "backbone": group[4], "params": group[5],
        "n_seeds": len(records), "seeds": tuple(sorted(seeds)),
        "split_hash": split_hash, "conventions": conventions,
    }
    names = {}
    for section_name in ("metrics", "timings"):
        values = [_numbers(record.get(section_name), record, section_name) for record in records]
        names[section_name] = set().union(*values)
        for name in names[section_name]:
            lacking = [record["seed"] for record, numbers in zip(records, values) if name not in numbers]
            if lacking:
                raise ValueError(
                    f"the runs of {_group_label(group)} do not all have {section_name}[{name!r}]: "
                    f"seeds {lacking} lack it. Rerun them with --force so every seed is measured alike."
                )
            series = np.array([numbers[name] for numbers in values], dtype=np.float64)
            row[name] = float(series.mean())
            row[f"{name}_std"] = float(series.std(ddof=STD_DDOF)) if len(series) > 1 else 0.0
    return row, names["metrics"], names["timings"]


def _load_records(records):
    if isinstance(records, (str, os.PathLike)):
        scan = scan_runs(records)
        if not scan.records:
            skipped = f" ({len(scan.problems)} unreadable records skipped)" if scan.problems else ""
            raise ValueError(f"no runs found under {records}{skipped}; run `hashbench run` first.")
        return scan.records
    records = list(records)
    if not records:
        raise ValueError("no runs found: the list of run records is empty; run `hashbench run` first.")
    return records


def parse_since(value):
    """Turn a ``since`` filter into an aware UTC datetime.

    Parameters
    ----------
    value : str, datetime.date or datetime.datetime
        An ISO 8601 date (``"2026-12-01"``, midnight UTC) or date and time
        (``"2026-12-01T14:30"``, ``"2026-12-01T14:30:00+01:00"``). A time without an offset is UTC.

    Returns
    -------
    datetime.datetime
        The moment, with ``tzinfo`` set.

    Raises
    ------
    ValueError
        If a str is not an ISO 8601 date or date and time.
    TypeError
        If ``value`` is neither a str nor a date.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"since must be an ISO 8601 date or date and time, for example 2026-12-01 or "
                f"2026-12-01T14:30:00+00:00; got {value!r}."
            ) from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    elif not isinstance(value, dt.datetime):
        raise TypeError(f"since must be an ISO date str, a date or a datetime, got {type(value).__name__}.")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def _created(record):
    """Return the record's ``created`` time as an aware datetime, or None when missing or invalid."""
    created = record.get("created")
    if not isinstance(created, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(created)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def select_runs(records, *, method=None, dataset=None, n_bits=None, since=None):
    """Keep the run records that match every filter.

    Parameters
    ----------
    records : list of dict or path-like
        Run records (from :func:`hashbench.store.iter_runs`), or a runs folder to read them from.
    method, dataset : str or list of str, optional
        Keep only runs whose method or dataset matches one of these names. Shell-style wildcards
        are accepted (``"dsh*"``). None keeps all.
    n_bits : int or list of int, optional
        Keep only runs with one of these code lengths. None keeps all.
    since : str, datetime.date or datetime.datetime, optional
        Keep only runs whose ``created`` time is at or after this moment (see
        :func:`parse_since`). A record without a readable ``created`` time is left out and
        counted in a warning. None keeps all.

    Returns
    -------
    list of dict
        The matching records, in their input order.

    Raises
    ------
    ValueError
        If there are no records, a record lacks a key field, ``since`` is not an ISO date, or
        the filters match no run; the message lists the values the runs have.
    """
    records = _load_records(records)
    for record in records:
        _check_record(record)

    methods = _as_patterns(method, "method")
    datasets = _as_patterns(dataset, "dataset")
    bits = _as_bits(n_bits)
    start = None if since is None else parse_since(since)
    selected = [
        record for record in records
        if _matches(record["method"], methods) and _matches(record["dataset"], datasets)
        and (bits is None or record["n_bits"] in bits)
    ]
    if start is not None:
        undated = [record for record in selected if _created(record) is None]
        if undated:
            logger.warning("Leaving out %d runs without a readable 'created' time, which --since cannot compare: %s",
                           len(undated), _record_label(undated[0]))
        selected = [record for record in selected
                    if _created(record) is not None and _created(record) >= start]
    if not selected:
        created = [moment for moment in map(_created, records) if moment is not None]
        newest = max(created).isoformat() if created else "unknown"
        raise ValueError(
            f"no runs match method={methods}, dataset={datasets}, n_bits={sorted(bits) if bits else None}"
            f"{'' if start is None else f', since={start.isoformat()}'}. "
            f"The runs have methods {sorted({r['method'] for r in records})}, datasets "
            f"{sorted({r['dataset'] for r in records})} and bits {sorted({r['n_bits'] for r in records})}"
            f"{'' if start is None else f'; the newest was created {newest}'}."
        )
    return selected


def summarize_runs(records, *, method=None, dataset=None, n_bits=None, since=None):
    """Average the metrics and timings of runs over seeds.

    Runs are grouped by method, dataset, protocol, code length, backbone and parameters, so two
    parameter settings of one method never share a row. Each number in a record's ``metrics``
    and ``timings`` gives a column with the mean over the seeds of the group. A second column,
    ``<name>_std``, contains the sample standard deviation (``ddof=1``, see ``STD_DDOF``). It is 0.0
    for a group of one seed. Values that are not numbers (lists, dicts, str, bool) are skipped.

    Parameters
    ----------
    records : list of dict or path-like
        Run records (from :func:`hashbench.store.iter_runs`), or a runs folder to read them from.
    method, dataset, n_bits, since : optional
        Filters, as :func:`select_runs` applies them. None keeps all.

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by dataset, protocol, ``n_bits`` (as a number), method,
        backbone and parameters. Columns: ``method``, ``dataset``, ``protocol``, ``n_bits``,
        ``backbone`` (None without one), ``params`` (canonical JSON), ``n_seeds``, ``seeds``
        (tuple of int), ``split_hash``, ``conventions`` (canonical JSON), then for each metric and
        then each timing, in natural name order, its mean and ``_std`` columns. A metric that
        other groups lack is NaN. ``frame.attrs`` contains ``metric_names`` and ``timing_names``.

    Raises
    ------
    ValueError
        If there are no records, the filters match none, or the runs of one group differ in
        split hash or metric conventions, repeat a seed, or lack a metric that other seeds have.
    """
    selected = select_runs(records, method=method, dataset=dataset, n_bits=n_bits, since=since)

    groups = {}
    for record in selected:
        group = (record["method"], record["dataset"], record["protocol"], int(record["n_bits"]),
                 record["backbone"], canonical_json(record["params"]))
        groups.setdefault(group, []).append(record)

    rows, metric_names, timing_names = [], set(), set()
    for group, members in groups.items():
        row, metrics, timings = _summarize_group(group, members)
        rows.append(row)
        metric_names |= metrics
        timing_names |= timings

    both = metric_names & timing_names
    if both:
        raise ValueError(
            f"{sorted(both)} appear both in metrics and in timings of the runs; "
            "give timings names that end in their unit (fit_s, encode_ms_per_item)."
        )
    metric_names = sorted(metric_names, key=_natural_key)
    timing_names = sorted(timing_names, key=_natural_key)
    quantity_columns = [
        column for name in metric_names + timing_names for column in (name, f"{name}_std")
    ]
    clashes = sorted(set(quantity_columns) & set(SUMMARY_COLUMNS))
    if len(set(quantity_columns)) != len(quantity_columns) or clashes:
        raise ValueError(
            f"the metric and timing names {metric_names + timing_names} give clashing columns "
            f"{clashes or 'NAME and NAME_std'}; rename the metric or timing."
        )

    rows.sort(key=lambda row: (row["dataset"], row["protocol"], row["n_bits"], row["method"],
                               row["backbone"] or "", row["params"]))
    # Object columns keep None as None (pandas would turn a missing backbone into NaN).
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS) + quantity_columns, dtype=object)
    frame = frame.astype({"n_bits": "int64", "n_seeds": "int64"})
    frame = frame.astype({name: "float64" for name in quantity_columns})
    frame.attrs["metric_names"] = metric_names
    frame.attrs["timing_names"] = timing_names
    logger.info("Summarised %d runs into %d rows", len(selected), len(frame))
    return frame


# ---------------------------------------------------------------------------------------------
# Output


def _check_frame(frame):
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas.DataFrame from summarize_runs, got {type(frame).__name__}.")
    missing = [column for column in SUMMARY_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"frame lacks the columns {', '.join(missing)}; pass the output of summarize_runs."
        )


#: Columns whose values must be equal for rows to share a table: numbers under different
#: protocols or evaluation conventions are not comparable.
COMPARABLE_COLUMNS = ("dataset", "protocol", "conventions")

# Conventions listed first in labels; other recorded conventions follow in name order.
_LEADING_CONVENTIONS = ("ties", "empty_queries", "topk_normaliser")


def conventions_label(conventions_json):
    """Describe recorded evaluation conventions in one line for table headers.

    Parameters
    ----------
    conventions_json : str
        Canonical JSON of a record's ``conventions`` dict (a summary's ``conventions`` column).

    Returns
    -------
    str
        For example ``"preset hashbench: ties tie-aware, empty_queries zero, ..."``. Records
        written before presets existed read ``"no preset recorded: ..."``.
    """
    named = json.loads(conventions_json) or {}
    if not isinstance(named, dict):
        return f"unrecognised conventions {conventions_json}"
    preset = named.get("preset")
    order = [key for key in _LEADING_CONVENTIONS if key in named]
    order += sorted(key for key in named if key not in order and key != "preset")
    details = ", ".join(f"{key} {named[key]}" for key in order)
    head = f"preset {preset}" if preset else "no preset recorded"
    return f"{head}: {details}" if details else head


def conventions_slug(conventions_json):
    """Return a short folder name for a set of conventions: preset name and an 8-digit hash.

    The hash is over the canonical JSON, so two sets that share a preset name but differ in a
    convention get different names. Records without a preset use ``no-preset``.
    """
    named = json.loads(conventions_json) or {}
    preset = named.get("preset") if isinstance(named, dict) else None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", str(preset)).strip("-.") if preset else ""
    return f"{safe or 'no-preset'}-{params_label(conventions_json)}"


def split_comparable(frame):
    """Cut a summary into the sets of rows that may share a table.

    Rows are comparable when they have the same dataset, protocol and evaluation conventions.
    Reports give each set its own table, and never average or tabulate across sets.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`summarize_runs`.

    Returns
    -------
    list of (tuple of str, pandas.DataFrame)
        ``((dataset, protocol, conventions_json), rows)`` in the frame's row order. Each part
        keeps ``frame.attrs``.
    """
    _check_frame(frame)
    parts = []
    for key, rows in frame.groupby(list(COMPARABLE_COLUMNS), sort=False):
        rows = rows.copy()
        rows.attrs = dict(frame.attrs)
        parts.append((tuple(key), rows))
    return parts


def check_comparable(frame):
    """Raise ValueError when a summary mixes datasets, protocols or evaluation conventions.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`summarize_runs`, or one part of :func:`split_comparable`.

    Raises
    ------
    ValueError
        Naming the column that differs and two of its values, because numbers under different
        protocols or conventions are not comparable and must not share one table.
    """
    _check_frame(frame)
    for column in COMPARABLE_COLUMNS:
        values = list(dict.fromkeys(frame[column]))
        if len(values) > 1:
            shown = [conventions_label(value) for value in values[:2]] if column == "conventions" else values[:2]
            raise ValueError(
                f"the rows mix {len(values)} values of {column} ({shown[0]!r} and {shown[1]!r}); "
                "figures from different datasets, protocols or evaluation conventions are not "
                "comparable, so they do not share a table. Split the summary with "
                "split_comparable() and make one table per part."
            )


class ReportTable(NamedTuple):
    """Formatted cells of a summary, for Markdown or a terminal table.

    Attributes
    ----------
    headers : list of str
    justify : list of {"left", "right"}
        Alignment of each column; numbers are right-aligned.
    rows : list of list of str
    """

    headers: list
    justify: list
    rows: list


def table_cells(frame):
    """Format a summary as table cells: key columns, then ``mean ± std`` per metric and timing.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`summarize_runs`.

    Returns
    -------
    ReportTable
        Headers, alignments and rows of str. The code length column is headed ``bits``; see
        :meth:`MetricColumn.format_cell` for the number formats.
    """
    _check_frame(frame)
    quantities = metric_columns(frame)
    headers = [header for _, header in _TABLE_KEY_COLUMNS] + [column.label for column in quantities]
    justify = ["right" if column in ("n_bits", "n_seeds") else "left" for column, _ in _TABLE_KEY_COLUMNS]
    justify += ["right"] * len(quantities)

    rows = []
    for record in frame.to_dict(orient="records"):
        cells = [_key_cell(column, record[column]) for column, _ in _TABLE_KEY_COLUMNS]
        cells += [column.format_cell(record[column.name], record[column.std_name]) for column in quantities]
        rows.append(cells)
    return ReportTable(headers=headers, justify=justify, rows=rows)


def params_label(params_json):
    """Return the short label of a parameter set: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(params_json.encode("utf-8")).hexdigest()[:8]


def _key_cell(column, value):
    if column == "backbone" and value is None:
        return "none"
    if column == "params":
        return params_label(value)
    return str(value)


def _format_markdown(frame):
    parts = split_comparable(frame)
    if len(parts) == 1:
        return _markdown_table(frame)
    # Rows under different datasets, protocols or conventions are not comparable: one table each.
    sections = []
    for (dataset, protocol, conventions), rows in parts:
        sections.append(
            f"## {dataset} / {protocol}\n\nEvaluation conventions: {conventions_label(conventions)}\n\n"
            + _markdown_table(rows)
        )
    note = (f"The runs form {len(parts)} sets of dataset, protocol and evaluation conventions. "
            "Figures from different sets are not comparable, so each set has its own table.\n\n")
    return note + "\n".join(sections)


def _markdown_table(frame):
    table = table_cells(frame)

    def line(cells):
        # A pipe inside a cell (for example in params) would end the cell.
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    separators = ["---:" if side == "right" else "---" for side in table.justify]
    lines = [line(table.headers), "|" + "|".join(separators) + "|"]
    lines += [line(row) for row in table.rows]

    # The table names each parameter set by a short hash; list the sets in full below it.
    lines += ["", "Parameters:", ""]
    for method, params_json in sorted(set(zip(frame["method"], frame["params"]))):
        lines.append(f"- `{params_label(params_json)}` ({method}): `{params_json}`")
    return "\n".join(lines) + "\n"


def _format_csv(frame):
    output = frame.copy()
    output["seeds"] = [" ".join(str(seed) for seed in seeds) for seeds in output["seeds"]]
    output = output.rename(columns={"n_bits": "bits"})
    return output.to_csv(index=False, lineterminator="\n")


def _json_number(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _format_json(frame):
    quantity_columns = [column for column in frame.columns if column not in SUMMARY_COLUMNS]
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {
            "method": record["method"],
            "dataset": record["dataset"],
            "protocol": record["protocol"],
            "bits": int(record["n_bits"]),
            "backbone": record["backbone"],
            "params": json.loads(record["params"]),
            "n_seeds": int(record["n_seeds"]),
            "seeds": [int(seed) for seed in record["seeds"]],
            "split_hash": record["split_hash"],
            "conventions": json.loads(record["conventions"]),
        }
        row.update({column: _json_number(float(record[column])) for column in quantity_columns})
        rows.append(row)
    return json.dumps(rows, indent=2, allow_nan=False) + "\n"


_FORMATTERS = {"markdown": _format_markdown, "csv": _format_csv, "json": _format_json}


def format_report(frame, fmt):
    """Write a summary as Markdown, CSV or JSON text.

    Every format renames ``n_bits`` to ``bits``.

    - ``markdown``: a pipe table with the key columns and ``mean ± std`` per metric (4 decimals)
      and per timing (in its unit, with a header such as ``fit (s)``), as :func:`table_cells`
      formats them. A summary with more than one dataset, protocol or set of evaluation
      conventions (see :func:`split_comparable`) gets one headed table per set.
    - ``csv``: every summary column with full precision; ``seeds`` is space-separated,
      ``params`` and ``conventions`` are canonical JSON, and a missing metric is empty.
    - ``json``: a list of row objects with ``method``, ``dataset``, ``protocol``, ``bits``,
      ``backbone``, ``params`` (object), ``n_seeds``, ``seeds`` (list), ``split_hash``,
      ``conventions`` (object) and each metric and timing mean and ``_std``; a missing metric is
      null.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`summarize_runs`.
    fmt : {"markdown", "csv", "json"}
        Output format.

    Returns
    -------
    str
        The report, ending in a newline.

    Raises
    ------
    ValueError
        If ``fmt`` is not one of the accepted formats.
    """
    if fmt not in _FORMATTERS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(REPORT_FORMATS)}.")
    _check_frame(frame)
    return _FORMATTERS[fmt](frame)
