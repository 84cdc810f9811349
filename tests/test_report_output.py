"""Tests of report folders: tables, plots, the HTML page, filters and refusals.

The runs are synthetic records written with RunStore (no method is trained), except one test
that reads a few of the published MIRFlickr-25K run records, which predate named presets.
"""

import base64
import io
import json
import math
import re
import shutil
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.image import imread
from typer.testing import CliRunner

from hashbench.cli import app
from hashbench.report import check_comparable, format_report, select_runs, split_comparable, summarize_runs
from hashbench.reports import is_folder_output, write_report_folder
from hashbench.reports.plots import pareto_front, plot_map_vs_bits, plot_pr_radius
from hashbench.reports.styles import KNOWN_METHODS, method_style
from hashbench.reports.tables import build_table
from hashbench.store import RunKey, RunStore, canonical_json, iter_runs

# 16-bit records of the first published MIRFlickr-25K results, written before evaluation presets.
LEGACY_RUNS = Path(__file__).resolve().parent / "data" / "legacy_runs"

HASHBENCH = {
    "preset": "hashbench", "relevance": "share at least one label", "ties": "tie-aware",
    "empty_queries": "zero", "topk_normaliser": "min-k-relevant", "pr_radius": "micro and macro",
    "ndcg_gain": "2^shared - 1",
}
MATLAB = dict(HASHBENCH, preset="matlab", ties="stable", topk_normaliser="retrieved")

METHODS = ("itq", "lsh", "dstdh")
BITS = (16, 32)
SEEDS = (0, 1, 2)
PR_RANK_N = [1, 3, 10, 30, 100, 300, 1000, 2000]
PRECISION_AT = [500, 1000]

METRIC_NAMES = ("map", "map@1000", "precision@500", "precision@1000", "precision@radius2", "ndcg@100")
TIMING_NAMES = ("encode_ms_per_item", "encode_pixels_ms_per_item", "search_ms_per_query", "search_p50_ms",
                "search_p95_ms", "index_bytes", "fit_s")
TABLE_QUANTITIES = METRIC_NAMES + TIMING_NAMES


def synthetic_record(method, n_bits, seed, *, conventions=HASHBENCH, dataset="toy", protocol="toy-standard"):
    """A run record with every metric, curve and timing, from a generator seeded by the key."""
    rng = np.random.default_rng([zlib.crc32(method.encode()), n_bits, seed])
    level = {"itq": 0.6, "lsh": 0.45, "dstdh": 0.7}.get(method, 0.5) + 0.01 * math.log2(n_bits)
    recall = np.sort(rng.uniform(0.0, 1.0, n_bits + 1))
    recall[-1] = 1.0
    precision = np.clip(level + 0.3 * (1 - recall) + rng.normal(0, 0.01, n_bits + 1), 0, 1)
    rank_recall = np.sort(rng.uniform(0.0, 1.0, len(PR_RANK_N)))
    rank_precision = np.clip(level + 0.2 * (1 - rank_recall), 0, 1)
    return {
        "method": method, "dataset": dataset, "protocol": protocol, "n_bits": n_bits, "seed": seed,
        "params": {"n_iter": 50} if method == "itq" else {},
        "backbone": "efficientnet-lite0",
        "split": {"split_hash": f"{protocol}-hash"},
        "conventions": conventions,
        "metrics": {
            "map": level + rng.normal(0, 0.01),
            "map@1000": level + 0.1 + rng.normal(0, 0.01),
            "precision@500": level + 0.12 + rng.normal(0, 0.01),
            "precision@1000": level + 0.08 + rng.normal(0, 0.01),
            "precision@radius2": level + 0.2 + rng.normal(0, 0.01),
            "ndcg@100": level - 0.2 + rng.normal(0, 0.01),
            "recall@1000": 0.1 + rng.normal(0, 0.01),
        },
        "curves": {
            "pr_radius": {
                "radius": list(range(n_bits + 1)), "precision": precision.tolist(), "recall": recall.tolist(),
                "precision_macro": precision.tolist(), "recall_macro": recall.tolist(),
            },
            "precision_at_n": {
                "n": PRECISION_AT,
                "precision": [level + 0.12 + rng.normal(0, 0.01), level + 0.08 + rng.normal(0, 0.01)],
                "recall": [0.05, 0.1],
            },
            "pr_rank": {"n": PR_RANK_N, "precision": rank_precision.tolist(), "recall": rank_recall.tolist()},
        },
        "timings": {
            "fit_s": rng.uniform(0.1, 10.0),
            "encode_ms_per_item": rng.uniform(0.001, 0.01),
            "encode_pixels_ms_per_item": rng.uniform(40, 80),
            "search_ms_per_query": rng.uniform(0.02, 0.05) * n_bits / 16,
            "search_p50_ms": rng.uniform(0.02, 0.05),
            "search_p95_ms": rng.uniform(0.05, 0.1),
            "index_bytes": float(n_bits // 8 * 2000),
        },
    }


def write_runs(runs_dir, records):
    store = RunStore(runs_dir)
    for record in records:
        store.write(RunKey.from_record(record), record, {"query_codes": np.zeros((2, 4), dtype=np.uint8)})
    return runs_dir


def grid(**changes):
    return [synthetic_record(method, n_bits, seed, **changes)
            for method in METHODS for n_bits in BITS for seed in SEEDS]


def set_created(runs_dir, method, created):
    """Rewrite the ``created`` time of every stored run of one method."""
    for path in Path(runs_dir).rglob("record.json"):
        record = json.loads(path.read_text())
        if record["method"] == method:
            record["created"] = created
            path.write_text(json.dumps(record))


def seed_stats(records, read):
    """Mean and sample standard deviation over seeds of ``read(record)``, as arrays."""
    values = np.array([read(record) for record in sorted(records, key=lambda r: r["seed"])], dtype=np.float64)
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(values[0])
    return values.mean(axis=0), std


def group_of(records, method, n_bits):
    return [r for r in records if r["method"] == method and r["n_bits"] == n_bits]


def figure_value(record, name):
    return record["metrics"][name] if name in record["metrics"] else record["timings"][name]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One report folder over a 3-method, 2-code-length, 3-seed grid, and the records behind it."""
    root = tmp_path_factory.mktemp("report")
    runs_dir = write_runs(root / "runs", grid())
    written = write_report_folder(runs_dir, root / "out")
    return written, iter_runs(runs_dir)


def set_folder(written):
    (only,) = written.sets
    return only.folder


# ---------------------------------------------------------------------------------------------
# Folder layout


def test_folder_has_every_file(report):
    written, _ = report
    folder = set_folder(written)
    names = sorted(path.name for path in folder.iterdir())

    assert folder.relative_to(written.path).parts[:2] == ("toy", "toy-standard")
    assert folder.name.startswith("hashbench-")
    assert names == ["map_vs_bits.png", "map_vs_search_time.png", "pr_radius.png", "pr_rank.png",
                     "precision_at_n.png", "table.csv", "table.json", "table.md"]
    assert written.page == written.path / "index.html"


def test_folder_pngs_decode(report):
    written, _ = report
    for path in set_folder(written).glob("*.png"):
        image = imread(path)
        assert image.ndim == 3, path
        assert image.shape[0] > 300, path
        assert image.shape[1] > 500, path
        assert image.std() > 0.05, f"{path} looks blank"


def test_folder_leaves_no_temporary_files(report):
    written, _ = report
    leftovers = [path for path in written.path.rglob(".*")]

    assert leftovers == []


def test_folder_rewrite_replaces_files(tmp_path):
    runs_dir = write_runs(tmp_path / "runs", grid()[:3])
    first = write_report_folder(runs_dir, tmp_path / "out")
    table = set_folder(first) / "table.md"
    table.write_text("stale")

    write_report_folder(runs_dir, tmp_path / "out")

    assert table.read_text().startswith("# toy / toy-standard")


# ---------------------------------------------------------------------------------------------
# Table numbers equal the stored runs


def test_csv_numbers_equal_records(report):
    written, records = report
    table = pd.read_csv(set_folder(written) / "table.csv", dtype={"seeds": str})

    assert len(table) == len(METHODS) * len(BITS)
    for row in table.to_dict(orient="records"):
        members = group_of(records, row["method"], row["bits"])
        assert row["seeds"] == "0 1 2"
        for name in TABLE_QUANTITIES:
            mean, std = seed_stats(members, lambda r: figure_value(r, name))
            assert row[name] == pytest.approx(mean, rel=1e-12), (row["method"], row["bits"], name)
            assert row[f"{name}_std"] == pytest.approx(std, rel=1e-12), (row["method"], row["bits"], name)


def test_csv_names_conventions(report):
    written, _ = report
    table = pd.read_csv(set_folder(written) / "table.csv")

    assert set(table["conventions"]) == {canonical_json(HASHBENCH)}
    assert set(table["protocol"]) == {"toy-standard"}


def test_json_numbers_equal_records(report):
    written, records = report
    document = json.loads((set_folder(written) / "table.json").read_text())

    assert document["conventions"] == HASHBENCH
    assert document["conventions_label"].startswith("preset hashbench: ties tie-aware")
    assert [column["name"] for column in document["columns"]] == list(TABLE_QUANTITIES)
    for row in document["rows"]:
        members = group_of(records, row["method"], row["bits"])
        assert row["seeds"] == [0, 1, 2]
        for name in TABLE_QUANTITIES:
            mean, std = seed_stats(members, lambda r: figure_value(r, name))
            assert row[name] == pytest.approx(mean, rel=1e-12)
            assert row[f"{name}_std"] == pytest.approx(std, rel=1e-12)


def markdown_rows(text):
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return header, [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


MARKDOWN_METRICS = {"mAP": "map", "mAP@1000": "map@1000", "P@500": "precision@500", "P@1000": "precision@1000",
                    "P(r≤2)": "precision@radius2", "NDCG@100": "ndcg@100"}


def test_markdown_numbers_equal_records(report):
    written, records = report
    text = (set_folder(written) / "table.md").read_text()
    header, rows = markdown_rows(text)

    assert header[:5] == ["method", "bits", "backbone", "params", "seeds"]
    assert len(rows) == len(METHODS) * len(BITS)
    for row in rows:
        members = group_of(records, row[0], int(row[1]))
        for label, name in MARKDOWN_METRICS.items():
            mean, std = seed_stats(members, lambda r: r["metrics"][name])
            assert row[header.index(label)] == f"{mean:.4f} ± {std:.4f}", (row[0], row[1], label)
        mean, std = seed_stats(members, lambda r: r["timings"]["index_bytes"])
        assert row[header.index("index (bytes)")] == f"{mean:,.0f} ± {std:,.0f}"


def test_markdown_names_conventions_in_header(report):
    written, _ = report
    text = (set_folder(written) / "table.md").read_text()

    assert text.startswith("# toy / toy-standard\n")
    assert ("Evaluation conventions: preset hashbench: ties tie-aware, empty_queries zero, "
            "topk_normaliser min-k-relevant") in text
    assert "sample standard deviation (ddof=1)" in text


class _TableParser(HTMLParser):
    """Collects the cells of every <table>, the src of every <img> and the <h2> texts."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.headings = [], [], []
        self._cell, self._in_h2 = None, False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "h2":
            self._in_h2 = True
            self.headings.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None
        elif tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._in_h2:
            self.headings[-1] += data


def parse_page(path):
    parser = _TableParser()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    return parser


def test_page_tables_equal_markdown(report):
    written, _ = report
    header, rows = markdown_rows((set_folder(written) / "table.md").read_text())

    retrieval, cost = parse_page(written.page).tables

    # The page splits the Markdown table into retrieval figures and costs, each with the key columns.
    assert retrieval[0] == header[:5] + list(MARKDOWN_METRICS)
    assert cost[0][:5] == header[:5]
    assert retrieval[0][5:] + cost[0][5:] == header[5:]
    for page_row, cost_row, markdown_row in zip(retrieval[1:], cost[1:], rows):
        assert page_row + cost_row[5:] == markdown_row
    assert len(retrieval) == len(rows) + 1


def test_page_embeds_every_plot(report):
    written, _ = report
    pngs = {path.read_bytes() for path in set_folder(written).glob("*.png")}

    images = parse_page(written.page).images

    assert len(images) == 5
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert {base64.b64decode(src.split(",", 1)[1]) for src in images} == pngs


def test_page_is_self_contained(report):
    written, _ = report
    text = written.page.read_text(encoding="utf-8")

    assert "<script" not in text
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text)
    assert "@import" not in text
    assert "Evaluation conventions:</strong> preset hashbench" in text


# ---------------------------------------------------------------------------------------------
# Plot arrays equal the stored runs


@pytest.mark.parametrize(
    "name, curve, x_key, y_key, at_key",
    [
        ("pr_radius", "pr_radius", "recall", "precision", "radius"),
        ("pr_rank", "pr_rank", "recall", "precision", "n"),
        ("precision_at_n", "precision_at_n", "n", "precision", "n"),
    ],
)
def test_curve_plot_arrays_equal_records(report, name, curve, x_key, y_key, at_key):
    written, records = report
    plot = {plot.name: plot for plot in written.sets[0].plots}[name]

    assert {(series.method, series.n_bits) for series in plot.series} == {(m, b) for m in METHODS for b in BITS}
    for series in plot.series:
        members = group_of(records, series.method, series.n_bits)
        x_mean, x_std = seed_stats(members, lambda r: r["curves"][curve][x_key])
        y_mean, y_std = seed_stats(members, lambda r: r["curves"][curve][y_key])
        np.testing.assert_allclose(series.x, x_mean, rtol=1e-12)
        np.testing.assert_allclose(series.y, y_mean, rtol=1e-12)
        np.testing.assert_allclose(series.y_std, y_std, rtol=1e-12)
        np.testing.assert_array_equal(series.at, members[0]["curves"][curve][at_key])
        assert series.n_seeds == 3


def test_map_vs_bits_arrays_equal_records(report):
    written, records = report
    plot = {plot.name: plot for plot in written.sets[0].plots}["map_vs_bits"]

    assert sorted(series.method for series in plot.series) == sorted(METHODS)
    for series in plot.series:
        np.testing.assert_array_equal(series.x, BITS)
        for index, n_bits in enumerate(BITS):
            mean, std = seed_stats(group_of(records, series.method, n_bits), lambda r: r["metrics"]["map"])
            assert series.y[index] == pytest.approx(mean, rel=1e-12)
            assert series.y_std[index] == pytest.approx(std, rel=1e-12)


def test_map_vs_search_time_arrays_and_front(report):
    written, records = report
    plot = {plot.name: plot for plot in written.sets[0].plots}["map_vs_search_time"]

    points = []
    for series in plot.series:
        for index, n_bits in enumerate(series.at):
            members = group_of(records, series.method, n_bits)
            time_mean, time_std = seed_stats(members, lambda r: r["timings"]["search_ms_per_query"])
            map_mean, _ = seed_stats(members, lambda r: r["metrics"]["map"])
            assert series.x[index] == pytest.approx(time_mean, rel=1e-12)
            assert series.x_std[index] == pytest.approx(time_std, rel=1e-12)
            assert series.y[index] == pytest.approx(map_mean, rel=1e-12)
            points.append((time_mean, map_mean))
    # Brute force: a point is on the front when no other point is at least as fast and as accurate.
    expected = sorted(
        (x, y) for x, y in points
        if not any(ox <= x and oy >= y and (ox, oy) != (x, y) for ox, oy in points)
    )

    assert len(points) == len(METHODS) * len(BITS)
    np.testing.assert_allclose(plot.front, expected, rtol=1e-12)
    assert len(plot.front_labels) == len(expected)


def test_plot_axes_labelled_with_units(report):
    written, _ = report
    for plot in written.sets[0].plots:
        for ax in plot.figure.axes:
            if not ax.get_visible():
                continue
            for label in (ax.get_xlabel(), ax.get_ylabel()):
                assert re.search(r"\((fraction|bits|count|ms per query, mean|fraction of relevant items)\)$", label), \
                    (plot.name, label)


def test_plot_colours_follow_method(report):
    written, _ = report
    for plot in written.sets[0].plots:
        for ax in plot.figure.axes:
            for line in ax.get_lines():
                label = line.get_label()
                if label in METHODS:
                    assert to_hex(line.get_color()) == method_style(label).colour.lower(), (plot.name, label)
                    assert line.get_marker() == method_style(label).marker, (plot.name, label)


# ---------------------------------------------------------------------------------------------
# Styles and the Pareto front


def test_style_known_methods_distinct():
    styles = [method_style(method) for method in KNOWN_METHODS]

    assert len(set(styles)) == len(styles)


def test_style_unknown_method_fixed():
    # The style comes from the SHA-256 of the name, so it is the same in every process and report.
    assert method_style("my-new-hash") == method_style("my-new-hash")
    assert method_style("my-new-hash") == ("#0072B2", "p")


def test_pareto_front_cases():
    points = np.array([[1.0, 0.5], [2.0, 0.4], [2.0, 0.7], [3.0, 0.7], [0.5, 0.3]])

    assert pareto_front(points).tolist() == [4, 0, 2]


def test_plot_reads_none_as_gap():
    record = synthetic_record("itq", 16, 0)
    record["curves"]["pr_radius"]["precision"][3] = None

    (series,) = plot_pr_radius([record], title="toy").series

    assert math.isnan(series.y[3])
    assert series.y_std[3] == 0.0


def test_plot_without_map_has_no_series():
    frame = summarize_runs([synthetic_record("itq", 16, 0)])
    frame = frame.drop(columns=["map", "map_std"])

    assert plot_map_vs_bits(frame, title="toy").series == []


# ---------------------------------------------------------------------------------------------
# Runs that must not share a table


def test_mixed_conventions_refused_in_one_table():
    records = grid()[:3] + [dict(record, conventions=MATLAB) for record in grid()[3:6]]
    frame = summarize_runs(records)

    with pytest.raises(ValueError, match=r"mix 2 values of conventions .*preset hashbench.*preset matlab.*not "
                                         r"comparable, so they do not share a table"):
        build_table(frame)
    with pytest.raises(ValueError, match="not comparable"):
        check_comparable(frame)


def test_mixed_protocols_refused_in_one_table():
    records = grid()[:3] + [synthetic_record("lsh", 16, 0, protocol="toy-other")]

    with pytest.raises(ValueError, match=r"mix 2 values of protocol \('toy-other' and 'toy-standard'\)"):
        build_table(summarize_runs(records))


def test_mixed_conventions_within_row_not_averaged():
    records = grid()[:3]
    records[1]["conventions"] = MATLAB

    with pytest.raises(ValueError, match="differ in metric conventions.*cannot be averaged"):
        summarize_runs(records)


def test_folder_splits_conventions_and_protocols(tmp_path):
    hashbench_runs = [synthetic_record("itq", 16, seed) for seed in SEEDS]
    matlab_runs = [synthetic_record("lsh", 16, seed, conventions=MATLAB) for seed in SEEDS]
    other_protocol = [synthetic_record("itq", 16, seed, protocol="toy-other") for seed in SEEDS]
    runs_dir = write_runs(tmp_path / "runs", hashbench_runs + matlab_runs + other_protocol)

    written = write_report_folder(runs_dir, tmp_path / "out")

    keys = sorted((s.table.protocol, json.loads(s.table.conventions)["preset"], s.table.rows[0]["method"])
                  for s in written.sets)
    assert keys == [("toy-other", "hashbench", "itq"), ("toy-standard", "hashbench", "itq"),
                    ("toy-standard", "matlab", "lsh")]
    assert all(len(s.table.rows) == 1 and s.n_runs == 3 for s in written.sets)
    assert "3 sets of dataset, protocol and evaluation conventions" in written.warnings[0]
    assert len({s.folder for s in written.sets}) == 3
    page = parse_page(written.page)
    assert len(page.tables) == 6
    assert sum("(hashbench-" in heading or "(matlab-" in heading for heading in page.headings) == 2
    assert "not comparable" in written.page.read_text()


def test_markdown_file_splits_sets():
    records = [synthetic_record("itq", 16, 0), synthetic_record("lsh", 16, 0, conventions=MATLAB)]

    text = format_report(summarize_runs(records), "markdown")

    assert text.startswith("The runs form 2 sets")
    assert text.count("## toy / toy-standard") == 2
    assert "Evaluation conventions: preset matlab: ties stable" in text
    assert len(split_comparable(summarize_runs(records))) == 2


# ---------------------------------------------------------------------------------------------
# Records written before presets


def test_legacy_runs(tmp_path):
    written = write_report_folder(LEGACY_RUNS, tmp_path / "out", n_bits=[16])

    (only,) = written.sets
    plots = {plot.name: plot for plot in only.plots}
    names = {path.name for path in only.folder.iterdir()}
    assert only.folder.name.startswith("no-preset-")
    assert only.table.conventions_label.startswith("no preset recorded: ties stable (database order)")
    assert plots["pr_rank"].series == []
    assert "pr_rank.png" not in names
    assert {"pr_radius.png", "precision_at_n.png", "map_vs_bits.png", "map_vs_search_time.png"} <= names
    assert "Not drawn: no run of this set stores the figures it needs." in written.page.read_text()
    assert {q.name for q in only.table.quantities} >= {"map", "map@1000", "precision@1000", "search_ms_per_query"}
    assert "ndcg@100" not in {q.name for q in only.table.quantities}


# ---------------------------------------------------------------------------------------------
# Command line


def invoke(*args):
    return CliRunner().invoke(app, ["report", *map(str, args)])


def test_cli_writes_folder(tmp_path):
    runs_dir = write_runs(tmp_path / "runs", grid()[:6])

    result = invoke("--runs-dir", runs_dir, "--output", tmp_path / "out")

    assert result.exit_code == 0, result.output
    assert "Wrote 9 files for 1 set of runs" in result.output
    assert (tmp_path / "out" / "index.html").is_file()


def two_methods():
    return [synthetic_record(method, 16, seed) for method in ("itq", "lsh") for seed in SEEDS]


def test_cli_since_filters_runs(tmp_path):
    runs_dir = write_runs(tmp_path / "runs", two_methods())
    set_created(runs_dir, "itq", "2026-01-05T10:00:00+00:00")
    set_created(runs_dir, "lsh", "2026-03-01T10:00:00+00:00")

    result = invoke("--runs-dir", runs_dir, "--since", "2026-02-01", "--format", "json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["method"] for row in rows} == {"lsh"}


def test_cli_since_with_time_and_offset(tmp_path):
    runs_dir = write_runs(tmp_path / "runs", two_methods())
    set_created(runs_dir, "itq", "2026-03-01T09:00:00+00:00")
    set_created(runs_dir, "lsh", "2026-03-01T11:00:00+00:00")

    result = invoke("--runs-dir", runs_dir, "--since", "2026-03-01T11:30+01:00", "--format", "csv")

    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(io.StringIO(result.stdout))["method"]) == {"lsh"}


def test_cli_since_without_match(tmp_path):
    runs_dir = write_runs(tmp_path / "runs", grid()[:3])
    set_created(runs_dir, "itq", "2026-01-05T10:00:00+00:00")

    result = invoke("--runs-dir", runs_dir, "--since", "2027-01-01", "--output", tmp_path / "out")

    assert result.exit_code == 2
    assert "since=2027-01-01T00:00:00+00:00" in result.output
    assert "the newest was created 2026-01-05T10:00:00+00:00" in result.output
    assert not (tmp_path / "out").exists()


def test_since_leaves_out_undated_runs(caplog):
    dated = dict(synthetic_record("itq", 16, 0), created="2026-03-01T10:00:00+00:00")
    undated = synthetic_record("lsh", 16, 0)

    selected = select_runs([dated, undated], since="2026-01-01")

    assert [record["method"] for record in selected] == ["itq"]
    assert "Leaving out 1 runs without a readable 'created' time" in caplog.text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "last week"], "--since must be an ISO 8601 date or date and time"),
        (["--output", "{tmp}/out", "--format", "csv"], "--format csv writes one file, but --output"),
        (["--output", "{tmp}/report.html"], "ends in '.html', which is neither a report file suffix"),
    ],
    ids=["since", "format-with-folder", "unknown-suffix"],
)
def test_cli_rejects_bad_options(tmp_path, args, message):
    runs_dir = write_runs(tmp_path / "runs", grid()[:1])

    result = invoke("--runs-dir", runs_dir, *[arg.format(tmp=tmp_path) for arg in args])

    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_cli_empty_runs_folder(tmp_path):
    (tmp_path / "runs").mkdir()

    result = invoke("--runs-dir", tmp_path / "runs", "--output", tmp_path / "out")

    assert result.exit_code == 2
    assert f"no runs found under {tmp_path / 'runs'}; run `hashbench run` first" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_cli_missing_runs_folder(tmp_path):
    result = invoke("--runs-dir", tmp_path / "absent", "--output", tmp_path / "out")

    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_cli_notes_mixed_conventions(tmp_path):
    records = [synthetic_record("itq", 16, 0), synthetic_record("lsh", 16, 0, conventions=MATLAB)]
    runs_dir = write_runs(tmp_path / "runs", records)

    result = invoke("--runs-dir", runs_dir)

    assert result.exit_code == 0, result.output
    assert "each gets its own table" in " ".join(result.output.split())
    assert result.output.count("toy / toy-standard: mean ± std over seeds") == 2


@pytest.mark.parametrize(
    "name, expected",
    [("results.md", False), ("results.CSV", False), ("table.json", False), ("notes.txt", False),
     ("site", True), ("existing.v2", True)],
)
def test_output_kind(tmp_path, name, expected):
    (tmp_path / "existing.v2").mkdir()

    assert is_folder_output(tmp_path / name) is expected


def test_output_existing_file_without_suffix(tmp_path):
    (tmp_path / "results").write_text("old report")

    with pytest.raises(ValueError, match="is an existing file without a suffix"):
        is_folder_output(tmp_path / "results")


# ---------------------------------------------------------------------------------------------
# The page in a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Appended to a copy of the page: after every image loaded or failed, write how many decoded.
_IMAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const decoded = images.filter((image) => image.complete && image.naturalWidth > 0).length;
  const out = document.createElement("p");
  out.id = "image-check";
  out.textContent = `decoded ${decoded} of ${images.length}; tables ${document.querySelectorAll("table").length}`;
  document.body.appendChild(out);
});
</script>"""


def chromium(*args, user_dir):
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={user_dir}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="needs the chromium browser (Debian package `chromium`) on PATH")
def test_page_renders_in_chromium(report, tmp_path):
    written, _ = report
    probe = tmp_path / "probe.html"
    probe.write_text(written.page.read_text(encoding="utf-8").replace("</body>", _IMAGE_CHECK + "</body>"))

    dom = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(), user_dir=tmp_path / "profile")
    screenshot = tmp_path / "page.png"
    shot = chromium(f"--screenshot={screenshot}", "--window-size=1400,4000", written.page.as_uri(),
                    user_dir=tmp_path / "profile")

    assert 'id="image-check">decoded 5 of 5; tables 2<' in dom.stdout, dom.stderr[-2000:]
    assert screenshot.is_file(), shot.stderr[-2000:]
    image = imread(screenshot)
    assert image.shape[:2] == (4000, 1400)
    assert image.std() > 0.05
