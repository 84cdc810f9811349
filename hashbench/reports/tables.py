"""Tables of one comparable set of runs: the figures people compare, as Markdown, CSV and JSON.

A set is one dataset, protocol and set of evaluation conventions
(:func:`hashbench.report.split_comparable`). Its table has one row per method, code length,
backbone and parameter setting. The columns are the mean and sample standard deviation over seeds
of mAP, mAP@k, precision@N, precision within Hamming radius 2, NDCG@k, encode and search latency,
index size and fit time. A figure that no run of the set measured is left out.
"""

import json
import math
import re
from dataclasses import dataclass

import pandas as pd

from hashbench.report import (
    STD_DDOF,
    check_comparable,
    conventions_label,
    params_label,
)

# Metrics in table order: (pattern of the metric name, label template). A pattern's group is
# the cut-off k or N, and the columns of one pattern are sorted by it.
_METRIC_PATTERNS = (
    (re.compile(r"map"), "mAP"),
    (re.compile(r"map@(\d+)"), "mAP@{}"),
    (re.compile(r"precision@(\d+)"), "P@{}"),
    (re.compile(r"precision@radius2"), "P(r≤2)"),
    (re.compile(r"ndcg@(\d+)"), "NDCG@{}"),
)

# Timings in table order: name, label and unit.
_TIMINGS = (
    ("encode_ms_per_item", "encode (ms/item)", "ms/item"),
    ("encode_pixels_ms_per_item", "encode from pixels (ms/item)", "ms/item"),
    ("search_ms_per_query", "search (ms/query)", "ms/query"),
    ("search_p50_ms", "search p50 (ms/query)", "ms/query"),
    ("search_p95_ms", "search p95 (ms/query)", "ms/query"),
    ("index_bytes", "index (bytes)", "bytes"),
    ("fit_s", "fit (s)", "s"),
)

STD_NOTE = (
    "Each cell is the mean ± sample standard deviation (ddof=1) over the seeds of its row; "
    "the standard deviation of a single seed is 0. A dash marks a figure these runs did not measure."
)

_MISSING_CELL = "–"


def _significant_decimals(value, digits=4):
    if not math.isfinite(value) or value == 0:
        return digits - 1
    return int(min(max(digits - 1 - math.floor(math.log10(abs(value))), 0), 9))


@dataclass(frozen=True)
class Quantity:
    """A column of a set table.

    Attributes
    ----------
    name : str
        Column of the summary with the mean, for example ``"map@1000"``; ``name + "_std"`` has
        the standard deviation.
    label : str
        Header for people, for example ``"mAP@1000"`` or ``"search (ms/query)"``.
    kind : {"metric", "timing"}
    unit : str or None
        Unit of a timing or size; None for metrics, which are fractions between 0 and 1.
    """

    name: str
    label: str
    kind: str
    unit: str | None

    def format_cell(self, mean, std):
        """Format ``mean ± std``: metrics with 4 decimals, bytes as integers, timings with 4 significant digits."""
        if mean is None or math.isnan(mean):
            return _MISSING_CELL
        if self.kind == "metric":
            return f"{mean:.4f} ± {std:.4f}"
        if self.unit == "bytes":
            return f"{mean:,.0f} ± {std:,.0f}"
        decimals = _significant_decimals(mean)
        return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


@dataclass
class SetTable:
    """The table of one comparable set of runs.

    Attributes
    ----------
    dataset, protocol : str
    conventions : str
        Canonical JSON of the evaluation conventions shared by every row.
    quantities : list of Quantity
        The figure columns, in table order.
    rows : list of dict
        One dict per summary row with ``method``, ``n_bits``, ``backbone``, ``params``
        (canonical JSON), ``n_seeds``, ``seeds`` (tuple of int), ``split_hash`` and, for every
        quantity, ``name`` (mean, float, NaN when not measured) and ``name + "_std"``.
    """

    dataset: str
    protocol: str
    conventions: str
    quantities: list
    rows: list

    @property
    def conventions_label(self):
        """One-line description of the evaluation conventions."""
        return conventions_label(self.conventions)

    @property
    def title(self):
        """``"dataset / protocol"``."""
        return f"{self.dataset} / {self.protocol}"


def _quantities(frame):
    measured = [
        column for column in frame.columns
        if f"{column}_std" in frame.columns and frame[column].notna().any()
    ]
    quantities = []
    for pattern, template in _METRIC_PATTERNS:
        matches = [(pattern.fullmatch(name), name) for name in measured]
        matches = sorted(
            ((int(match.group(1)) if match.groups() else 0, name) for match, name in matches if match),
        )
        for cutoff, name in matches:
            quantities.append(Quantity(name, template.format(cutoff), "metric", None))
    for name, label, unit in _TIMINGS:
        if name in measured:
            quantities.append(Quantity(name, label, "timing", unit))
    return quantities


def build_table(frame):
    """Build the table of one comparable set of runs.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of :func:`hashbench.report.summarize_runs` that share dataset, protocol and
        evaluation conventions, for example one part of
        :func:`hashbench.report.split_comparable`.

    Returns
    -------
    SetTable
        Rows in the frame's order. A figure no row measured is left out.

    Raises
    ------
    ValueError
        If the frame is empty, or its rows mix datasets, protocols or evaluation conventions:
        such figures are not comparable and must not share a table.
    """
    check_comparable(frame)
    if frame.empty:
        raise ValueError("the summary has no rows; there is nothing to tabulate.")
    quantities = _quantities(frame)
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {name: record[name] for name in
               ("method", "backbone", "params", "split_hash", "conventions")}
        row["n_bits"] = int(record["n_bits"])
        row["n_seeds"] = int(record["n_seeds"])
        row["seeds"] = tuple(int(seed) for seed in record["seeds"])
        for quantity in quantities:
            row[quantity.name] = float(record[quantity.name])
            row[f"{quantity.name}_std"] = float(record[f"{quantity.name}_std"])
        rows.append(row)
    first = frame.iloc[0]
    return SetTable(first["dataset"], first["protocol"], first["conventions"], quantities, rows)


# ---------------------------------------------------------------------------------------------
# Cells and formats


_KEY_HEADERS = ("method", "bits", "backbone", "params", "seeds")


def table_cells(table):
    """Format a set table as headers and rows of str.

    Parameters
    ----------
    table : SetTable

    Returns
    -------
    headers : list of str
        ``method``, ``bits``, ``backbone``, ``params`` (short hash, see
        :func:`hashbench.report.params_label`), ``seeds`` (count), then each quantity label.
    rows : list of list of str
    """
    headers = list(_KEY_HEADERS) + [quantity.label for quantity in table.quantities]
    rows = []
    for row in table.rows:
        cells = [row["method"], str(row["n_bits"]), row["backbone"] or "none",
                 params_label(row["params"]), str(row["n_seeds"])]
        cells += [quantity.format_cell(row[quantity.name], row[f"{quantity.name}_std"])
                  for quantity in table.quantities]
        rows.append(cells)
    return headers, rows


def parameter_sets(table):
    """Return ``(label, method, params_json)`` for every parameter set in the table, sorted."""
    return sorted({(params_label(row["params"]), row["method"], row["params"]) for row in table.rows},
                  key=lambda entry: (entry[1], entry[0]))


def split_hashes(table):
    """Return the distinct split hashes of the table's rows, in row order."""
    return list(dict.fromkeys(str(row["split_hash"]) for row in table.rows))


def to_markdown(table):
    """Write a set table as Markdown: a heading, the conventions, the table and its parameter sets.

    Returns
    -------
    str
    """
    headers, rows = table_cells(table)

    def line(cells):
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    separators = ["---" if header in ("method", "backbone", "params") else "---:" for header in headers]
    lines = [
        f"# {table.title}",
        "",
        f"Evaluation conventions: {table.conventions_label}.",
        "",
        f"Split hash: {', '.join(split_hashes(table))}.",
        "",
        STD_NOTE,
        "",
        line(headers),
        "|" + "|".join(separators) + "|",
    ]
    lines += [line(row) for row in rows]
    lines += ["", "Parameters:", ""]
    lines += [f"- `{label}` ({method}): `{params}`" for label, method, params in parameter_sets(table)]
    return "\n".join(lines) + "\n"


def _flat_rows(table):
    rows = []
    for row in table.rows:
        flat = {
            "dataset": table.dataset,
            "protocol": table.protocol,
            "method": row["method"],
            "bits": row["n_bits"],
            "backbone": row["backbone"],
            "params": row["params"],
            "n_seeds": row["n_seeds"],
            "seeds": list(row["seeds"]),
            "split_hash": row["split_hash"],
        }
        for quantity in table.quantities:
            mean, std = row[quantity.name], row[f"{quantity.name}_std"]
            flat[quantity.name] = None if math.isnan(mean) else mean
            flat[f"{quantity.name}_std"] = None if math.isnan(std) else std
        rows.append(flat)
    return rows


def to_csv(table):
    """Write a set table as CSV with full precision.

    Columns: ``dataset``, ``protocol``, ``conventions`` (canonical JSON, the same in every
    row), ``method``, ``bits``, ``backbone``, ``params`` (canonical JSON), ``n_seeds``,
    ``seeds`` (space-separated), ``split_hash``, then each quantity's mean and ``_std``. A figure
    a row did not measure is empty.

    Returns
    -------
    str
    """
    rows = _flat_rows(table)
    for row in rows:
        row["seeds"] = " ".join(str(seed) for seed in row["seeds"])
        row["conventions"] = table.conventions
    columns = ["dataset", "protocol", "conventions", "method", "bits", "backbone", "params", "n_seeds",
               "seeds", "split_hash"]
    columns += [name for quantity in table.quantities for name in (quantity.name, f"{quantity.name}_std")]
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, lineterminator="\n")


def to_json(table):
    """Write a set table as JSON.

    The object has ``dataset``, ``protocol``, ``conventions`` (the recorded dict),
    ``conventions_label``, ``std`` (how the standard deviation is computed) and ``columns`` (name,
    label, kind and unit of each quantity). Its ``rows`` are objects with the key fields,
    ``params`` as an object and each quantity's mean and ``_std`` (null when not measured).

    Returns
    -------
    str
    """
    rows = _flat_rows(table)
    for row in rows:
        row["params"] = json.loads(row["params"])
        del row["dataset"], row["protocol"]
    document = {
        "dataset": table.dataset,
        "protocol": table.protocol,
        "conventions": json.loads(table.conventions),
        "conventions_label": table.conventions_label,
        "std": f"sample standard deviation over seeds (ddof={STD_DDOF}); 0 for a single seed",
        "columns": [
            {"name": quantity.name, "label": quantity.label, "kind": quantity.kind, "unit": quantity.unit}
            for quantity in table.quantities
        ],
        "rows": rows,
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

