"""CIFAR-10 loader: the real JPEG archive, small python-release fixtures and the three protocols."""

import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

from hashbench.data import DatasetError, dataset_status, load_dataset, load_split
from hashbench.data.cifar10 import find_layout
from hashbench.data.images import ArrayImage, EncodedImage
from hashbench.data.protocol import build_protocol, generate_protocol_file, read_protocol
from hashbench.paths import DATASETS_DIR

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def cifar10(data_root):
    if not (data_root / "cifar10").is_dir():
        pytest.skip(f"{data_root / 'cifar10'} does not exist; the CIFAR-10 tests need it")
    return load_dataset("cifar10", data_root)


# --------------------------------------------------------------------------------------------
# The real image-folder archive
# --------------------------------------------------------------------------------------------


def test_real_archive_counts(cifar10):
    assert cifar10.n_items == 60000
    assert cifar10.n_present == 60000
    assert np.count_nonzero(cifar10.subsets == "train") == 50000
    assert np.count_nonzero(cifar10.subsets == "test") == 10000
    assert cifar10.source == "image-archive:cifar10-jpeg.tar.gz"


def test_real_archive_ids_and_labels(cifar10):
    assert np.array_equal(cifar10.ids, np.arange(60000))
    assert cifar10.labels.shape == (60000, 10)
    assert cifar10.labels.dtype == np.uint8
    assert np.all(cifar10.labels.sum(axis=1) == 1)
    # id 3 * 5000 + 7 is train/cat/0007.jpg, id 50000 + 9 * 1000 is test/truck/0000.jpg.
    assert cifar10.labels[15007].argmax() == LABEL_NAMES.index("cat")
    assert str(cifar10.image_paths[15007]).endswith("train/cat/0007.jpg")
    assert str(cifar10.image_paths[59000]).endswith("test/truck/0000.jpg")


def test_real_archive_has_no_tags(cifar10):
    assert cifar10.tags is None
    assert cifar10.tag_vocabulary == []


def test_real_image_decodes(cifar10):
    image = cifar10.image_paths[123].open_rgb()

    assert image.size == (32, 32)
    assert image.mode == "RGB"


@pytest.mark.parametrize(
    ("protocol", "n_query", "n_database", "n_train"),
    [("cifar10-i", 1000, 59000, 5000), ("cifar10-ii", 10000, 50000, 50000), ("cifar10-cibhash", 5000, 50000, 5000)],
)
def test_real_protocol_counts(cifar10, protocol, n_query, n_database, n_train):
    split = load_split(cifar10, protocol)

    assert (len(split.query), len(split.database), len(split.train)) == (n_query, n_database, n_train)
    assert set(cifar10.subsets[split.query]) == {"test"}
    assert set(cifar10.subsets[split.train]) == {"train"}
    assert not split.partial


def test_cifar10_i_per_class_counts(cifar10):
    split = load_split(cifar10, "cifar10-i")

    assert cifar10.labels[split.query].sum(axis=0).tolist() == [100] * 10
    assert cifar10.labels[split.train].sum(axis=0).tolist() == [500] * 10
    assert len(np.union1d(split.query, split.database)) == 60000


def test_cifar10_ii_database_is_train_set(cifar10):
    split = load_split(cifar10, "cifar10-ii")

    assert np.array_equal(split.database, split.train)
    assert np.array_equal(split.database, np.arange(50000))


def test_cibhash_leaves_validation_out(cifar10):
    split = load_split(cifar10, "cifar10-cibhash")

    assert cifar10.labels[split.train].sum(axis=0).tolist() == [500] * 10
    assert np.array_equal(split.database, np.arange(50000))
    assert len(np.union1d(split.query, split.database)) == 55000


@pytest.mark.parametrize("protocol", ["cifar10-i", "cifar10-ii", "cifar10-cibhash"])
def test_protocol_regenerates_identically(cifar10, protocol):
    recipe = cifar10.definition["protocols"][protocol]
    generated = build_protocol(cifar10, protocol, recipe)
    published = read_protocol(DATASETS_DIR / "cifar10" / f"{protocol}.v1.json")

    assert generated.split_hash == published.split_hash
    assert generated.generator == published.generator


def test_status_does_not_open_archive(data_root):
    if not (data_root / "cifar10").is_dir():
        pytest.skip("no cifar10 folder in the data root")
    status = dataset_status("cifar10", data_root)

    assert status["found"]
    assert status["n_items"] is None
    assert "cifar10-jpeg.tar.gz" in status["message"]


# --------------------------------------------------------------------------------------------
# Small python-release and image-folder fixtures
# --------------------------------------------------------------------------------------------

N_TRAIN_PER_CLASS = 3
N_TEST_PER_CLASS = 2


def _pixels(seed, n):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _to_rows(pixels):
    """Pack (n, 32, 32, 3) pixels into the release's (n, 3072) channel-planar rows."""
    return pixels.transpose(0, 3, 1, 2).reshape(len(pixels), -1)


def _write_definitions(tmp_path, *, n_query=10, n_train=10):
    definitions = tmp_path / "definitions"
    definitions.mkdir(exist_ok=True)
    text = (DATASETS_DIR / "cifar10.toml").read_text(encoding="utf-8")
    text = text.replace("items = 60000", f"items = {10 * (N_TRAIN_PER_CLASS + N_TEST_PER_CLASS)}")
    text = text.replace("train_items = 50000", f"train_items = {10 * N_TRAIN_PER_CLASS}")
    text = text.replace("test_items = 10000", f"test_items = {10 * N_TEST_PER_CLASS}")
    start = text.index("[protocols.cifar10-i]")
    text = text[:start] + (
        "[protocols.cifar10-i]\n"
        'file = "small-cifar10-i.json"\n'
        "version = 1\nseed = 3\n"
        f"n_query = {n_query}\nn_train = {n_train}\n"
        'generator = "per-label"\nquery_from = "test"\ntrain_from = "train"\n'
    )
    (definitions / "cifar10.toml").write_text(text, encoding="utf-8")
    return definitions


def _write_python_release(folder, *, drop_last=False):
    """Write batches of 10 * 3 train and 10 * 2 test images; return pixels and class indices."""
    rng = np.random.default_rng(1)
    train_labels = rng.permutation(np.repeat(np.arange(10), N_TRAIN_PER_CLASS))
    test_labels = rng.permutation(np.repeat(np.arange(10), N_TEST_PER_CLASS))
    train_pixels = _pixels(2, len(train_labels))
    test_pixels = _pixels(3, len(test_labels))

    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    chunks = np.array_split(np.arange(len(train_labels)), 5)
    for number, rows in enumerate(chunks, start=1):
        if drop_last and number == 5:
            rows = rows[:-1]
        batch = {b"batch_label": b"training batch", b"labels": train_labels[rows].tolist(), b"data": _to_rows(train_pixels[rows])}
        (batches / f"data_batch_{number}").write_bytes(pickle.dumps(batch))
    test = {b"batch_label": b"testing batch", b"labels": test_labels.tolist(), b"data": _to_rows(test_pixels)}
    (batches / "test_batch").write_bytes(pickle.dumps(test))
    meta = {b"label_names": [name.encode() for name in LABEL_NAMES], b"num_vis": 3072}
    (batches / "batches.meta").write_bytes(pickle.dumps(meta))
    return train_pixels, train_labels, test_pixels, test_labels


def _expected_id(subset, class_index, rank):
    if subset == "train":
        return class_index * N_TRAIN_PER_CLASS + rank
    return 10 * N_TRAIN_PER_CLASS + class_index * N_TEST_PER_CLASS + rank


def test_python_folder_ids_follow_class_rank(tmp_path):
    root = tmp_path / "data"
    train_pixels, train_labels, _, _ = _write_python_release(root / "cifar10")
    dataset = load_dataset("cifar10", root, datasets_dir=_write_definitions(tmp_path))

    assert dataset.source == "python-folder:cifar-10-batches-py"
    assert np.array_equal(dataset.ids, np.arange(50))
    # The second training image of the first image's class, in release order, has rank 1.
    class_index = int(train_labels[0])
    rows_of_class = np.flatnonzero(train_labels == class_index)
    row = _expected_id("train", class_index, 1)
    decoded = np.asarray(dataset.image_paths[row].open_rgb())
    assert np.array_equal(decoded, train_pixels[rows_of_class[1]])
    assert dataset.labels[row].argmax() == class_index


def test_python_archive_matches_folder(tmp_path):
    extracted = tmp_path / "extracted"
    _write_python_release(extracted / "cifar10")
    archived = tmp_path / "archived" / "cifar10"
    archived.mkdir(parents=True)
    with tarfile.open(archived / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(extracted / "cifar10" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    definitions = _write_definitions(tmp_path)

    from_folder = load_dataset("cifar10", extracted, datasets_dir=definitions)
    from_archive = load_dataset("cifar10", tmp_path / "archived", datasets_dir=definitions)

    assert from_archive.source == "python-archive:cifar-10-python.tar.gz"
    assert np.array_equal(from_folder.ids, from_archive.ids)
    assert np.array_equal(from_folder.labels, from_archive.labels)
    for row in (0, 17, 49):
        assert np.array_equal(from_folder.image_paths[row].pixels, from_archive.image_paths[row].pixels)


def test_image_folder_matches_python_ids(tmp_path):
    python_root = tmp_path / "python"
    train_pixels, train_labels, test_pixels, test_labels = _write_python_release(python_root / "cifar10")
    # The same images as lossless PNG files, numbered by their rank within the class.
    folder_root = tmp_path / "folder"
    for subset, pixels, labels in (("train", train_pixels, train_labels), ("test", test_pixels, test_labels)):
        for class_index, name in enumerate(LABEL_NAMES):
            class_folder = folder_root / "cifar10" / subset / name
            class_folder.mkdir(parents=True)
            for rank, row in enumerate(np.flatnonzero(labels == class_index)):
                Image.fromarray(pixels[row]).save(class_folder / f"{rank:04d}.png")
    definitions = _write_definitions(tmp_path)

    from_python = load_dataset("cifar10", python_root, datasets_dir=definitions)
    from_folder = load_dataset("cifar10", folder_root, datasets_dir=definitions)

    assert from_folder.source == "image-folder:cifar10"
    assert np.array_equal(from_python.ids, from_folder.ids)
    assert np.array_equal(from_python.labels, from_folder.labels)
    for row in (0, 29, 30, 49):
        assert np.array_equal(
            np.asarray(from_python.image_paths[row].open_rgb()), np.asarray(from_folder.image_paths[row].open_rgb())
        )


def test_missing_image_names_archive_and_counts(tmp_path):
    root = tmp_path / "data"
    _write_python_release(root / "cifar10", drop_last=True)

    with pytest.raises(DatasetError, match=r"found 29 train images, expected 30 \(counts.train_items"):
        load_dataset("cifar10", root, datasets_dir=_write_definitions(tmp_path))


def test_missing_batch_names_file(tmp_path):
    root = tmp_path / "data"
    _write_python_release(root / "cifar10")
    (root / "cifar10" / "cifar-10-batches-py" / "data_batch_3").unlink()

    with pytest.raises(DatasetError, match=r"data_batch_3 is missing"):
        load_dataset("cifar10", root, datasets_dir=_write_definitions(tmp_path))


def test_pickle_with_foreign_global_rejected(tmp_path):
    root = tmp_path / "data"
    _write_python_release(root / "cifar10")
    # A pickle that would call shutil.rmtree on load.
    (root / "cifar10" / "cifar-10-batches-py" / "test_batch").write_bytes(
        b"cshutil\nrmtree\n(S'/nonexistent'\ntR."
    )

    with pytest.raises(DatasetError, match=r"test_batch is not a CIFAR-10 python batch .*shutil.rmtree is not allowed"):
        load_dataset("cifar10", root, datasets_dir=_write_definitions(tmp_path))


def test_wrong_meta_class_names(tmp_path):
    root = tmp_path / "data"
    _write_python_release(root / "cifar10")
    meta = {b"label_names": [b"plane"] + [name.encode() for name in LABEL_NAMES[1:]]}
    (root / "cifar10" / "cifar-10-batches-py" / "batches.meta").write_bytes(pickle.dumps(meta))

    with pytest.raises(DatasetError, match=r"batches.meta names the classes \['plane'"):
        load_dataset("cifar10", root, datasets_dir=_write_definitions(tmp_path))


def test_unknown_class_folder_named(tmp_path):
    root = tmp_path / "data"
    (root / "cifar10" / "train" / "kitten").mkdir(parents=True)
    (root / "cifar10" / "test").mkdir()
    Image.new("RGB", (32, 32)).save(root / "cifar10" / "train" / "kitten" / "0000.png")

    with pytest.raises(DatasetError, match=r"class folder 'kitten' is not a CIFAR-10 class"):
        load_dataset("cifar10", root, datasets_dir=_write_definitions(tmp_path))


def test_no_layout_tells_download(tmp_path):
    (tmp_path / "data" / "cifar10").mkdir(parents=True)

    with pytest.raises(DatasetError, match=r"No CIFAR-10 release found .*hashbench datasets download cifar10"):
        load_dataset("cifar10", tmp_path / "data")
    assert find_layout(tmp_path / "data" / "cifar10") == (None, None)


def test_fixture_protocol_per_class(tmp_path):
    root = tmp_path / "data"
    _write_python_release(root / "cifar10")
    definitions = _write_definitions(tmp_path)
    generate_protocol_file("cifar10", root, datasets_dir=definitions)
    dataset = load_dataset("cifar10", root, datasets_dir=definitions)

    split = load_split(dataset)

    assert dataset.labels[split.query].sum(axis=0).tolist() == [1] * 10
    assert dataset.labels[split.train].sum(axis=0).tolist() == [1] * 10
    assert set(dataset.subsets[split.query]) == {"test"}
    assert len(split.database) == 40


def test_protocol_count_mismatch_names_file(tmp_path):
    root = tmp_path / "data"
    _write_python_release(root / "cifar10")
    definitions = _write_definitions(tmp_path)
    generate_protocol_file("cifar10", root, datasets_dir=definitions)
    # The recipe now promises 20 queries, but the published file has 10.
    _write_definitions(tmp_path, n_query=20)
    dataset = load_dataset("cifar10", root, datasets_dir=definitions)

    with pytest.raises(DatasetError, match=r"small-cifar10-i.json: n_query is 10, expected 20"):
        load_split(dataset)


def test_protocol_draw_too_large(tmp_path):
    root = tmp_path / "data"
    _write_python_release(root / "cifar10")
    definitions = _write_definitions(tmp_path, n_query=30)

    with pytest.raises(DatasetError, match=r"queries: label column 0 has 2 items left to draw from, expected at least 3"):
        generate_protocol_file("cifar10", root, datasets_dir=definitions)


# --------------------------------------------------------------------------------------------
# In-memory images and the backbones' decoder
# --------------------------------------------------------------------------------------------


def test_backbone_decodes_in_memory_images():
    from hashbench.features.backbones import open_rgb

    pixels = _pixels(4, 1)[0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")

    assert np.array_equal(np.asarray(open_rgb(ArrayImage(pixels, "batch[0]"))), pixels)
    assert np.array_equal(np.asarray(open_rgb(EncodedImage(buffer.getvalue(), "a.png"))), pixels)


def test_backbone_corrupt_member_names_it():
    from hashbench.features.backbones import ImageDecodeError, open_rgb

    with pytest.raises(ImageDecodeError, match=r"Cannot decode image x.tar.gz:train/cat/0001.jpg"):
        open_rgb(EncodedImage(b"not a jpeg", "x.tar.gz:train/cat/0001.jpg"))


def test_array_image_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"batch\[3\]: expected pixels of shape \(height, width, 3\)"):
        ArrayImage(np.zeros((32, 32), dtype=np.uint8), "batch[3]")


def test_tag_method_rejects_training_set_without_tags():
    from hashbench.interface import TrainingSet
    from hashbench.registry import make_hasher

    hasher = make_hasher("dstdh", n_bits=16, seed=0, dataset="cifar10")
    train = TrainingSet(ids=np.arange(4), features=np.ones((4, 8), dtype=np.float32), tags=None)

    with pytest.raises(ValueError, match=r"has no \['tags'\]"):
        hasher.fit(train)
