"""MIRFlickr-25K loader, dataset definitions and registry, on the real data and on small fixtures."""

import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
from PIL import Image

from hashbench.data import (
    Dataset,
    DatasetError,
    dataset_status,
    list_datasets,
    load_dataset,
    load_split,
)
from hashbench.data.protocol import generate_protocol_file, read_protocol, split_hash

# Column order of all_labels.txt in the 20,015-image release.
MIRFLICKR_LABELS = [
    "animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor",
    "lake", "male", "night", "people", "plant_life", "portrait", "river", "sea", "sky",
    "structures", "sunset", "transport", "tree", "water",
]  # fmt: skip

METADATA_FILES = ["all_imgs.txt", "all_labels.txt", "all_tags.txt", "Concepts/TagList.txt"]


def normalized_sha256(data):
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirflickr_folder(data_root):
    folder = data_root / "mirflickr25k"
    if not folder.is_dir():
        pytest.skip(f"{folder} does not exist; the MIRFlickr-25K tests need it")
    return folder


@pytest.fixture(scope="module")
def mirflickr(mirflickr_folder):
    return load_dataset("mirflickr25k", mirflickr_folder.parent)


def copy_metadata(source, target_root, *, line_end=None):
    """Copy the four metadata files (no images) into ``target_root/mirflickr25k``."""
    for name in METADATA_FILES:
        data = (source / name).read_bytes()
        if line_end == "\n":
            data = data.replace(b"\r\n", b"\n")
        target = target_root / "mirflickr25k" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return target_root / "mirflickr25k"


def test_registry_lists_mirflickr():
    assert "mirflickr25k" in list_datasets()


def test_unknown_dataset_lists_known():
    with pytest.raises(ValueError, match=r"Unknown dataset 'flickr30k'\. Registered datasets: .*mirflickr25k"):
        load_dataset("flickr30k", ".")


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("n_items", 20015),
        ("n_present", 11644),
        ("labels.shape", (20015, 24)),
        ("tags.shape", (20015, 1386)),
        ("len(tag_vocabulary)", 1386),
        ("len(image_paths)", 20015),
    ],
)
def test_mirflickr_counts(mirflickr, attribute, expected):
    values = {
        "n_items": mirflickr.n_items,
        "n_present": mirflickr.n_present,
        "labels.shape": mirflickr.labels.shape,
        "tags.shape": mirflickr.tags.shape,
        "len(tag_vocabulary)": len(mirflickr.tag_vocabulary),
        "len(image_paths)": len(mirflickr.image_paths),
    }
    assert values[attribute] == expected


def test_mirflickr_types(mirflickr):
    assert isinstance(mirflickr, Dataset)
    assert mirflickr.ids.dtype == np.int64
    assert mirflickr.present.dtype == bool
    assert mirflickr.labels.dtype == np.uint8
    assert isinstance(mirflickr.tags, sp.csr_matrix)
    assert mirflickr.tags.dtype == np.float32


def test_mirflickr_label_names(mirflickr):
    assert mirflickr.label_names == MIRFLICKR_LABELS


def test_ids_parsed_from_image_names(mirflickr):
    names = [path.name for path in mirflickr.image_paths]
    assert names == [f"im{item_id}.jpg" for item_id in mirflickr.ids]
    assert len(np.unique(mirflickr.ids)) == mirflickr.n_items
    assert mirflickr.ids[0] == 1
    assert mirflickr.ids[-1] == 25000


def test_crlf_removed_from_paths_and_tags(mirflickr):
    assert not any("\r" in str(path) for path in mirflickr.image_paths)
    assert not any("\r" in tag or tag != tag.strip() for tag in mirflickr.tag_vocabulary)


def test_first_row_matches_files(mirflickr, mirflickr_folder):
    # The first line of each file, read here independently of the loader.
    label_line = (mirflickr_folder / "all_labels.txt").read_bytes().split(b"\r\n")[0].decode()
    tag_line = (mirflickr_folder / "all_tags.txt").read_bytes().split(b"\r\n")[0].decode()
    expected_labels = [name for name, value in zip(MIRFLICKR_LABELS, label_line.split()) if value == "1"]
    row_tags = mirflickr.tags[0].indices

    assert [MIRFLICKR_LABELS[i] for i in np.flatnonzero(mirflickr.labels[0])] == expected_labels
    assert {mirflickr.tag_vocabulary[i] for i in row_tags} == set(tag_line.split(","))


def test_labels_and_tags_binary(mirflickr):
    assert set(np.unique(mirflickr.labels)) == {0, 1}
    assert set(np.unique(mirflickr.tags.data)) == {1.0}


def test_every_item_has_label_and_tag(mirflickr):
    assert mirflickr.labels.sum(axis=1).min() >= 1
    assert np.diff(mirflickr.tags.indptr).min() >= 1


def test_present_matches_files(mirflickr):
    rows = np.random.default_rng(0).choice(mirflickr.n_items, size=300, replace=False)
    assert [mirflickr.image_paths[row].is_file() for row in rows] == mirflickr.present[rows].tolist()


def test_present_images_are_first_15000(mirflickr):
    # Only im1.jpg ... im15000.jpg lie in the data root.
    np.testing.assert_array_equal(mirflickr.present, mirflickr.ids <= 15000)


def test_lf_copy_loads_identically(mirflickr, mirflickr_folder, tmp_path):
    copy_metadata(mirflickr_folder, tmp_path, line_end="\n")
    copy = load_dataset("mirflickr25k", tmp_path)

    np.testing.assert_array_equal(copy.ids, mirflickr.ids)
    np.testing.assert_array_equal(copy.labels, mirflickr.labels)
    assert (copy.tags != mirflickr.tags).nnz == 0
    assert copy.tag_vocabulary == mirflickr.tag_vocabulary
    assert copy.n_present == 0


def test_checksum_mismatch_names_file_and_hashes(mirflickr_folder, tmp_path):
    folder = copy_metadata(mirflickr_folder, tmp_path)
    labels = folder / "all_labels.txt"
    data = bytearray(labels.read_bytes())
    data[0] = ord("1") if data[0] == ord("0") else ord("0")
    labels.write_bytes(bytes(data))
    expected = "9a5d6a8b883efcdd5a98cfbe002739e7a5c2b7aa1435455e8034ed7454c086f0"
    found = normalized_sha256(bytes(data))

    with pytest.raises(DatasetError, match=rf"{re.escape(str(labels))} has SHA-256 {found}, expected {expected}"):
        load_dataset("mirflickr25k", tmp_path)


def test_missing_data_root_names_setting(tmp_path):
    absent = tmp_path / "absent"
    with pytest.raises(DatasetError, match=rf"Data root {re.escape(str(absent))} does not exist.*HASHBENCH_DATA.*--data-root"):
        load_dataset("mirflickr25k", absent)


def test_missing_dataset_folder_names_it(tmp_path):
    with pytest.raises(DatasetError, match=rf"Dataset folder {re.escape(str(tmp_path / 'mirflickr25k'))} does not exist"):
        load_dataset("mirflickr25k", tmp_path)


def test_status_on_real_data(mirflickr_folder):
    status = dataset_status("mirflickr25k", mirflickr_folder.parent)
    assert status["found"] is True
    assert status["n_items"] == 20015
    assert status["n_images_present"] == 11644
    assert "11,644 of 20,015 listed images present" in status["message"]
    assert status["description"].startswith("MIRFlickr-25K")


def test_status_without_data_root(tmp_path):
    status = dataset_status("mirflickr25k", tmp_path / "absent")
    assert status["found"] is False
    assert status["n_items"] == 0
    assert "HASHBENCH_DATA" in status["message"]


# --------------------------------------------------------------------------------------------
# Small fixtures written into tmp_path
# --------------------------------------------------------------------------------------------

FIXTURE_LABELS = ["animals", "sky", "water"]
FIXTURE_VOCABULARY = ["sea", "sunset", "dog", "españa"]
# (item id, label row, tag row), in file order
FIXTURE_ROWS = [
    (1, "1 0 0", "dog"),
    (4, "0 1 1", "sea,sunset"),
    (7, "0 1 0", "sunset"),
    (9, "1 0 1", "dog,sea"),
    (12, "0 0 1", "españa"),
    (20, "1 1 0", "sea,dog,sunset"),
]


def write_fixture(
    base,
    *,
    line_end="\r\n",
    image_lines=None,
    label_lines=None,
    tag_lines=None,
    vocabulary=None,
    present_ids=None,
    extra_toml="",
):
    """Write a MIRFlickr-style dataset and its definition; return (data root, definitions folder)."""
    image_lines = image_lines if image_lines is not None else [f"mirflickr/im{i}.jpg" for i, _, _ in FIXTURE_ROWS]
    label_lines = label_lines if label_lines is not None else [labels for _, labels, _ in FIXTURE_ROWS]
    tag_lines = tag_lines if tag_lines is not None else [tags for _, _, tags in FIXTURE_ROWS]
    vocabulary = vocabulary if vocabulary is not None else FIXTURE_VOCABULARY
    present_ids = present_ids if present_ids is not None else [i for i, _, _ in FIXTURE_ROWS]

    root = base / "data"
    folder = root / "mirflickr25k"
    contents = {
        "all_imgs.txt": image_lines,
        "all_labels.txt": label_lines,
        "all_tags.txt": tag_lines,
        "Concepts/TagList.txt": vocabulary,
    }
    checksums = {}
    for name, lines in contents.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(line + line_end for line in lines).encode("utf-8")
        path.write_bytes(data)
        checksums[name] = normalized_sha256(data)

    (folder / "mirflickr").mkdir()
    for item_id in present_ids:
        Image.new("RGB", (8, 8), (item_id % 256, 0, 0)).save(folder / "mirflickr" / f"im{item_id}.jpg")

    definitions = base / "datasets"
    definitions.mkdir()
    (definitions / "mirflickr25k.toml").write_text(
        f"""
description = "Fixture"
folder = "mirflickr25k"
label_names = {json.dumps(FIXTURE_LABELS)}
standard_protocol = "mirflickr25k-standard"
{extra_toml}
[counts]
items = {len(image_lines)}
labels = {len(FIXTURE_LABELS)}
tags = {len(vocabulary)}

[files.image_list]
path = "all_imgs.txt"
sha256 = "{checksums['all_imgs.txt']}"

[files.labels]
path = "all_labels.txt"
sha256 = "{checksums['all_labels.txt']}"

[files.tags]
path = "all_tags.txt"
sha256 = "{checksums['all_tags.txt']}"

[files.tag_vocabulary]
path = "Concepts/TagList.txt"
sha256 = "{checksums['Concepts/TagList.txt']}"

[protocols.mirflickr25k-standard]
file = "mirflickr25k/mirflickr25k-standard.v1.json"
version = 1
seed = 3
n_query = 2
n_train = 2
""",
        encoding="utf-8",
    )
    return root, definitions


def load_fixture(root, definitions):
    return load_dataset("mirflickr25k", root, datasets_dir=definitions)


@pytest.mark.parametrize("line_end", ["\r\n", "\n"], ids=["crlf", "lf"])
def test_fixture_parses(tmp_path, line_end):
    dataset = load_fixture(*write_fixture(tmp_path, line_end=line_end))

    np.testing.assert_array_equal(dataset.ids, [1, 4, 7, 9, 12, 20])
    np.testing.assert_array_equal(dataset.labels[1], [0, 1, 1])
    assert dataset.tag_vocabulary == FIXTURE_VOCABULARY
    np.testing.assert_array_equal(dataset.tags.toarray()[5], [1, 1, 1, 0])
    np.testing.assert_array_equal(dataset.tags.toarray()[4], [0, 0, 0, 1])
    assert dataset.present.all()


def test_fixture_without_final_line_end(tmp_path):
    root, definitions = write_fixture(tmp_path)
    labels = root / "mirflickr25k" / "all_labels.txt"
    labels.write_bytes(labels.read_bytes()[:-2])
    toml = definitions / "mirflickr25k.toml"
    old = normalized_sha256(labels.read_bytes() + b"\r\n")
    toml.write_text(toml.read_text().replace(old, normalized_sha256(labels.read_bytes())))

    dataset = load_fixture(root, definitions)
    np.testing.assert_array_equal(dataset.labels[-1], [1, 1, 0])


def test_repeated_tag_counts_once(tmp_path):
    tags = [row[2] for row in FIXTURE_ROWS]
    tags[0] = "dog,dog"
    dataset = load_fixture(*write_fixture(tmp_path, tag_lines=tags))
    np.testing.assert_array_equal(dataset.tags.toarray()[0], [0, 0, 1, 0])


def test_empty_tag_row_is_zero(tmp_path):
    tags = [row[2] for row in FIXTURE_ROWS]
    tags[2] = ""
    dataset = load_fixture(*write_fixture(tmp_path, tag_lines=tags))
    assert dataset.tags[2].nnz == 0


def test_present_follows_image_files(tmp_path):
    dataset = load_fixture(*write_fixture(tmp_path, present_ids=[4, 12]))
    np.testing.assert_array_equal(dataset.present, [False, True, False, False, True, False])


def replaced(lines, index, value):
    lines = list(lines)
    if value is None:
        del lines[index]
    else:
        lines[index] = value
    return lines


LABEL_LINES = [row[1] for row in FIXTURE_ROWS]
TAG_LINES = [row[2] for row in FIXTURE_ROWS]
IMAGE_LINES = [f"mirflickr/im{row[0]}.jpg" for row in FIXTURE_ROWS]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"label_lines": LABEL_LINES[:-1]},
            r"all_labels.txt has 5 rows but .*all_imgs.txt lists 6 images: line 6 and later are missing",
        ),
        (
            {"label_lines": LABEL_LINES + ["0 0 1"]},
            r"all_labels.txt has 7 rows but .*all_imgs.txt lists 6 images: line 7 has no image",
        ),
        (
            {"tag_lines": TAG_LINES[:-2]},
            r"all_tags.txt has 4 rows but .*all_imgs.txt lists 6 images: line 5 and later are missing",
        ),
        (
            {"label_lines": replaced(LABEL_LINES, 2, "0 1")},
            r"all_labels.txt line 3: expected 3 space-separated 0/1 values, found 2",
        ),
        (
            {"label_lines": replaced(LABEL_LINES, 3, "1 2 0")},
            r"all_labels.txt line 4: labels must be 0 or 1, found '2'",
        ),
        (
            {"tag_lines": replaced(TAG_LINES, 1, "sea,zebra")},
            r"all_tags.txt line 2: tag 'zebra' is not in the vocabulary .*TagList.txt \(4 tags\)",
        ),
        (
            {"tag_lines": replaced(TAG_LINES, 1, "sea,,dog")},
            r"all_tags.txt line 2: tag '' is not in the vocabulary",
        ),
        (
            {"image_lines": replaced(IMAGE_LINES, 1, "mirflickr/photo4.png")},
            r"all_imgs.txt line 2: expected a relative image path such as 'mirflickr/im1.jpg', got 'mirflickr/photo4.png'",
        ),
        (
            {"image_lines": replaced(IMAGE_LINES, 3, "mirflickr/im1.jpg")},
            r"all_imgs.txt line 4: image id 1 is already listed on line 1",
        ),
        (
            {"vocabulary": FIXTURE_VOCABULARY + ["sea"]},
            r"TagList.txt line 5: tag 'sea' already appears on line 1",
        ),
        (
            {"vocabulary": ["sea", "", "sunset", "dog", "españa"]},
            r"TagList.txt line 2: empty tag",
        ),
    ],
    ids=[
        "missing-labels-row",
        "extra-labels-row",
        "missing-tags-rows",
        "short-labels-row",
        "non-binary-label",
        "tag-outside-vocabulary",
        "empty-tag",
        "bad-image-path",
        "repeated-image",
        "repeated-vocabulary-tag",
        "empty-vocabulary-line",
    ],
)
def test_malformed_file_names_line(tmp_path, changes, message):
    root, definitions = write_fixture(tmp_path, **changes)
    with pytest.raises(DatasetError, match=message):
        load_fixture(root, definitions)


@pytest.mark.parametrize("name", METADATA_FILES)
def test_missing_metadata_file(tmp_path, name):
    root, definitions = write_fixture(tmp_path)
    path = root / "mirflickr25k" / name
    path.unlink()
    with pytest.raises(DatasetError, match=rf"Metadata file {re.escape(str(path))} is missing"):
        load_fixture(root, definitions)


@pytest.mark.parametrize("name", METADATA_FILES)
def test_status_names_missing_file(tmp_path, name):
    root, definitions = write_fixture(tmp_path)
    (root / "mirflickr25k" / name).unlink()
    status = dataset_status("mirflickr25k", root, datasets_dir=definitions)
    assert status["found"] is False
    assert name in status["message"]


def test_fixture_checksum_mismatch(tmp_path):
    root, definitions = write_fixture(tmp_path)
    tags = root / "mirflickr25k" / "all_tags.txt"
    tags.write_bytes(tags.read_bytes().replace(b"sunset", b"sea", 1))
    found = normalized_sha256(tags.read_bytes())
    with pytest.raises(DatasetError, match=rf"all_tags.txt has SHA-256 {found}, expected [0-9a-f]{{64}}"):
        load_fixture(root, definitions)


def test_count_differs_from_definition(tmp_path):
    root, definitions = write_fixture(tmp_path)
    toml = definitions / "mirflickr25k.toml"
    toml.write_text(toml.read_text().replace("items = 6", "items = 7"))
    with pytest.raises(DatasetError, match=r"all_imgs.txt has 6 images, expected 7 \(counts.items"):
        load_fixture(root, definitions)


def test_missing_image_folder_loads(tmp_path):
    root, definitions = write_fixture(tmp_path)
    shutil.rmtree(root / "mirflickr25k" / "mirflickr")
    dataset = load_fixture(root, definitions)
    assert dataset.n_present == 0


def test_missing_image_folder_status(tmp_path):
    root, definitions = write_fixture(tmp_path)
    shutil.rmtree(root / "mirflickr25k" / "mirflickr")
    status = dataset_status("mirflickr25k", root, datasets_dir=definitions)
    assert status["found"] is True
    assert status["n_images_present"] == 0
    assert status["message"].startswith("No listed image found in")


def test_missing_image_folder_split_fails(tmp_path):
    root, definitions = write_fixture(tmp_path)
    generate_protocol_file("mirflickr25k", root, datasets_dir=definitions)
    shutil.rmtree(root / "mirflickr25k" / "mirflickr")
    dataset = load_fixture(root, definitions)

    with pytest.raises(DatasetError, match=r"Found 0 of the 6 images .*--allow-partial"):
        load_split(dataset)
    with pytest.raises(DatasetError, match=r"None of the query images of protocol mirflickr25k-standard is present"):
        load_split(dataset, allow_partial=True)


@pytest.mark.parametrize(
    ("extra_toml", "message"),
    [
        ('colour = "red"\n', r"mirflickr25k.toml: unknown key 'colour' in the top level"),
        ("image_note = 3\n", r"mirflickr25k.toml: key 'image_note' in the top level must be of type str, got int 3"),
    ],
    ids=["unknown-key", "wrong-type"],
)
def test_definition_rejects_bad_top_level(tmp_path, extra_toml, message):
    root, definitions = write_fixture(tmp_path, extra_toml=extra_toml)
    with pytest.raises(ValueError, match=message):
        load_fixture(root, definitions)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("tags = 4", "tags = 4\nimages = 6", r"unknown key 'images' in \[counts\]"),
        ("n_train = 2", "n_train = 2\nn_val = 1", r"unknown key 'n_val' in \[protocols.mirflickr25k-standard\]"),
        ('path = "all_tags.txt"', 'path = "all_tags.txt"\nsize = 1', r"unknown key 'size' in \[files.tags\]"),
        ("[files.labels]", "[files.captions]\npath = 'a'\nsha256 = 'b'\n[files.labels]", r"unknown key 'captions' in \[files\]"),
        ("version = 1", "", r"missing key 'version' in \[protocols.mirflickr25k-standard\]"),
        ("version = 1", "version = true", r"key 'version' in \[protocols.mirflickr25k-standard\] must be of type int"),
        ('standard_protocol = "mirflickr25k-standard"', 'standard_protocol = "other"', r"'standard_protocol' names 'other'"),
        ("labels = 3", "labels = 4", r"'label_names' has 3 entries but counts.labels is 4"),
    ],
    ids=[
        "counts-key",
        "protocol-key",
        "file-key",
        "file-role",
        "missing-version",
        "bool-version",
        "unknown-standard",
        "label-count",
    ],
)
def test_definition_rejects_bad_key(tmp_path, old, new, message):
    root, definitions = write_fixture(tmp_path)
    toml = definitions / "mirflickr25k.toml"
    text = toml.read_text(encoding="utf-8")
    assert old in text
    toml.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"mirflickr25k.toml: .*{message}"):
        load_fixture(root, definitions)


def test_definition_checksum_must_be_hex(tmp_path):
    root, definitions = write_fixture(tmp_path)
    toml = definitions / "mirflickr25k.toml"
    text = re.sub(r'sha256 = "[0-9a-f]{64}"', 'sha256 = "ABC"', toml.read_text(encoding="utf-8"), count=1)
    toml.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"'sha256' in \[files.image_list\] must be 64 lowercase hexadecimal digits, got 'ABC'"):
        load_fixture(root, definitions)


def test_fixture_split_complete(tmp_path):
    root, definitions = write_fixture(tmp_path)
    protocol, path, written = generate_protocol_file("mirflickr25k", root, datasets_dir=definitions)
    dataset = load_fixture(root, definitions)
    split = load_split(dataset)

    assert written is True
    assert split.partial is False
    assert "partial_split_hash" not in split.to_record()
    np.testing.assert_array_equal(dataset.ids[split.query], protocol.query)
    np.testing.assert_array_equal(np.sort(np.concatenate([split.query, split.database])), np.arange(6))


def test_fixture_split_partial(tmp_path):
    root, definitions = write_fixture(tmp_path)
    protocol, _, _ = generate_protocol_file("mirflickr25k", root, datasets_dir=definitions)
    missing = sorted({int(protocol.database[0]), int(protocol.train[0])})
    for item_id in missing:
        (root / "mirflickr25k" / "mirflickr" / f"im{item_id}.jpg").unlink()
    dataset = load_fixture(root, definitions)
    split = load_split(dataset, allow_partial=True)
    restricted = {name: dataset.ids[getattr(split, name)] for name in ("query", "database", "train")}

    assert split.partial is True
    assert len(split.database) == len(protocol.database) - len(missing)
    assert not set(missing) & set(restricted["database"].tolist())
    assert split.partial_split_hash == split_hash(restricted["query"], restricted["database"], restricted["train"])


def test_protocol_ids_outside_dataset(tmp_path):
    root, definitions = write_fixture(tmp_path)
    generate_protocol_file("mirflickr25k", root, datasets_dir=definitions)
    # Publish the protocol, then list image 20 under another id in fresh metadata.
    protocol_file = definitions / "mirflickr25k" / "mirflickr25k-standard.v1.json"
    stored = read_protocol(protocol_file)
    other = tmp_path / "other"
    other_root, other_definitions = write_fixture(other, image_lines=IMAGE_LINES[:-1] + ["mirflickr/im21.jpg"])
    (other_definitions / "mirflickr25k").mkdir()
    shutil.copy(protocol_file, other_definitions / "mirflickr25k")
    dataset = load_fixture(other_root, other_definitions)
    list_name = next(name for name in ("query", "database") if 20 in getattr(stored, name))

    with pytest.raises(DatasetError, match=rf"1 {list_name} ids are not listed by dataset 'mirflickr25k' \(first: 20\)"):
        load_split(dataset)

