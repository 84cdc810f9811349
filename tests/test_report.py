"""Tests of run summaries over seeds and of the Markdown, CSV and JSON reports."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from hashbench.report import (
    REPORT_FORMATS,
    format_report,
    params_label,
    metric_columns,
    summarize_runs,
    table_cells,
)
from hashbench.store import RunKey, RunStore


def make_record(method="itq", dataset="cifar10", n_bits=32, seed=0, map_value=0.5, fit_s=10.0,
                **changes):
    record = {
        "method": method,
        "dataset": dataset,
        "protocol": f"{dataset}-standard",
        "n_bits": n_bits,
        "seed": seed,
        "params": {"n_iter": 50},
        "backbone": "efficientnet-lite0",
        "split": {"split_hash": "abc123"},
        "conventions": {"ties": "stable", "no_relevant": "skip"},
        "metrics": {"map": map_value, "map@1000": map_value / 2, "precision@500": 0.25},
        "curves": {"pr": {"precision": [1.0, 0.5], "recall": [0.1, 0.9]}},
        "timings": {"fit_s": fit_s, "encode_ms_per_item": 0.002},
    }
    record.update(changes)
    return record


def three_seeds(**changes):
    # mAP 0.5, 0.7, 0.9: mean 0.7, sample std sqrt((0.04 + 0 + 0.04) / 2) = 0.2.
    # fit_s 10, 20, 30: mean 20, sample std 10.
    return [
        make_record(seed=seed, map_value=value, fit_s=fit, **changes)
        for seed, value, fit in [(0, 0.5, 10.0), (1, 0.7, 20.0), (2, 0.9, 30.0)]
    ]


# ---------------------------------------------------------------------------------------------
# summarize_runs


def test_summary_mean_and_std():
    frame = summarize_runs(three_seeds())
    row = frame.iloc[0]

    assert len(frame) == 1
    assert row["n_seeds"] == 3
    assert row["seeds"] == (0, 1, 2)
    assert row["map"] == pytest.approx(0.7)
    assert row["map_std"] == pytest.approx(0.2)
    assert row["map@1000"] == pytest.approx(0.35)
    assert row["map@1000_std"] == pytest.approx(0.1)
    assert row["fit_s"] == pytest.approx(20.0)
    assert row["fit_s_std"] == pytest.approx(10.0)


def test_summary_single_seed_std_is_zero():
    row = summarize_runs([make_record(map_value=0.6)]).iloc[0]

    assert row["map"] == 0.6
    assert row["map_std"] == 0.0
    assert row["precision@500_std"] == 0.0


def test_summary_equal_values_have_zero_std():
    records = [make_record(seed=seed) for seed in range(3)]

    assert summarize_runs(records).iloc[0]["precision@500_std"] == 0.0


def test_summary_key_columns():
    row = summarize_runs(three_seeds()).iloc[0]

    assert row["method"] == "itq"
    assert row["dataset"] == "cifar10"
    assert row["protocol"] == "cifar10-standard"
    assert row["n_bits"] == 32
    assert row["backbone"] == "efficientnet-lite0"
    assert json.loads(row["params"]) == {"n_iter": 50}
    assert row["split_hash"] == "abc123"


def test_summary_skips_curves_and_non_numbers():
    record = make_record()
    record["metrics"]["note"] = "text"
    record["metrics"]["flag"] = True

    frame = summarize_runs([record])

    assert "note" not in frame.columns
    assert "flag" not in frame.columns
    assert "pr" not in frame.columns


def test_summary_row_order():
    records = [
        make_record(method="sh", dataset="mirflickr25k", n_bits=16),
        make_record(method="itq", dataset="mirflickr25k", n_bits=128),
        make_record(method="itq", dataset="mirflickr25k", n_bits=16),
        make_record(method="dstdh", dataset="cifar10", n_bits=64),
        make_record(method="itq", dataset="mirflickr25k", n_bits=32),
    ]

    frame = summarize_runs(records)

    assert list(zip(frame["dataset"], frame["n_bits"], frame["method"])) == [
        ("cifar10", 64, "dstdh"),
        ("mirflickr25k", 16, "itq"),
        ("mirflickr25k", 16, "sh"),
        ("mirflickr25k", 32, "itq"),
        ("mirflickr25k", 128, "itq"),
    ]


def test_summary_metric_columns_in_natural_order():
    record = make_record()
    record["metrics"] = {"map@1000": 0.1, "map@100": 0.2, "map": 0.3}

    frame = summarize_runs([record])

    assert [column.name for column in metric_columns(frame)] == [
        "map", "map@100", "map@1000", "encode_ms_per_item", "fit_s",
    ]


def test_summary_separates_params_and_backbones():
    records = three_seeds() + [
        make_record(seed=0, params={"n_iter": 10}),
        make_record(seed=0, backbone=None),
    ]

    frame = summarize_runs(records)

    assert sorted(frame["n_seeds"]) == [1, 1, 3]
    assert sorted(frame["params"]) == ['{"n_iter":10}', '{"n_iter":50}', '{"n_iter":50}']


def test_summary_missing_metric_in_other_group_is_nan():
    other = make_record(method="sh")
    del other["metrics"]["precision@500"]

    frame = summarize_runs([make_record(), other]).set_index("method")

    assert frame.loc["itq", "precision@500"] == 0.25
    assert math.isnan(frame.loc["sh", "precision@500"])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("conventions", {"ties": "random", "no_relevant": "skip"}, "differ in metric conventions"),
        ("split", {"split_hash": "fff000"}, "differ in split hash: seed 0 has abc123 but seed 2 has fff000"),
    ],
    ids=["conventions", "split-hash"],
)
def test_summary_rejects_mixed_runs(field, value, message):
    records = three_seeds()
    records[2][field] = value

    with pytest.raises(ValueError, match=message) as caught:
        summarize_runs(records)

    assert "method=itq, dataset=cifar10, protocol=cifar10-standard, bits=32" in str(caught.value)


def test_summary_mixed_runs_in_filtered_out_group_pass():
    records = three_seeds() + [make_record(method="sh", seed=0), make_record(method="sh", seed=1)]
    records[-1]["conventions"] = {"ties": "random"}

    frame = summarize_runs(records, method=["itq"])

    assert list(frame["method"]) == ["itq"]


def test_summary_rejects_repeated_seed():
    records = three_seeds() + [make_record(seed=1)]

    with pytest.raises(ValueError, match="contain seed 1 more than once"):
        summarize_runs(records)


def test_summary_rejects_metric_missing_for_some_seeds():
    records = three_seeds()
    del records[1]["timings"]["fit_s"]

    with pytest.raises(ValueError, match=r"do not all have timings\['fit_s'\]: seeds \[1\] lack it"):
        summarize_runs(records)


def test_summary_rejects_name_in_metrics_and_timings():
    record = make_record()
    record["metrics"]["fit_s"] = 1.0

    with pytest.raises(ValueError, match=r"\['fit_s'\] appear both in metrics and in timings"):
        summarize_runs([record])


def test_summary_rejects_record_without_key_fields():
    record = make_record()
    del record["seed"]

    with pytest.raises(ValueError, match="lacks seed"):
        summarize_runs([record])


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"method": ["itq"]}, [("itq", "cifar10", 16), ("itq", "cifar10", 32), ("itq", "mirflickr25k", 32)]),
        ({"method": "s*"}, [("sh", "cifar10", 32)]),
        ({"dataset": ["mirflickr25k"]}, [("itq", "mirflickr25k", 32)]),
        ({"n_bits": [16]}, [("itq", "cifar10", 16)]),
        ({"n_bits": 32, "dataset": "cifar10"}, [("itq", "cifar10", 32), ("sh", "cifar10", 32)]),
        ({"method": ["sh", "itq"], "n_bits": [16, 32], "dataset": None},
         [("itq", "cifar10", 16), ("itq", "cifar10", 32), ("sh", "cifar10", 32),
          ("itq", "mirflickr25k", 32)]),
    ],
    ids=["method", "wildcard", "dataset", "bits", "bits-and-dataset", "several"],
)
def test_summary_filters(filters, expected):
    records = [
        make_record(method="itq", dataset="cifar10", n_bits=16),
        make_record(method="itq", dataset="cifar10", n_bits=32),
        make_record(method="sh", dataset="cifar10", n_bits=32),
        make_record(method="itq", dataset="mirflickr25k", n_bits=32),
    ]

    frame = summarize_runs(records, **filters)

    assert list(zip(frame["method"], frame["dataset"], frame["n_bits"])) == expected


def test_summary_filter_without_match():
    with pytest.raises(ValueError, match=r"no runs match method=\['pq'\].*The runs have methods \['itq'\]"):
        summarize_runs([make_record()], method=["pq"])


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"n_bits": ["32"]}, "n_bits filter values must be integers, got '32'"),
        ({"method": [1]}, "method filter values must be str, got 1"),
    ],
    ids=["bits-str", "method-int"],
)
def test_summary_rejects_bad_filters(filters, message):
    with pytest.raises(TypeError, match=message):
        summarize_runs([make_record()], **filters)


def test_summary_empty_records():
    with pytest.raises(ValueError, match="no runs found.*run `hashbench run` first"):
        summarize_runs([])


def test_summary_empty_runs_folder(tmp_path):
    with pytest.raises(ValueError, match=f"no runs found under {tmp_path}; run `hashbench run` first"):
        summarize_runs(tmp_path)


def test_summary_reads_runs_folder(tmp_path):
    store = RunStore(tmp_path)
    for record in three_seeds():
        key = RunKey.from_record(record)
        store.write(key, record, {"query_codes": np.zeros((2, 4), dtype=np.uint8)})

    row = summarize_runs(tmp_path).iloc[0]

    assert row["n_seeds"] == 3
    assert row["map"] == pytest.approx(0.7)
    assert row["map_std"] == pytest.approx(0.2)


# ---------------------------------------------------------------------------------------------
# metric_columns and table_cells


def test_metric_columns_kinds_and_labels():
    columns = {column.name: column for column in metric_columns(summarize_runs(three_seeds()))}

    assert columns["map"].kind == "metric"
    assert columns["map"].std_name == "map_std"
    assert columns["fit_s"].kind == "timing"
    assert columns["fit_s"].label == "fit (s)"
    assert columns["encode_ms_per_item"].label == "encode (ms/item)"
    assert columns["encode_ms_per_item"].unit == "ms/item"


def test_metric_columns_without_attrs():
    frame = summarize_runs(three_seeds())
    frame.attrs.clear()

    kinds = {column.name: column.kind for column in metric_columns(frame)}

    assert kinds == {"map": "metric", "map@1000": "metric", "precision@500": "metric",
                     "encode_ms_per_item": "timing", "fit_s": "timing"}


@pytest.mark.parametrize(
    "name, mean, std, expected",
    [
        ("map", 0.7, 0.2, "0.7000 ± 0.2000"),
        ("map", 0.123456, 0.0, "0.1235 ± 0.0000"),
        ("map", float("nan"), float("nan"), "–"),
        ("fit_s", 20.0, 10.0, "20.00 ± 10.00"),
        ("fit_s", 1234.5678, 1.0, "1235 ± 1"),
        ("encode_ms_per_item", 0.002, 0.0001, "0.002000 ± 0.000100"),
    ],
)
def test_metric_cell_format(name, mean, std, expected):
    columns = {column.name: column for column in metric_columns(summarize_runs(three_seeds()))}

    assert columns[name].format_cell(mean, std) == expected


def test_table_cells_headers_and_row():
    table = table_cells(summarize_runs(three_seeds()))

    assert table.headers == [
        "method", "dataset", "protocol", "bits", "backbone", "params", "n_seeds",
        "map", "map@1000", "precision@500", "encode (ms/item)", "fit (s)",
    ]
    assert table.rows == [[
        "itq", "cifar10", "cifar10-standard", "32", "efficientnet-lite0", params_label('{"n_iter":50}'), "3",
        "0.7000 ± 0.2000", "0.3500 ± 0.1000", "0.2500 ± 0.0000", "0.002000 ± 0.000000",
        "20.00 ± 10.00",
    ]]
    assert table.justify[3] == "right"
    assert table.justify[0] == "left"


def test_table_cells_without_backbone():
    table = table_cells(summarize_runs([make_record(backbone=None)]))

    assert table.rows[0][4] == "none"


# ---------------------------------------------------------------------------------------------
# format_report


def two_groups():
    return three_seeds() + [make_record(method="sh", seed=0, map_value=0.4, backbone=None)]


def test_json_report_parses_back():
    rows = json.loads(format_report(summarize_runs(two_groups()), "json"))
    by_method = {row["method"]: row for row in rows}

    assert len(rows) == 2
    assert by_method["itq"]["bits"] == 32
    assert "n_bits" not in by_method["itq"]
    assert by_method["itq"]["n_seeds"] == 3
    assert by_method["itq"]["seeds"] == [0, 1, 2]
    assert by_method["itq"]["map"] == pytest.approx(0.7)
    assert by_method["itq"]["map_std"] == pytest.approx(0.2)
    assert by_method["itq"]["fit_s_std"] == pytest.approx(10.0)
    assert by_method["itq"]["params"] == {"n_iter": 50}
    assert by_method["itq"]["conventions"] == {"ties": "stable", "no_relevant": "skip"}
    assert by_method["sh"]["backbone"] is None
    assert by_method["sh"]["map_std"] == 0.0


def test_json_report_missing_metric_is_null():
    other = make_record(method="sh")
    del other["metrics"]["precision@500"]

    rows = json.loads(format_report(summarize_runs([make_record(), other]), "json"))

    assert rows[1]["method"] == "sh"
    assert rows[1]["precision@500"] is None


def test_csv_report_parses_back():
    frame = pd.read_csv(io.StringIO(format_report(summarize_runs(two_groups()), "csv")))
    itq = frame[frame["method"] == "itq"].iloc[0]

    assert list(frame["method"]) == ["itq", "sh"]
    assert "bits" in frame.columns
    assert "n_bits" not in frame.columns
    assert itq["bits"] == 32
    assert itq["n_seeds"] == 3
    assert itq["seeds"] == "0 1 2"
    assert itq["map"] == pytest.approx(0.7)
    assert itq["map_std"] == pytest.approx(0.2)
    assert itq["map@1000_std"] == pytest.approx(0.1)
    assert json.loads(itq["params"]) == {"n_iter": 50}


def test_csv_report_keeps_full_precision():
    frame = summarize_runs([make_record(map_value=1 / 3)])

    read = pd.read_csv(io.StringIO(format_report(frame, "csv")))

    assert read["map"][0] == 1 / 3


def test_markdown_report_table():
    text = format_report(summarize_runs(two_groups()), "markdown")
    lines = text.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    itq = [cell.strip() for cell in lines[2].strip("|").split("|")]

    assert lines[4] == ""
    assert lines[5] == "Parameters:"
    assert header[:7] == ["method", "dataset", "protocol", "bits", "backbone", "params", "n_seeds"]
    assert lines[1].startswith("|---|---|---|---:|")
    assert itq[header.index("map")] == "0.7000 ± 0.2000"
    assert itq[header.index("fit (s)")] == "20.00 ± 10.00"
    assert itq[header.index("n_seeds")] == "3"


def test_markdown_lists_params_below_table():
    text = format_report(summarize_runs([make_record(params={"mode": "a|b"})]), "markdown")
    label = params_label('{"mode":"a|b"}')

    assert f"| {label} |" in text
    assert f'- `{label}` (itq): `{{"mode":"a|b"}}`' in text


def test_unknown_format_rejected():
    frame = summarize_runs(three_seeds())

    with pytest.raises(ValueError, match="unknown report format 'html'; choose one of markdown, csv, json"):
        format_report(frame, "html")


@pytest.mark.parametrize("fmt", REPORT_FORMATS)
def test_format_rejects_other_frames(fmt):
    with pytest.raises(ValueError, match="frame lacks the columns"):
        format_report(pd.DataFrame({"method": ["itq"]}), fmt)
