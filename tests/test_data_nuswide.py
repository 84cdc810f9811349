"""NUS-WIDE loader on small fixtures in the official and the repackaged .mat layout."""

import logging

import numpy as np
import pytest
import scipy.io

from hashbench.data import DatasetError, dataset_status, load_dataset, load_split
from hashbench.data.nuswide import select_frequent_concepts
from hashbench.data.protocol import split_hash
from hashbench.paths import DATASETS_DIR

CONCEPTS = ["alpha", "beta", "gamma", "delta", "epsilon"]
# Rows per concept: alpha 20, gamma 15 and delta 12 are the 3 most frequent.
N_LISTED = 40
N_TAGS = 6
TOP = ["alpha", "gamma", "delta"]


def _labels():
    labels = np.zeros((N_LISTED, len(CONCEPTS)), dtype=np.uint8)
    labels[:20, 0] = 1
    labels[30:35, 1] = 1
    labels[5:20, 2] = 1
    labels[18:30, 3] = 1
    return labels


def _tags():
    return (np.random.default_rng(0).random((N_LISTED, N_TAGS)) < 0.4).astype(np.uint8)


def _n_kept():
    return int(_labels()[:, [0, 2, 3]].any(axis=1).sum())


def _write_definitions(tmp_path, *, items=None, pinned=None, label_names=TOP):
    definitions = tmp_path / "definitions"
    definitions.mkdir(exist_ok=True)
    text = (DATASETS_DIR / "nuswide.toml").read_text(encoding="utf-8")
    start = text.index("label_names = [")
    stop = text.index("]", start) + 1
    text = text[:start] + f"label_names = {label_names!r}".replace("'", '"') + text[stop:]
    start = text.index("[counts]")
    stop = text.index("# No metadata")
    text = text[:start] + (
        f"[counts]\nitems = {items if items is not None else _n_kept()}\nlisted_items = {N_LISTED}\n"
        f"labels = 3\nconcepts = {len(CONCEPTS)}\ntags = {N_TAGS}\n\n"
    ) + text[stop:]
    text = text.replace("n_query = 2100", "n_query = 3").replace("n_train = 10500", "n_train = 6")
    if pinned is not None:
        text = text.replace("generate_on_load = true", f'generate_on_load = true\nsplit_hash = "{pinned}"')
    (definitions / "nuswide.toml").write_text(text, encoding="utf-8")
    return definitions


def _rows_text(matrix):
    return "".join(" ".join(str(value) for value in row) + " \r\n" for row in matrix)


def _write_official(root, *, label_matrix=False, with_images=(0, 1)):
    folder = root / "nuswide"
    (folder / "ImageList").mkdir(parents=True)
    lines = [f"C:\\ImageData\\Flickr\\{CONCEPTS[row % 5]}\\{row:04d}_{1000 + row}.jpg" for row in range(N_LISTED)]
    (folder / "ImageList" / "Imagelist.txt").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    (folder / "Concepts81.txt").write_text("\n".join(CONCEPTS) + "\n", encoding="utf-8")
    labels = _labels()
    if label_matrix:
        (folder / "AllLabels81.txt").write_text(_rows_text(labels), encoding="utf-8")
    else:
        (folder / "Groundtruth" / "AllLabels").mkdir(parents=True)
        for column, name in enumerate(CONCEPTS):
            text = "\n".join(str(value) for value in labels[:, column]) + "\n"
            (folder / "Groundtruth" / "AllLabels" / f"Labels_{name}.txt").write_text(text, encoding="utf-8")
    (folder / "NUS_WID_Tags").mkdir()
    (folder / "NUS_WID_Tags" / "TagList1k.txt").write_text("\n".join(f"t{i}" for i in range(N_TAGS)) + "\n", encoding="utf-8")
    (folder / "NUS_WID_Tags" / "AllTags1k.txt").write_text(_rows_text(_tags()), encoding="utf-8")
    for row in with_images:
        path = folder / "Flickr" / CONCEPTS[row % 5] / f"{row:04d}_{1000 + row}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"jpeg")
    return folder


def test_select_frequent_concepts_ties_to_earlier():
    labels = np.array([[1, 1, 0, 1], [0, 1, 1, 1], [0, 0, 1, 0]], dtype=np.uint8)

    assert select_frequent_concepts(labels, 2).tolist() == [1, 2]


@pytest.mark.parametrize("label_matrix", [False, True])
def test_official_layout_selects_top_concepts(tmp_path, label_matrix):
    _write_official(tmp_path / "data", label_matrix=label_matrix)
    dataset = load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))

    kept = np.flatnonzero(_labels()[:, [0, 2, 3]].any(axis=1))
    assert dataset.label_names == TOP
    assert np.array_equal(dataset.ids, kept)
    assert np.array_equal(dataset.labels, _labels()[kept][:, [0, 2, 3]])
    assert np.array_equal(dataset.tags.toarray(), _tags()[kept])
    assert dataset.tag_vocabulary == [f"t{i}" for i in range(N_TAGS)]
    assert dataset.n_present == 2
    assert dataset.image_paths[1].as_posix().endswith("nuswide/Flickr/beta/0001_1001.jpg")


def test_official_wrong_count_names_file(tmp_path):
    _write_official(tmp_path / "data")

    with pytest.raises(DatasetError, match=r"AllLabels: found 30 images with at least one of the 3 most frequent concepts, expected 31"):
        load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path, items=31))


def test_official_wrong_concepts_named(tmp_path):
    _write_official(tmp_path / "data")
    definitions = _write_definitions(tmp_path, label_names=["alpha", "beta", "gamma"])

    with pytest.raises(DatasetError, match=r"most frequent concepts are \['alpha', 'gamma', 'delta'\], expected \['alpha', 'beta', 'gamma'\]"):
        load_dataset("nuswide", tmp_path / "data", datasets_dir=definitions)


def test_official_bad_tag_row_names_line(tmp_path):
    folder = _write_official(tmp_path / "data")
    rows = (folder / "NUS_WID_Tags" / "AllTags1k.txt").read_text(encoding="utf-8").splitlines()
    rows[6] = "0 1 0 0 1"
    (folder / "NUS_WID_Tags" / "AllTags1k.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")

    with pytest.raises(DatasetError, match=r"AllTags1k.txt line 7: expected 6 blank-separated 0/1 values, found 5"):
        load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))


def test_official_missing_label_file(tmp_path):
    folder = _write_official(tmp_path / "data")
    (folder / "Groundtruth" / "AllLabels" / "Labels_gamma.txt").unlink()

    with pytest.raises(DatasetError, match=r"Labels_gamma.txt is missing"):
        load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))


def test_split_generated_on_load(tmp_path, caplog):
    _write_official(tmp_path / "data")
    dataset = _all_present(load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path)))

    with caplog.at_level(logging.WARNING):
        split = load_split(dataset)

    assert "no stored file and no pinned split hash" in caplog.text
    assert len(split.query) == 3
    assert len(split.train) == 6
    assert len(split.database) == _n_kept() - 3
    # One query and two training items drawn per label column.
    assert np.all(dataset.labels[split.query].sum(axis=0) >= 1)
    assert np.all(dataset.labels[split.train].sum(axis=0) >= 2)
    assert split.split_hash == load_split(dataset).split_hash


def _all_present(dataset):
    dataset.present = np.ones(dataset.n_items, dtype=bool)
    return dataset


def test_pinned_split_hash_checked(tmp_path):
    _write_official(tmp_path / "data")
    dataset = _all_present(load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path)))
    split = load_split(dataset)
    ids = dataset.ids
    correct = split_hash(ids[split.query], ids[split.database], ids[split.train])
    assert correct == split.split_hash

    pinned = _all_present(load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path, pinned=correct)))
    assert load_split(pinned).split_hash == correct

    wrong = _all_present(load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path, pinned="0" * 64)))
    with pytest.raises(DatasetError, match=r"has split hash [0-9a-f]{64}, expected 0{64} \(split_hash in \[protocols.nuswide-standard\]"):
        load_split(wrong)


def test_mat_layout_with_images(tmp_path):
    folder = tmp_path / "data" / "nuswide"
    folder.mkdir(parents=True)
    labels = _labels()[:, [0, 2, 3]]
    kept = labels.any(axis=1)
    labels, tags = labels[kept], _tags()[kept]
    pixels = np.random.default_rng(1).integers(0, 256, size=(len(labels), 8, 8, 3), dtype=np.uint8)
    scipy.io.savemat(folder / "nus-wide-tc21-lall.mat", {"LAll": labels.astype(np.float64)})
    scipy.io.savemat(folder / "nus-wide-tc21-yall.mat", {"YAll": tags.astype(np.float64)})
    scipy.io.savemat(folder / "nus-wide-tc21-iall.mat", {"IAll": pixels})

    dataset = load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))

    assert dataset.source == "mat:nus-wide-tc21-lall.mat"
    assert np.array_equal(dataset.ids, np.arange(len(labels)))
    assert np.array_equal(dataset.labels, labels)
    assert np.array_equal(dataset.tags.toarray(), tags)
    assert dataset.n_present == len(labels)
    assert np.array_equal(np.asarray(dataset.image_paths[4].open_rgb()), pixels[4])


def test_mat_layout_wrong_label_shape(tmp_path):
    folder = tmp_path / "data" / "nuswide"
    folder.mkdir(parents=True)
    scipy.io.savemat(folder / "lall.mat", {"LAll": np.ones((_n_kept(), 4))})

    with pytest.raises(DatasetError, match=r"lall.mat: LAll must be a 0/1 matrix of shape \(n, 3\), found shape \(30, 4\)"):
        load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))


def test_mat_layout_missing_variable(tmp_path):
    folder = tmp_path / "data" / "nuswide"
    folder.mkdir(parents=True)
    scipy.io.savemat(folder / "lall.mat", {"labels": np.ones((3, 3))})

    with pytest.raises(DatasetError, match=r"lall.mat has no variable 'LAll'; found \['labels'\]"):
        load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))


def test_empty_folder_names_layouts(tmp_path):
    (tmp_path / "data" / "nuswide").mkdir(parents=True)

    with pytest.raises(DatasetError, match=r"No NUS-WIDE files found .*ImageList/Imagelist.txt .*lall\*.mat"):
        load_dataset("nuswide", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))
    assert not dataset_status("nuswide", tmp_path / "data")["found"]
