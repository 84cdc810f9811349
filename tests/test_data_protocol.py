"""Versioned split protocols: the published MIRFlickr-25K split, its hash and its generator."""

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from hashbench.data import DatasetError, load_dataset, load_split
from hashbench.data.__main__ import main
from hashbench.data.protocol import (
    Protocol,
    generate_split,
    read_protocol,
    split_hash,
    write_protocol,
)
from hashbench.paths import DATASETS_DIR

STANDARD_FILE = DATASETS_DIR / "mirflickr25k" / "mirflickr25k-standard.v1.json"
STANDARD_HASH = "36f8671c760f26553e13f559b908ce06303acb0a09e26ddf548a91ea7ae5e2d0"


@pytest.fixture(scope="module")
def standard():
    return read_protocol(STANDARD_FILE)


@pytest.fixture(scope="module")
def mirflickr(data_root):
    if not (data_root / "mirflickr25k").is_dir():
        pytest.skip(f"{data_root / 'mirflickr25k'} does not exist; the MIRFlickr-25K tests need it")
    return load_dataset("mirflickr25k", data_root)


# --------------------------------------------------------------------------------------------
# Hash and generator
# --------------------------------------------------------------------------------------------


def test_split_hash_canonical_bytes():
    expected = hashlib.sha256(b"query:1,3\ndatabase:2,10\ntrain:\n").hexdigest()
    assert split_hash([3, 1], [10, 2], []) == expected


def test_split_hash_depends_on_list():
    assert split_hash([1], [2], [2]) != split_hash([2], [1], [1])


def test_generate_split_partitions_ids():
    ids = np.arange(100, 200)
    lists = generate_split(ids, seed=5, n_query=10, n_train=30)

    assert len(lists["query"]) == 10
    assert len(lists["database"]) == 90
    assert len(lists["train"]) == 30
    assert not set(lists["query"]) & set(lists["database"])
    assert set(lists["train"]) <= set(lists["database"])
    np.testing.assert_array_equal(np.sort(np.concatenate([lists["query"], lists["database"]])), ids)


def test_generate_split_ignores_id_order():
    ids = np.arange(50)
    forward = generate_split(ids, seed=1, n_query=5, n_train=10)
    shuffled = generate_split(ids[::-1], seed=1, n_query=5, n_train=10)
    for name in ("query", "database", "train"):
        np.testing.assert_array_equal(forward[name], shuffled[name])


@pytest.mark.parametrize(
    ("ids", "n_query", "n_train", "message"),
    [
        ([1, 2, 2, 3], 1, 1, r"ids must be a 1-D array of unique item ids"),
        ([1, 2, 3], 2, 2, r"n_query=2 and n_train=2 must be positive and together at most the number of items, 3"),
        ([1, 2, 3], 0, 1, r"n_query=0 and n_train=1 must be positive"),
    ],
    ids=["repeated-id", "too-many", "zero-queries"],
)
def test_generate_split_rejects(ids, n_query, n_train, message):
    with pytest.raises(ValueError, match=message):
        generate_split(ids, seed=0, n_query=n_query, n_train=n_train)


# --------------------------------------------------------------------------------------------
# The published file
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("name", "mirflickr25k-standard"),
        ("version", 1),
        ("dataset", "mirflickr25k"),
        ("seed", 0),
        ("split_hash", STANDARD_HASH),
    ],
)
def test_standard_file_header(standard, attribute, expected):
    assert getattr(standard, attribute) == expected


@pytest.mark.parametrize(("name", "count"), [("query", 2000), ("database", 18015), ("train", 10000)])
def test_standard_file_counts(standard, name, count):
    assert len(getattr(standard, name)) == count


def test_standard_lists_disjoint(standard):
    assert len(np.intersect1d(standard.query, standard.database)) == 0
    assert len(np.setdiff1d(standard.train, standard.database)) == 0


def test_standard_regenerates_identically(mirflickr, standard):
    lists = generate_split(mirflickr.ids, seed=standard.seed, n_query=2000, n_train=10000)
    for name in ("query", "database", "train"):
        np.testing.assert_array_equal(lists[name], getattr(standard, name))
    assert split_hash(lists["query"], lists["database"], lists["train"]) == STANDARD_HASH


def test_other_seed_other_split(mirflickr):
    lists = generate_split(mirflickr.ids, seed=1, n_query=2000, n_train=10000)
    assert split_hash(lists["query"], lists["database"], lists["train"]) != STANDARD_HASH


def test_generate_command_reproduces_file(data_root, mirflickr, tmp_path):
    output = tmp_path / "standard.json"
    status = main(["generate", "mirflickr25k", "--data-root", str(data_root), "--output", str(output)])
    assert status == 0
    assert output.read_bytes() == STANDARD_FILE.read_bytes()


def test_generate_command_keeps_published_file(data_root, mirflickr, tmp_path, capsys):
    output = tmp_path / "standard.json"
    shutil.copy(STANDARD_FILE, output)
    status = main(["generate", "mirflickr25k", "--data-root", str(data_root), "--output", str(output)])
    assert status == 0
    assert "unchanged, identical split" in capsys.readouterr().out


def test_generate_command_refuses_other_split(data_root, mirflickr, tmp_path, capsys):
    output = tmp_path / "standard.json"
    other = generate_split(np.arange(1, 101), seed=0, n_query=10, n_train=20)
    write_protocol(protocol_from_lists(other), output)
    before = output.read_bytes()

    status = main(["generate", "mirflickr25k", "--data-root", str(data_root), "--output", str(output)])
    assert status == 1
    assert "Published protocol files are never edited" in capsys.readouterr().err
    assert output.read_bytes() == before


# --------------------------------------------------------------------------------------------
# Edited protocol files
# --------------------------------------------------------------------------------------------


def protocol_from_lists(lists, **header):
    values = {
        "name": "test",
        "version": 1,
        "dataset": "mirflickr25k",
        "seed": 0,
        "generator": "test",
        "numpy_version": np.__version__,
    }
    values.update(header)
    return Protocol(split_hash=split_hash(lists["query"], lists["database"], lists["train"]), **values, **lists)


def edit_swap_query_and_database(raw):
    query, database = raw["query"], raw["database"]
    query[0], database[0] = database[0], query[0]
    raw["query"], raw["database"] = sorted(query), sorted(database)


def edit_drop_train(raw):
    raw["train"] = raw["train"][1:]


def edit_unsort_query(raw):
    raw["query"][0], raw["query"][1] = raw["query"][1], raw["query"][0]


def edit_overlap(raw):
    raw["database"] = sorted(raw["database"][1:] + [raw["query"][0]])


def edit_train_outside(raw):
    raw["train"] = sorted(raw["train"][1:] + [raw["query"][0]])


def edit_add_key(raw):
    raw["notes"] = "x"


def edit_drop_key(raw):
    del raw["seed"]


def edit_string_seed(raw):
    raw["seed"] = "0"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (edit_swap_query_and_database, r"the id lists have split hash [0-9a-f]{64}, expected " + STANDARD_HASH),
        (edit_drop_train, r"counts.train is 10000 but the 'train' list has 9999 ids"),
        (edit_unsort_query, r"'query' must be sorted ascending without repeats, but entry 1 \(\d+\) follows \d+"),
        (edit_overlap, r"1 ids are both queries and database items"),
        (edit_train_outside, r"1 training ids are not in the database"),
        (edit_add_key, r"unknown key 'notes'"),
        (edit_drop_key, r"missing key 'seed'"),
        (edit_string_seed, r"'seed' must be an integer, found '0'"),
    ],
    ids=["hash", "count", "unsorted", "overlap", "train-outside", "unknown-key", "missing-key", "string-seed"],
)
def test_edited_protocol_rejected(tmp_path, edit, message):
    raw = json.loads(STANDARD_FILE.read_text())
    edit(raw)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match=rf"Protocol file {re.escape(str(path))}: {message}"):
        read_protocol(path)


def test_missing_protocol_file(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(DatasetError, match=rf"Protocol file {re.escape(str(path))} does not exist"):
        read_protocol(path)


def test_protocol_file_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(DatasetError, match=r"broken.json is not valid JSON"):
        read_protocol(path)


def test_write_protocol_round_trips(tmp_path):
    protocol = protocol_from_lists(generate_split(np.arange(30), seed=2, n_query=3, n_train=5))
    path = tmp_path / "sub" / "p.v1.json"

    assert write_protocol(protocol, path) is True
    assert write_protocol(protocol, path) is False
    assert read_protocol(path).split_hash == protocol.split_hash
    assert [entry.name for entry in path.parent.iterdir()] == ["p.v1.json"]


# --------------------------------------------------------------------------------------------
# Splits of the real data
# --------------------------------------------------------------------------------------------


def test_split_requires_allow_partial(mirflickr, data_root):
    expected = (
        rf"Found 11,644 of the 20,015 images listed by mirflickr25k in the data root "
        rf"{re.escape(str(data_root))}\. .*Pass --allow-partial"
    )
    with pytest.raises(DatasetError, match=expected):
        load_split(mirflickr)


def test_unknown_protocol_lists_known(mirflickr):
    with pytest.raises(ValueError, match=r"Unknown protocol 'random' for dataset 'mirflickr25k'\. Known protocols: mirflickr25k-standard\."):
        load_split(mirflickr, "random")


@pytest.fixture(scope="module")
def partial_split(mirflickr):
    return load_split(mirflickr, allow_partial=True)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("protocol", "mirflickr25k-standard"),
        ("version", 1),
        ("split_hash", STANDARD_HASH),
        ("partial", True),
        ("n_query", 1176),
        ("n_database", 10468),
        ("n_train", 5799),
        ("n_listed", 20015),
        ("n_present", 11644),
    ],
)
def test_partial_split_record(partial_split, key, expected):
    assert partial_split.to_record()[key] == expected


def test_partial_record_is_json(partial_split):
    record = json.loads(json.dumps(partial_split.to_record()))
    assert record == partial_split.to_record()


def test_partial_split_hash_of_restricted_ids(partial_split, mirflickr):
    ids = [mirflickr.ids[getattr(partial_split, name)] for name in ("query", "database", "train")]
    assert partial_split.to_record()["partial_split_hash"] == split_hash(*ids)


def test_partial_split_only_present(partial_split, mirflickr):
    for name in ("query", "database", "train"):
        assert mirflickr.present[getattr(partial_split, name)].all()


def test_partial_split_counts_match_protocol(partial_split, mirflickr, standard):
    present_ids = set(mirflickr.ids[mirflickr.present].tolist())
    for name in ("query", "database", "train"):
        expected = sum(1 for item_id in getattr(standard, name).tolist() if item_id in present_ids)
        assert len(getattr(partial_split, name)) == expected


def test_partial_split_disjoint(partial_split):
    assert len(np.intersect1d(partial_split.query, partial_split.database)) == 0
    assert len(np.setdiff1d(partial_split.train, partial_split.database)) == 0
    assert len(partial_split.query) + len(partial_split.database) == 11644


def test_split_rows_sorted_int64(partial_split):
    for name in ("query", "database", "train"):
        rows = getattr(partial_split, name)
        assert rows.dtype == np.int64
        assert np.all(np.diff(rows) > 0)


def test_split_rows_map_to_protocol_ids(partial_split, mirflickr, standard):
    assert set(mirflickr.ids[partial_split.query].tolist()) <= set(standard.query.tolist())


def test_recipe_mismatch_rejected(mirflickr, tmp_path, data_root):
    definitions = tmp_path / "datasets"
    shutil.copytree(DATASETS_DIR / "mirflickr25k", definitions / "mirflickr25k")
    toml = (DATASETS_DIR / "mirflickr25k.toml").read_text(encoding="utf-8")
    assert "seed = 0" in toml
    (definitions / "mirflickr25k.toml").write_text(toml.replace("seed = 0", "seed = 7"), encoding="utf-8")
    dataset = load_dataset("mirflickr25k", data_root, datasets_dir=definitions)

    with pytest.raises(DatasetError, match=r"seed is 0, expected 7 as \[protocols.mirflickr25k-standard\]"):
        load_split(dataset, allow_partial=True)
