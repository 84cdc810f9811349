"""MIRFlickr-25K derived from small archives in the official layout, and the comparison with the
published 20,015-image files."""

import io
import tomllib
import zipfile

import numpy as np
import pytest
from PIL import Image

from hashbench.data import DatasetError, dataset_status, load_dataset
from hashbench.data import mirflickr25k_official as official
from hashbench.data.dataset import normalized_sha256
from hashbench.data.verify import verify_dataset
from hashbench.paths import DATASETS_DIR

with open(DATASETS_DIR / "mirflickr25k.toml", "rb") as _handle:
    LABEL_NAMES = tomllib.load(_handle)["label_names"]
N_COLLECTION = 60


def _collection():
    """Labels and tags of a 60-image collection.

    Labels: sky on images 1-40, water on 35-45, nothing on 46-60. Tags: common on 1-25 (25
    images), blue on 30-55 (26 images, of which 16 labelled), rare on 1-5 and 26-29 (9 images).
    The vocabulary is blue and common. Kept: 1-25 and 30-45, 41 images.
    """
    labels = {"sky": range(1, 41), "water": range(35, 46)}
    tags = {number: [] for number in range(1, N_COLLECTION + 1)}
    for number in range(1, 26):
        tags[number].append("common")
    for number in range(30, 56):
        tags[number].append("blue")
    for number in list(range(1, 6)) + list(range(26, 30)):
        tags[number].append("rare")
    return labels, tags


KEPT = list(range(1, 26)) + list(range(30, 46))


def _write_archives(folder, *, with_images=(1, 2, 31)):
    folder.mkdir(parents=True, exist_ok=True)
    labels, tags = _collection()
    with zipfile.ZipFile(folder / official.ANNOTATIONS_ARCHIVE, "w") as archive:
        archive.writestr("README.txt", "annotations\n")
        for concept in LABEL_NAMES:
            numbers = labels.get(concept, [])
            archive.writestr(f"{concept}.txt", "".join(f"{number}\r\n" for number in numbers))
        # The stricter annotation must be ignored.
        archive.writestr("sky_r1.txt", "50\n")
    with zipfile.ZipFile(folder / official.IMAGES_ARCHIVE, "w") as archive:
        for number, image_tags in tags.items():
            archive.writestr(f"mirflickr/meta/tags/tags{number}.txt", "".join(f"{tag}\r\n" for tag in image_tags))
        for number in with_images:
            buffer = io.BytesIO()
            Image.new("RGB", (6, 4), (number, 0, 0)).save(buffer, format="JPEG", quality=95)
            archive.writestr(f"mirflickr/im{number}.jpg", buffer.getvalue())


def _write_definitions(base, *, items=len(KEPT), tags=2, release_checksums=None):
    definitions = base / "definitions"
    definitions.mkdir(exist_ok=True)
    text = (DATASETS_DIR / "mirflickr25k.toml").read_text(encoding="utf-8")
    text = text.replace("items = 20015", f"items = {items}").replace("tags = 1386", f"tags = {tags}")
    for name, checksum in (release_checksums or {}).items():
        start = text.index(f'path = "{name}"')
        old = text[start : text.index("\n", text.index("sha256", start))]
        text = text.replace(old, f'path = "{name}"\nsha256 = "{checksum}"')
    (definitions / "mirflickr25k.toml").write_text(text, encoding="utf-8")
    return definitions


def _write_release(folder, ids, vocabulary):
    """Write the published-layout files for ``ids`` from the fixture collection."""
    labels, tags = _collection()
    rows = {
        "all_imgs.txt": [f"mirflickr/im{number}.jpg" for number in ids],
        "all_labels.txt": [" ".join("1" if number in labels.get(name, ()) else "0" for name in LABEL_NAMES) for number in ids],
        "all_tags.txt": [",".join(tag for tag in tags[number] if tag in vocabulary) for number in ids],
        "Concepts/TagList.txt": vocabulary,
    }
    checksums = {}
    for name, lines in rows.items():
        data = "".join(line + "\r\n" for line in lines).encode("utf-8")
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        checksums[name] = normalized_sha256(data)
    return checksums


@pytest.fixture
def small_collection(monkeypatch):
    monkeypatch.setattr(official, "N_IMAGES", N_COLLECTION)


def test_derive_subset_rule():
    labels = np.array([[1, 0], [0, 0], [0, 1], [1, 1]], dtype=np.uint8)
    tags = [["a", "b"], ["a", "c"], ["c"], ["b"]]

    ids, kept_labels, matrix, vocabulary = official.derive_subset(labels, tags, min_count=2)

    # a: 2 images, b: 2, c: 2, counted over all four images including the unlabelled image 2.
    assert vocabulary == ["a", "b", "c"]
    assert ids.tolist() == [1, 3, 4]
    assert np.array_equal(kept_labels, labels[[0, 2, 3]])
    assert matrix.toarray().tolist() == [[1, 1, 0], [0, 0, 1], [0, 1, 0]]


def test_derive_subset_drops_rare_only_images():
    labels = np.ones((3, 1), dtype=np.uint8)
    tags = [["x"], ["x"], ["y"]]

    ids, _, _, vocabulary = official.derive_subset(labels, tags, min_count=2)

    assert vocabulary == ["x"]
    assert ids.tolist() == [1, 2]


def test_load_from_archives(tmp_path, small_collection):
    folder = tmp_path / "data" / "mirflickr25k"
    _write_archives(folder)

    dataset = load_dataset("mirflickr25k", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))

    assert dataset.source == "official archives:mirflickr25k.zip"
    assert dataset.ids.tolist() == KEPT
    assert dataset.tag_vocabulary == ["blue", "common"]
    sky = LABEL_NAMES.index("sky")
    water = LABEL_NAMES.index("water")
    assert dataset.labels[:, sky].sum() == 36
    assert dataset.labels[:, water].sum() == 11
    row_of_31 = KEPT.index(31)
    assert dataset.tags[row_of_31].toarray().tolist() == [[1, 0]]
    assert dataset.n_present == 3
    assert dataset.image_paths[0].open_rgb().size == (6, 4)
    assert str(dataset.image_paths[row_of_31]) == "mirflickr25k.zip:mirflickr/im31.jpg"


def test_extracted_images_preferred(tmp_path, small_collection):
    folder = tmp_path / "data" / "mirflickr25k"
    _write_archives(folder, with_images=())
    (folder / "mirflickr").mkdir()
    Image.new("RGB", (5, 5)).save(folder / "mirflickr" / "im7.jpg")

    dataset = load_dataset("mirflickr25k", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))

    assert dataset.n_present == 1
    assert dataset.image_paths[KEPT.index(7)] == folder / "mirflickr" / "im7.jpg"


def test_derived_count_mismatch(tmp_path, small_collection):
    _write_archives(tmp_path / "data" / "mirflickr25k")

    with pytest.raises(DatasetError, match=r"mirflickr25k.zip has 41 images in the derived subset, expected 40 \(counts.items"):
        load_dataset("mirflickr25k", tmp_path / "data", datasets_dir=_write_definitions(tmp_path, items=40))


def test_missing_tag_file_named(tmp_path, small_collection, monkeypatch):
    _write_archives(tmp_path / "data" / "mirflickr25k")
    monkeypatch.setattr(official, "N_IMAGES", N_COLLECTION + 1)

    with pytest.raises(DatasetError, match=r"lacks the tag files of 1 of 61 images \(first: meta/tags/tags61.txt\)"):
        load_dataset("mirflickr25k", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))


def test_missing_concept_file_named(tmp_path, small_collection):
    folder = tmp_path / "data" / "mirflickr25k"
    _write_archives(folder)
    with zipfile.ZipFile(folder / official.ANNOTATIONS_ARCHIVE, "w") as archive:
        archive.writestr("sky.txt", "1\n")

    with pytest.raises(DatasetError, match=r"has no member animals.txt"):
        load_dataset("mirflickr25k", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))


def test_status_reports_archives(tmp_path, small_collection):
    _write_archives(tmp_path / "data" / "mirflickr25k")

    status = dataset_status("mirflickr25k", tmp_path / "data", datasets_dir=_write_definitions(tmp_path))

    assert status["found"]
    assert "derived from them on load" in status["message"]


def _derivation_lines(findings):
    return [finding for finding in findings if finding.topic == "derivation"]


def test_verify_matching_release(tmp_path, small_collection):
    folder = tmp_path / "data" / "mirflickr25k"
    _write_archives(folder)
    checksums = _write_release(folder, KEPT, ["blue", "common"])
    definitions = _write_definitions(tmp_path, release_checksums=checksums)

    findings = _derivation_lines(verify_dataset("mirflickr25k", tmp_path / "data", datasets_dir=definitions))

    assert [finding.level for finding in findings] == ["ok"] * 4
    assert "derived 41 images, release lists 41; 0 only in the release, 0 only derived" in findings[0].message


def test_verify_differing_release(tmp_path, small_collection):
    folder = tmp_path / "data" / "mirflickr25k"
    _write_archives(folder)
    # A release that lists image 26 (no vocabulary tag) instead of image 45.
    ids = sorted(set(KEPT) - {45} | {26})
    checksums = _write_release(folder, ids, ["blue", "common"])
    definitions = _write_definitions(tmp_path, release_checksums=checksums)

    findings = _derivation_lines(verify_dataset("mirflickr25k", tmp_path / "data", datasets_dir=definitions))

    assert findings[0].level == "fail"
    assert "1 only in the release, 1 only derived (first only in the release: im26.jpg) (first only derived: im45.jpg)" in findings[0].message
    assert findings[1].level == "ok"
