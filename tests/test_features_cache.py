"""Tests of the on-disk feature cache with EfficientNet-Lite0 on real MIRFlickr images."""

import json
import logging
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from hashbench.features import CACHE_FORMAT_VERSION, cache_key, compute_features, get_backbone

# Six images in three chunks of 2; batches of 2 line up with the chunks, so cached features
# equal those of one extract call bit for bit.
SAMPLE_IDS = np.arange(1, 7, dtype=np.int64)
CHUNK_SIZE = 2
BATCH_SIZE = 2
DATASET = "mirflickr25k"


@pytest.fixture(scope="module")
def sample_paths(data_root):
    folder = data_root / "mirflickr25k" / "mirflickr"
    if not (folder / "im1.jpg").is_file():
        pytest.skip(f"MIRFlickr images not found under {folder}")
    return [folder / f"im{i}.jpg" for i in SAMPLE_IDS]


@pytest.fixture(scope="module")
def lite0():
    return get_backbone("efficientnet-lite0")


@pytest.fixture(scope="module")
def reference(lite0, sample_paths):
    return lite0.extract(sample_paths, batch_size=BATCH_SIZE)


@pytest.fixture(scope="module")
def filled_cache(lite0, sample_paths, tmp_path_factory):
    """A cache folder holding the finished entry of the sample."""
    folder = tmp_path_factory.mktemp("filled_cache")
    _compute(lite0, sample_paths, folder)
    return folder


@pytest.fixture
def cache_copy(filled_cache, tmp_path):
    folder = tmp_path / "cache"
    shutil.copytree(filled_cache, folder)
    return folder


class _Counter:
    """Wraps ``backbone.extract`` to count images and optionally fail on a given call."""

    def __init__(self, backbone, monkeypatch, fail_on_call=None):
        self.images = 0
        self.calls = 0
        # The class attribute, so that a second counter does not wrap the first one.
        self._extract = type(backbone).extract.__get__(backbone)
        self._fail_on_call = fail_on_call
        monkeypatch.setattr(backbone, "extract", self)

    def __call__(self, images, **kwargs):
        self.calls += 1
        if self.calls == self._fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        images = list(images)
        self.images += len(images)
        return self._extract(images, **kwargs)


def _compute(backbone, paths, cache_dir, ids=SAMPLE_IDS):
    return compute_features(
        backbone, paths, ids, dataset=DATASET, cache_dir=cache_dir, batch_size=BATCH_SIZE, chunk_size=CHUNK_SIZE,
    )


def _entry(folder, suffix):
    (path,) = folder.glob(f"*{suffix}")
    return path


def test_cache_matches_direct_extraction(filled_cache, lite0, sample_paths, reference):
    features = _compute(lite0, sample_paths, filled_cache)

    assert features.dtype == np.float32
    assert np.array_equal(features, reference)


def test_cache_hit_skips_model(cache_copy, lite0, sample_paths, reference, monkeypatch):
    counter = _Counter(lite0, monkeypatch)

    features = _compute(lite0, sample_paths, cache_copy)

    assert counter.calls == 0
    assert np.array_equal(features, reference)


def test_cache_writes_sidecar(filled_cache, lite0):
    sidecar = json.loads(_entry(filled_cache, ".json").read_text())

    assert sidecar["key"] == cache_key(lite0, SAMPLE_IDS, dataset=DATASET)
    assert sidecar["count"] == len(SAMPLE_IDS)
    assert sidecar["dim"] == 1280
    assert sidecar["backbone"] == "efficientnet-lite0"
    assert sidecar["preprocessing"] == lite0.preprocessing
    assert sidecar["weights_sha256"] == lite0.weights_sha256
    assert sidecar["seconds"] > 0


def test_cache_leaves_no_partial_files(filled_cache):
    names = sorted(path.name for path in filled_cache.iterdir())

    assert len(names) == 2
    assert names[0].endswith(".json")
    assert names[1].endswith(".npy")


def test_cache_resumes_after_interruption(tmp_path, lite0, sample_paths, reference, monkeypatch):
    failing = _Counter(lite0, monkeypatch, fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        _compute(lite0, sample_paths, tmp_path)
    assert failing.images == CHUNK_SIZE
    (partial,) = tmp_path.glob("*.partial")
    assert [path.name for path in partial.iterdir()] == ["rows-000000000-000000002.npy"]

    counter = _Counter(lite0, monkeypatch)
    features = _compute(lite0, sample_paths, tmp_path)

    assert counter.images == len(SAMPLE_IDS) - CHUNK_SIZE
    assert np.array_equal(features, reference)
    assert json.loads(_entry(tmp_path, ".json").read_text())["rows_resumed"] == CHUNK_SIZE
    assert not partial.exists()


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _delete(path):
    path.unlink()


@pytest.mark.parametrize(
    "suffix, damage, reason",
    [
        (".npy", _truncate, "SHA-256 does not match"),
        (".npy", _flip_last_byte, "SHA-256 does not match"),
        (".npy", _delete, "it cannot be read"),
        (".json", _delete, "it cannot be read"),
        (".json", _truncate, "it cannot be read"),
    ],
    ids=["npy-truncated", "npy-flipped-byte", "npy-missing", "sidecar-missing", "sidecar-truncated"],
)
def test_cache_damaged_entry_recomputed(
    cache_copy, lite0, sample_paths, reference, monkeypatch, caplog, suffix, damage, reason,
):
    damage(_entry(cache_copy, suffix))
    counter = _Counter(lite0, monkeypatch)

    with caplog.at_level(logging.WARNING, logger="hashbench.features.cache"):
        features = _compute(lite0, sample_paths, cache_copy)

    assert reason in caplog.text
    assert counter.images == len(SAMPLE_IDS)
    assert np.array_equal(features, reference)


def test_cache_damaged_chunk_recomputed(tmp_path, lite0, sample_paths, reference, monkeypatch, caplog):
    _Counter(lite0, monkeypatch, fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        _compute(lite0, sample_paths, tmp_path)
    (partial,) = tmp_path.glob("*.partial")
    _truncate(partial / "rows-000000002-000000004.npy")

    counter = _Counter(lite0, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="hashbench.features.cache"):
        features = _compute(lite0, sample_paths, tmp_path)

    assert "rows-000000002-000000004.npy" in caplog.text
    assert counter.images == len(SAMPLE_IDS) - CHUNK_SIZE
    assert np.array_equal(features, reference)


def test_cache_other_ids_miss(cache_copy, lite0, sample_paths, reference, monkeypatch):
    counter = _Counter(lite0, monkeypatch)

    features = _compute(lite0, sample_paths[::-1], cache_copy, ids=SAMPLE_IDS[::-1])

    assert counter.images == len(SAMPLE_IDS)
    assert np.array_equal(features, reference[::-1])


# --------------------------------------------------------------------------------------------
# Key
# --------------------------------------------------------------------------------------------

BACKBONE = SimpleNamespace(name="efficientnet-lite0", weights_sha256="ab" * 32, preprocessing="resize 224")
IDS = np.array([3, 1, 2], dtype=np.int64)


def test_cache_key_is_sha256_hex():
    key = cache_key(BACKBONE, IDS, dataset="mirflickr25k")

    assert len(key) == 64
    assert int(key, 16) >= 0


def test_cache_key_same_for_int32_and_int64_ids():
    key_int64 = cache_key(BACKBONE, IDS, dataset="mirflickr25k")
    key_int32 = cache_key(BACKBONE, IDS.astype(np.int32), dataset="mirflickr25k")

    assert key_int64 == key_int32


@pytest.mark.parametrize(
    "backbone, ids, dataset",
    [
        (BACKBONE, IDS, "cifar10"),
        (BACKBONE, IDS[::-1], "mirflickr25k"),
        (BACKBONE, IDS[:2], "mirflickr25k"),
        (BACKBONE, IDS.astype(str), "mirflickr25k"),
        (SimpleNamespace(**{**vars(BACKBONE), "name": "vgg16"}), IDS, "mirflickr25k"),
        (SimpleNamespace(**{**vars(BACKBONE), "weights_sha256": "cd" * 32}), IDS, "mirflickr25k"),
        (SimpleNamespace(**{**vars(BACKBONE), "preprocessing": "resize 256"}), IDS, "mirflickr25k"),
    ],
    ids=["dataset", "id-order", "id-subset", "str-ids", "backbone", "weights", "preprocessing"],
)
def test_cache_key_changes_with_each_field(backbone, ids, dataset):
    assert cache_key(backbone, ids, dataset=dataset) != cache_key(BACKBONE, IDS, dataset="mirflickr25k")


def test_cache_format_version_in_sidecar(filled_cache):
    sidecar = json.loads(_entry(filled_cache, ".json").read_text())

    assert sidecar["format_version"] == CACHE_FORMAT_VERSION


# --------------------------------------------------------------------------------------------
# Invalid arguments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"ids": SAMPLE_IDS[:3]}, ValueError, "same length, got 6 paths and 3 ids"),
        ({"ids": SAMPLE_IDS.reshape(2, 3)}, ValueError, r"ids must be 1-D .* got shape \(2, 3\)"),
        ({"ids": SAMPLE_IDS.astype(float)}, TypeError, "ids must be integers or strings, got .* float64"),
        ({"dataset": ""}, ValueError, "dataset must be a non-empty str"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
        ({"chunk_size": -4}, ValueError, "chunk_size must be a positive integer, got -4"),
    ],
    ids=["length", "2-d-ids", "float-ids", "dataset", "batch-size", "chunk-size"],
)
def test_compute_features_rejects_invalid_arguments(tmp_path, lite0, sample_paths, overrides, error, message):
    arguments = {"ids": SAMPLE_IDS, "dataset": DATASET, "cache_dir": tmp_path, **overrides}

    with pytest.raises(error, match=message):
        compute_features(lite0, sample_paths, **arguments)
