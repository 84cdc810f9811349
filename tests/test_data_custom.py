"""Custom datasets: image folder with a CSV or JSON-lines manifest, and precomputed features."""

import json

import numpy as np
import pytest
from PIL import Image

from hashbench.data import DatasetError, list_datasets, load_dataset, load_split
from hashbench.data.custom import register_custom_dataset
from hashbench.data.dataset import _LOADERS, normalized_sha256


@pytest.fixture(autouse=True)
def restore_registry():
    """Unregister the datasets a test registers, because their definitions exist only in tmp_path."""
    list_datasets()
    before = dict(_LOADERS)
    yield
    _LOADERS.clear()
    _LOADERS.update(before)


def _definitions(tmp_path, name, loader, source, *, items=3, pinned_source=None, extra=""):
    definitions = tmp_path / "definitions"
    definitions.mkdir(exist_ok=True)
    sha256 = f'sha256 = "{pinned_source}"\n' if pinned_source else ""
    (definitions / f"{name}.toml").write_text(
        f'loader = "{loader}"\n'
        'description = "Test data"\n'
        f'folder = "{name}"\n'
        'label_names = ["cat", "dog"]\n'
        f'standard_protocol = "{name}-random"\n'
        f"{extra}"
        "[files]\n\n"
        f"[counts]\nitems = {items}\nlabels = 2\n\n"
        f'[source]\npath = "{source}"\n{sha256}\n'
        f"[protocols.{name}-random]\n"
        f'file = "{name}/{name}-random.v1.json"\n'
        "version = 1\nseed = 0\nn_query = 1\nn_train = 1\ngenerate_on_load = true\n",
        encoding="utf-8",
    )
    register_custom_dataset(name)
    return definitions


def _images(folder, names):
    (folder / "images").mkdir(parents=True)
    for name in names:
        Image.new("RGB", (4, 4)).save(folder / "images" / name)


def test_csv_manifest(tmp_path):
    folder = tmp_path / "data" / "pets"
    _images(folder, ["a.png", "b.png"])
    (folder / "manifest.csv").write_text(
        "path,labels,tags\nimages/a.png,cat,indoor;sofa\nimages/b.png,cat;dog,garden\nimages/c.png,dog,\n", encoding="utf-8"
    )
    dataset = load_dataset("pets", tmp_path / "data", datasets_dir=_definitions(tmp_path, "pets", "manifest", "manifest.csv"))

    assert dataset.ids.tolist() == [0, 1, 2]
    assert dataset.labels.tolist() == [[1, 0], [1, 1], [0, 1]]
    assert dataset.tag_vocabulary == ["garden", "indoor", "sofa"]
    assert dataset.tags.toarray().tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert dataset.present.tolist() == [True, True, False]
    assert dataset.source == "manifest:manifest.csv"


def test_jsonl_manifest_with_ids_and_no_tags(tmp_path):
    folder = tmp_path / "data" / "pets2"
    _images(folder, ["a.png", "b.png", "c.png"])
    lines = [{"path": f"images/{name}.png", "labels": [label], "id": 10 + i} for i, (name, label) in enumerate(zip("abc", ["cat", "dog", "dog"]))]
    (folder / "items.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    dataset = load_dataset("pets2", tmp_path / "data", datasets_dir=_definitions(tmp_path, "pets2", "manifest", "items.jsonl"))

    assert dataset.ids.tolist() == [10, 11, 12]
    assert dataset.tags is None
    split = load_split(dataset)
    assert len(split.query) == 1
    assert len(split.database) == 2


def test_manifest_unknown_label_named(tmp_path):
    folder = tmp_path / "data" / "pets3"
    folder.mkdir(parents=True)
    (folder / "manifest.csv").write_text("path,labels\na.png,cat\nb.png,bird\nc.png,dog\n", encoding="utf-8")

    with pytest.raises(DatasetError, match=r"manifest.csv line 3: label 'bird' is not in label_names \['cat', 'dog'\]"):
        load_dataset("pets3", tmp_path / "data", datasets_dir=_definitions(tmp_path, "pets3", "manifest", "manifest.csv"))


def test_manifest_missing_column(tmp_path):
    folder = tmp_path / "data" / "pets4"
    folder.mkdir(parents=True)
    (folder / "manifest.csv").write_text("file,labels\na.png,cat\n", encoding="utf-8")

    with pytest.raises(DatasetError, match=r"has no 'path' column; expected path,labels"):
        load_dataset("pets4", tmp_path / "data", datasets_dir=_definitions(tmp_path, "pets4", "manifest", "manifest.csv"))


def test_manifest_count_and_checksum(tmp_path):
    folder = tmp_path / "data" / "pets5"
    folder.mkdir(parents=True)
    data = b"path,labels\na.png,cat\nb.png,dog\n"
    (folder / "manifest.csv").write_bytes(data)

    with pytest.raises(DatasetError, match=r"manifest.csv: found 2 items, expected 3 \(counts.items"):
        load_dataset("pets5", tmp_path / "data", datasets_dir=_definitions(tmp_path, "pets5", "manifest", "manifest.csv"))
    with pytest.raises(DatasetError, match=r"manifest.csv has SHA-256 [0-9a-f]{64}, expected 0{64}"):
        load_dataset(
            "pets5", tmp_path / "data",
            datasets_dir=_definitions(tmp_path, "pets5", "manifest", "manifest.csv", items=2, pinned_source="0" * 64),
        )
    pinned = _definitions(tmp_path, "pets5", "manifest", "manifest.csv", items=2, pinned_source=normalized_sha256(data))
    assert load_dataset("pets5", tmp_path / "data", datasets_dir=pinned).n_items == 2


def test_features_npz(tmp_path):
    folder = tmp_path / "data" / "feats"
    folder.mkdir(parents=True)
    features = np.random.default_rng(0).normal(size=(3, 5))
    np.savez(
        folder / "features.npz", features=features, labels=np.array([[1, 0], [0, 1], [1, 1]]),
        tags=np.array([[1, 0], [0, 0], [1, 1]]), tag_vocabulary=np.array(["red", "blue"]),
    )
    dataset = load_dataset("feats", tmp_path / "data", datasets_dir=_definitions(tmp_path, "feats", "features", "features.npz"))

    assert dataset.features.dtype == np.float32
    assert np.allclose(dataset.features, features)
    assert dataset.tag_vocabulary == ["red", "blue"]
    assert dataset.tags.toarray().tolist() == [[1, 0], [0, 0], [1, 1]]
    with pytest.raises(DatasetError, match=r"ships precomputed features and no images"):
        dataset.image_paths[0].open_rgb()


def test_features_npz_wrong_labels(tmp_path):
    folder = tmp_path / "data" / "feats2"
    folder.mkdir(parents=True)
    np.savez(folder / "features.npz", features=np.zeros((3, 5)), labels=np.zeros((3, 4)))

    with pytest.raises(DatasetError, match=r"'labels' must be a 0/1 array of shape \(3, 2\), found shape \(3, 4\)"):
        load_dataset("feats2", tmp_path / "data", datasets_dir=_definitions(tmp_path, "feats2", "features", "features.npz"))


def test_features_npz_rejects_pickle(tmp_path):
    folder = tmp_path / "data" / "feats3"
    folder.mkdir(parents=True)
    np.savez(folder / "features.npz", features=np.array([object()] * 3, dtype=object), labels=np.zeros((3, 2)))

    with pytest.raises(DatasetError, match=r"features.npz is not a readable .npz file without pickled objects"):
        load_dataset("feats3", tmp_path / "data", datasets_dir=_definitions(tmp_path, "feats3", "features", "features.npz"))
