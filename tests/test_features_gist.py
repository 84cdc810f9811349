"""GIST-512 descriptor: shape, invariances, orientation selectivity and cache compatibility."""

import numpy as np
import pytest
from PIL import Image

from hashbench.features import GIST, ImageDecodeError, compute_features, get_backbone, list_backbones
from hashbench.features.gist import gist_descriptors, load_grey

ORIENTATIONS = 8
SCALES = 4
BLOCKS = 16


def _random_images(n=6, seed=0, size=(48, 64)):
    rng = np.random.default_rng(seed)
    # Smooth random textures: random pixels blurred by a box filter, so all scales carry energy.
    pixels = rng.integers(0, 256, (n, size[0] + 4, size[1] + 4, 3)).astype(np.float64)
    smooth = sum(pixels[:, i:i + size[0], j:j + size[1]] for i in range(5) for j in range(5)) / 25
    return [Image.fromarray(image.astype(np.uint8)) for image in smooth]


def _grating(axis, period=4.0):
    coordinates = np.arange(32, dtype=np.float64)
    wave = 128 + 100 * np.sin(2 * np.pi * coordinates / period)
    return np.tile(wave, (32, 1)) if axis == "x" else np.tile(wave[:, None], (1, 32))


def _orientation_energy(descriptor):
    # Layout: scale, orientation, then 16 blocks.
    return descriptor.reshape(SCALES, ORIENTATIONS, BLOCKS).sum(axis=(0, 2))


def test_gist_registered():
    assert "gist" in list_backbones()
    assert isinstance(get_backbone("gist"), GIST)


def test_gist_output_shape():
    features = GIST().extract(_random_images())
    assert features.shape == (6, 512)
    assert features.dtype == np.float32
    assert np.all(np.isfinite(features))
    assert np.all(features >= 0)


def test_gist_deterministic_across_batches():
    images = _random_images()
    first = GIST().extract(images, batch_size=4)
    second = GIST().extract(images, batch_size=1)
    np.testing.assert_array_equal(first, second)


def test_gist_invariant_to_brightness_scaling():
    grey = np.stack([load_grey(image) for image in _random_images()])
    np.testing.assert_allclose(gist_descriptors(0.4 * grey), gist_descriptors(grey), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gist_descriptors(grey + 30.0), gist_descriptors(grey), rtol=1e-5, atol=1e-6)


def test_gist_brightness_on_8bit_images():
    # A darker copy of an 8-bit image is rounded again, so the descriptor changes only slightly.
    images = _random_images()
    darker = [Image.fromarray((np.asarray(image) * 0.5).round().astype(np.uint8)) for image in images]
    original = GIST().extract(images)
    dimmed = GIST().extract(darker)
    for a, b in zip(original, dimmed):
        assert np.corrcoef(a, b)[0, 1] > 0.99


def test_gist_differs_between_images():
    features = GIST().extract(_random_images(n=2))
    assert np.linalg.norm(features[0] - features[1]) > 0.05 * np.linalg.norm(features[0])


def test_gist_orientation_selective():
    # Stripes whose intensity varies along x excite orientation 0 most, and stripes varying along
    # y excite orientation 4 (90 degrees) most.
    descriptors = gist_descriptors(np.stack([_grating("x"), _grating("y")]))
    assert np.argmax(_orientation_energy(descriptors[0])) == 0
    assert np.argmax(_orientation_energy(descriptors[1])) == 4


def test_gist_uniform_image_has_no_energy():
    descriptor = gist_descriptors(np.full((1, 32, 32), 90.0))
    np.testing.assert_allclose(descriptor, 0.0, atol=1e-6)


def test_gist_rejects_wrong_size():
    with pytest.raises(ValueError, match="images must have shape \\(n_images, 32, 32\\), got \\(1, 16, 16\\)"):
        gist_descriptors(np.zeros((1, 16, 16)))


def test_gist_rejects_gpu_device():
    with pytest.raises(ValueError, match="CPU only, got device='cuda'"):
        GIST(device="cuda")


def test_gist_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        GIST().extract(_random_images(n=1), batch_size=0)


def test_gist_corrupt_file_named(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not a jpeg")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        GIST().extract([path])


def test_gist_features_cached(tmp_path):
    paths = []
    for index, image in enumerate(_random_images(n=3)):
        paths.append(tmp_path / f"im{index}.png")
        image.save(paths[-1])
    first = compute_features(GIST(), paths, np.arange(3), dataset="generated", cache_dir=tmp_path / "cache")
    second = compute_features(GIST(), paths, np.arange(3), dataset="generated", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first, second)
    assert len(list((tmp_path / "cache").glob("generated_gist_*.npy"))) == 1


def test_gist_on_mirflickr_images(data_root):
    folder = data_root / "mirflickr25k" / "mirflickr"
    paths = [folder / f"im{i}.jpg" for i in range(1, 9)]
    if not all(path.is_file() for path in paths):
        pytest.skip(f"MIRFlickr images not found under {folder}")
    features = GIST().extract(paths)
    assert features.shape == (8, 512)
    assert np.all(np.isfinite(features))
    # Distinct photos give distinct descriptors.
    assert len({feature.tobytes() for feature in features}) == 8


def test_gist_reads_in_memory_archive_images(data_root):
    # CIFAR-10 images come out of the tar as in-memory objects with ``open_rgb()``.
    from hashbench.data import load_dataset

    dataset = load_dataset("cifar10", data_root)
    features = get_backbone("gist").extract(dataset.image_paths[:2])
    assert features.shape == (2, 512)
