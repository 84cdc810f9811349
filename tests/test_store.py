"""Tests of the run store: keys and folders, atomic writes, reading records and arrays."""

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

import hashbench
from hashbench.store import (
    RunExistsError,
    RunKey,
    RunStore,
    canonical_json,
    iter_runs,
    load_arrays,
    scan_runs,
)


def make_key(**changes):
    values = dict(
        method="dstdh",
        dataset="mirflickr25k",
        protocol="mirflickr25k-standard",
        n_bits=32,
        seed=0,
        params={"lr": 0.001, "epochs": 10},
        backbone="efficientnet-lite0",
    )
    values.update(changes)
    return RunKey(**values)


def make_arrays(seed=0):
    rng = np.random.RandomState(seed)
    return {
        "query_codes": rng.randint(0, 256, size=(5, 4), dtype=np.uint8),
        "database_codes": rng.randint(0, 256, size=(20, 4), dtype=np.uint8),
        "query_ids": np.arange(5, dtype=np.int64),
    }


def make_record(map_value=0.5):
    return {
        "split": {"split_hash": "abc123"},
        "metrics": {"map": map_value},
        "timings": {"fit_s": 1.5},
        "conventions": {"ties": "stable"},
    }


def hidden_entries(folder):
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


# ---------------------------------------------------------------------------------------------
# RunKey


def test_relative_path_layout():
    params = {"lr": 0.001, "epochs": 10}
    digest = hashlib.sha256(
        json.dumps(params, sort_keys=True, separators=(",", ":")).encode("ascii")
    ).hexdigest()[:12]

    path = make_key(params=params).relative_path

    assert path.as_posix() == (
        "mirflickr25k/mirflickr25k-standard/dstdh/bits=32/seed=0/"
        f"backbone=efficientnet-lite0,params={digest}"
    )


def test_relative_path_ignores_params_order():
    first = make_key(params={"a": 1, "b": {"y": 2, "x": 3}})
    second = make_key(params={"b": {"x": 3, "y": 2}, "a": 1})

    assert first.relative_path == second.relative_path
    assert first == second
    assert hash(first) == hash(second)


@pytest.mark.parametrize(
    "changes",
    [
        {"params": {"lr": 0.01, "epochs": 10}},
        {"params": {"lr": 0.001, "epochs": 10.0}},
        {"seed": 1},
        {"n_bits": 64},
        {"backbone": None},
        {"method": "itq"},
    ],
    ids=["params", "int-vs-float", "seed", "bits", "backbone", "method"],
)
def test_relative_path_differs_per_value(changes):
    assert make_key(**changes).relative_path != make_key().relative_path


def test_relative_path_without_backbone():
    key = make_key(backbone=None)

    assert key.relative_path.name.startswith("backbone=none,params=")
    assert make_key(backbone="none") == key


def test_key_normalises_params():
    key = make_key(params={"sizes": (1, 2), "scale": np.float32(0.5), "steps": np.int64(3)})

    assert key.params == {"sizes": [1, 2], "scale": 0.5, "steps": 3}
    assert type(key.params["steps"]) is int


def test_key_params_are_a_copy():
    params = {"lr": 0.1}
    key = make_key(params=params)
    params["lr"] = 0.2

    assert key.params == {"lr": 0.1}


def test_canonical_json_sorts_keys():
    assert canonical_json({"b": [1, {"d": 1, "c": 2}], "a": None}) == '{"a":null,"b":[1,{"c":2,"d":1}]}'


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"method": "a/b"}, "method must be a non-empty string"),
        ({"dataset": ".."}, "dataset must be a non-empty string"),
        ({"protocol": ""}, "protocol must be a non-empty string"),
        ({"backbone": "x,y"}, "backbone must be a non-empty string"),
        ({"n_bits": 12}, "n_bits must be a positive multiple of 8"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"seed": True}, "seed must be a non-negative integer, got True"),
        ({"seed": 1.0}, "seed must be a non-negative integer, got 1.0"),
    ],
    ids=["slash", "dotdot", "empty", "comma", "bits", "negative-seed", "bool-seed", "float-seed"],
)
def test_key_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        make_key(**changes)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ([("lr", 1)], TypeError, "params must be a dict of parameter name to JSON value, got list"),
        ({1: "a"}, TypeError, r"params must contain only JSON values .* is a key of type int"),
        ({"net": {"layer": object()}}, TypeError, r"net\.layer is a value of type object"),
        ({"lr": float("nan")}, ValueError, r"lr is a non-finite float nan"),
    ],
    ids=["list", "int-key", "object", "nan"],
)
def test_key_rejects_bad_params(params, error, message):
    with pytest.raises(error, match=message):
        make_key(params=params)


def test_key_from_record_round_trips():
    key = make_key()

    assert RunKey.from_record(key.as_record_fields()) == key


def test_key_from_record_names_missing_fields():
    with pytest.raises(ValueError, match="lacks the key fields seed, backbone"):
        RunKey.from_record({"method": "itq", "dataset": "d", "protocol": "p", "n_bits": 8,
                            "params": {}})


# ---------------------------------------------------------------------------------------------
# Writing


def test_write_creates_run(tmp_path):
    store = RunStore(tmp_path / "runs")
    key = make_key()

    path = store.write(key, make_record(), make_arrays())

    assert path == tmp_path / "runs" / key.relative_path
    assert store.exists(key)
    assert sorted(p.name for p in path.iterdir()) == ["codes.npz", "record.json"]


def test_write_fills_record_fields(tmp_path):
    store = RunStore(tmp_path)
    key = make_key()
    before = datetime.now(timezone.utc).replace(microsecond=0)

    path = store.write(key, make_record(), make_arrays())
    record = json.loads((path / "record.json").read_text())

    for name, value in key.as_record_fields().items():
        assert record[name] == value, name
    created = datetime.fromisoformat(record["created"])
    assert created.tzinfo is not None
    assert before <= created <= datetime.now(timezone.utc)
    assert record["hashbench_version"] == hashbench.__version__
    assert record["metrics"] == {"map": 0.5}


def test_record_file_has_sorted_keys_and_indent(tmp_path):
    path = RunStore(tmp_path).write(make_key(), make_record(), make_arrays())
    text = (path / "record.json").read_text()
    record = json.loads(text)

    assert text == json.dumps(record, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_write_does_not_modify_caller_record(tmp_path):
    record = make_record()

    RunStore(tmp_path).write(make_key(), record, make_arrays())

    assert record == make_record()


def test_write_converts_numpy_scalars(tmp_path):
    record = make_record()
    record["metrics"] = {"map": np.float32(0.25), "count": np.int64(3)}

    path = RunStore(tmp_path).write(make_key(), record, make_arrays())

    assert json.loads((path / "record.json").read_text())["metrics"] == {"map": 0.25, "count": 3}


def test_arrays_round_trip(tmp_path):
    arrays = make_arrays()
    arrays["file"] = np.array(["a", "bc"])  # clashes with a numpy.savez parameter name

    path = RunStore(tmp_path).write(make_key(), make_record(), arrays)
    loaded = load_arrays(path)

    assert sorted(loaded) == sorted(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype, name
        np.testing.assert_array_equal(loaded[name], array)


def test_codes_file_loads_with_numpy(tmp_path):
    arrays = make_arrays()

    path = RunStore(tmp_path).write(make_key(), make_record(), arrays)

    with np.load(path / "codes.npz") as archive:
        np.testing.assert_array_equal(archive["query_codes"], arrays["query_codes"])


def test_write_without_force_rejects_existing(tmp_path):
    store = RunStore(tmp_path)
    key = make_key()
    path = store.write(key, make_record(0.5), make_arrays())

    with pytest.raises(RunExistsError, match=r"a run already exists at .*pass --force"):
        store.write(key, make_record(0.9), make_arrays())

    assert json.loads((path / "record.json").read_text())["metrics"]["map"] == 0.5
    assert hidden_entries(path.parent) == []


def test_run_exists_error_names_path(tmp_path):
    store = RunStore(tmp_path)
    key = make_key()
    path = store.write(key, make_record(), make_arrays())

    with pytest.raises(RunExistsError) as caught:
        store.write(key, make_record(), make_arrays())

    assert str(path) in str(caught.value)
    assert isinstance(caught.value, FileExistsError)


def test_write_with_force_replaces_run(tmp_path):
    store = RunStore(tmp_path)
    key = make_key()
    store.write(key, make_record(0.5), make_arrays(seed=0))
    new_arrays = {"query_codes": np.zeros((2, 4), dtype=np.uint8)}

    path = store.write(key, make_record(0.9), new_arrays, force=True)

    assert json.loads((path / "record.json").read_text())["metrics"]["map"] == 0.9
    assert sorted(load_arrays(path)) == ["query_codes"]
    assert hidden_entries(path.parent) == []


def test_write_is_atomic_after_crash(tmp_path):
    store = RunStore(tmp_path)
    key = make_key()
    final = store.path(key)
    # A process killed mid-write leaves a hidden, half-filled temporary folder.
    crashed = final.parent / f".{final.name}.tmp-deadbeef0000"
    crashed.mkdir(parents=True)
    (crashed / "record.json").write_text('{"method": "dstdh", "metr')

    assert not store.exists(key)
    assert iter_runs(tmp_path) == []
    assert scan_runs(tmp_path).problems == []

    path = store.write(key, make_record(), make_arrays())

    assert store.exists(key)
    assert not crashed.exists()
    assert [record["run_path"] for record in iter_runs(tmp_path)] == [str(path)]


def test_interrupted_replacement_restores_old_run(tmp_path):
    store = RunStore(tmp_path)
    key = make_key()
    path = store.write(key, make_record(0.5), make_arrays())
    # A forced write killed between its two renames leaves the old run set aside.
    aside = path.parent / f".{path.name}.old-deadbeef0000"
    path.rename(aside)

    with pytest.raises(RunExistsError):
        store.write(key, make_record(0.9), make_arrays())

    assert json.loads((path / "record.json").read_text())["metrics"]["map"] == 0.5
    assert hidden_entries(path.parent) == []


def test_invalid_record_writes_nothing(tmp_path):
    store = RunStore(tmp_path)
    record = make_record()
    record["metrics"]["map"] = float("inf")

    with pytest.raises(ValueError, match=r"record must contain only JSON values .* metrics\.map is a non-finite float inf"):
        store.write(make_key(), record, make_arrays())

    assert list(tmp_path.iterdir()) == []


def test_conflicting_key_field_rejected(tmp_path):
    record = make_record()
    record["seed"] = 3

    with pytest.raises(ValueError, match=r"record\['seed'\] is 3 but the run key has 0"):
        RunStore(tmp_path).write(make_key(), record, make_arrays())


def test_matching_key_fields_accepted(tmp_path):
    key = make_key()
    record = {**make_record(), **key.as_record_fields(), "params": {"epochs": 10, "lr": 0.001}}

    path = RunStore(tmp_path).write(key, record, make_arrays())

    assert json.loads((path / "record.json").read_text())["seed"] == 0


@pytest.mark.parametrize(
    "arrays, error, message",
    [
        ([np.zeros(3)], TypeError, "arrays must be a dict of name to numpy array, got list"),
        ({"codes": [1, 2]}, TypeError, r"arrays\['codes'\] must be a numpy array, got list"),
        ({"bad name": np.zeros(3)}, ValueError, "array name 'bad name' is invalid"),
        ({"ids": np.array([1, "a"], dtype=object)}, TypeError, r"arrays\['ids'\] has dtype object"),
    ],
    ids=["list", "list-value", "space-in-name", "object-dtype"],
)
def test_write_rejects_bad_arrays(tmp_path, arrays, error, message):
    with pytest.raises(error, match=message):
        RunStore(tmp_path).write(make_key(), make_record(), arrays)

    assert list(tmp_path.iterdir()) == []


def test_path_rejects_non_key(tmp_path):
    with pytest.raises(TypeError, match="key must be a RunKey, got dict"):
        RunStore(tmp_path).path({"method": "itq"})


# ---------------------------------------------------------------------------------------------
# Reading


def test_iter_runs_reads_every_run(tmp_path):
    store = RunStore(tmp_path)
    keys = [make_key(seed=seed, n_bits=n_bits) for seed in (0, 1) for n_bits in (16, 32)]
    for key in keys:
        store.write(key, make_record(), make_arrays())

    records = iter_runs(tmp_path)

    assert sorted((r["seed"], r["n_bits"]) for r in records) == [(0, 16), (0, 32), (1, 16), (1, 32)]
    assert sorted(r["run_path"] for r in records) == sorted(str(store.path(k)) for k in keys)


def test_corrupt_record_skipped_with_warning(tmp_path, caplog):
    store = RunStore(tmp_path)
    good = store.write(make_key(seed=0), make_record(), make_arrays())
    bad = store.write(make_key(seed=1), make_record(), make_arrays())
    (bad / "record.json").write_text('{"method": "dstdh", ')

    with caplog.at_level(logging.WARNING, logger="hashbench.store"):
        scan = scan_runs(tmp_path)

    assert [record["run_path"] for record in scan.records] == [str(good)]
    assert [problem.path for problem in scan.problems] == [bad / "record.json"]
    assert "is not valid JSON" in scan.problems[0].reason
    assert str(bad / "record.json") in caplog.text


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[1, 2]", "contains a JSON list, not an object"),
        ('{"method": "itq"}', "lacks the key fields dataset, protocol, n_bits, seed, params, backbone"),
        (b"\xff\xfe", "cannot be read"),
    ],
    ids=["list", "missing-fields", "not-utf8"],
)
def test_unusable_record_reported(tmp_path, text, reason):
    folder = tmp_path / "somewhere"
    folder.mkdir()
    if isinstance(text, bytes):
        (folder / "record.json").write_bytes(text)
    else:
        (folder / "record.json").write_text(text)

    scan = scan_runs(tmp_path)

    assert scan.records == []
    assert reason in scan.problems[0].reason


def test_scan_missing_folder_is_empty(tmp_path):
    scan = scan_runs(tmp_path / "absent")

    assert scan.records == []
    assert scan.problems == []


def test_scan_rejects_file(tmp_path):
    file = tmp_path / "runs"
    file.write_text("")

    with pytest.raises(NotADirectoryError, match="is not a directory"):
        scan_runs(file)


def test_load_arrays_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no codes\.npz in"):
        load_arrays(tmp_path)


def test_store_accepts_str_folder(tmp_path):
    store = RunStore(str(tmp_path))

    assert store.path(make_key()) == Path(tmp_path) / make_key().relative_path
