"""Tests of the EfficientNet-Lite0 backbone and the backbone registry on real MIRFlickr images."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import VGG16_Weights

from hashbench.features import Backbone, ImageDecodeError, get_backbone, list_backbones, register_backbone

# im1 to im12 include the greyscale im7 and im11.
SAMPLE_IDS = list(range(1, 13))
GREYSCALE_ID = 7
IMAGENET_CLASSES = VGG16_Weights.IMAGENET1K_V1.meta["categories"]


@pytest.fixture(scope="module")
def image_dir(data_root):
    folder = data_root / "mirflickr25k" / "mirflickr"
    if not (folder / "im1.jpg").is_file():
        pytest.skip(f"MIRFlickr images not found under {folder}")
    return folder


@pytest.fixture(scope="module")
def sample_paths(image_dir):
    return [image_dir / f"im{i}.jpg" for i in SAMPLE_IDS]


@pytest.fixture(scope="module")
def lite0():
    return get_backbone("efficientnet-lite0")


@pytest.fixture(scope="module")
def lite0_features(lite0, sample_paths):
    return lite0.extract(sample_paths, batch_size=4)


def test_lite0_features_shape_and_dtype(lite0_features):
    assert lite0_features.shape == (len(SAMPLE_IDS), 1280)
    assert lite0_features.dtype == np.float32


def test_lite0_features_in_relu6_range(lite0_features):
    # Averages of ReLU6 outputs.
    assert lite0_features.min() >= 0.0
    assert lite0_features.max() <= 6.0


def test_lite0_features_differ_between_images(lite0_features):
    distances = np.linalg.norm(lite0_features[:, None] - lite0_features[None], axis=2)
    off_diagonal = distances[~np.eye(len(distances), dtype=bool)]
    assert off_diagonal.min() > 1.0


def test_lite0_deterministic(lite0, sample_paths, lite0_features):
    again = lite0.extract(sample_paths, batch_size=4)

    assert np.array_equal(again, lite0_features)


def test_lite0_batch_size_independent(lite0, sample_paths, lite0_features):
    whole_batch = lite0.extract(sample_paths, batch_size=len(sample_paths))

    np.testing.assert_allclose(whole_batch, lite0_features, rtol=1e-4, atol=1e-5)


def test_lite0_greyscale_file_matches_rgb_copy(lite0, image_dir):
    path = image_dir / f"im{GREYSCALE_ID}.jpg"
    with Image.open(path) as image:
        assert image.mode == "L"
        rgb = image.convert("RGB")

    from_file = lite0.extract([path], batch_size=1)
    from_rgb = lite0.extract([rgb], batch_size=1)

    assert np.array_equal(from_file, from_rgb)


@pytest.mark.parametrize(
    "image_id, expected_class",
    [(65, "monarch"), (166, "daisy"), (909, "briard")],
    ids=["butterfly", "daisy", "dog"],
)
def test_lite0_classifier_recognises_images(lite0, image_dir, image_id, expected_class):
    # Guards the weights and the input scaling: the head must name the tagged subject.
    batch = lite0.load_images([image_dir / f"im{image_id}.jpg"])
    with torch.inference_mode():
        probabilities = lite0.model(batch).softmax(dim=1)[0]

    top = int(probabilities.argmax())
    assert IMAGENET_CLASSES[top] == expected_class
    assert probabilities[top] > 0.5


def test_lite0_input_matches_stem_batch_norm_statistics(lite0, sample_paths):
    # With the scaling the weights were trained with, the stem convolution's output has the
    # variance that the batch norm after it expects; ImageNet mean/std gives about 4x too much.
    batch = lite0.load_images(sample_paths)
    batch_norm = lite0.model._bn0
    with torch.inference_mode():
        stem = lite0.model._conv_stem(batch)
    active = batch_norm.running_var > 1e-4
    log_ratio = torch.log(stem.var(dim=(0, 2, 3)) / batch_norm.running_var)[active].mean()

    assert abs(float(log_ratio)) < 0.7


def test_lite0_load_images_shape(lite0, sample_paths):
    batch = lite0.load_images(sample_paths[:3])

    assert batch.shape == (3, 3, 224, 224)
    assert batch.dtype == torch.float32


def test_lite0_forward_tensor_matches_extract(lite0, sample_paths, lite0_features):
    features = lite0.forward_tensor(lite0.load_images(sample_paths[:4]))

    assert np.array_equal(features.numpy(), lite0_features[:4])


def test_lite0_empty_input(lite0):
    features = lite0.extract([])

    assert features.shape == (0, 1280)
    assert features.dtype == np.float32


def test_lite0_num_threads_restored(lite0, sample_paths):
    before = torch.get_num_threads()

    lite0.extract(sample_paths[:1], num_threads=1)

    assert torch.get_num_threads() == before


def test_lite0_identity(lite0):
    assert lite0.name == "efficientnet-lite0"
    assert lite0.n_features == 1280
    assert lite0.weights_sha256.startswith("57934424")
    assert "(x - 127) / 128" in lite0.preprocessing
    assert lite0.device == torch.device("cpu")


def test_lite0_construction_prints_nothing(capsys):
    get_backbone("efficientnet-lite0")

    assert capsys.readouterr().out == ""


def test_lite0_model_frozen_in_eval_mode(lite0):
    assert not lite0.model.training
    assert not any(parameter.requires_grad for parameter in lite0.model.parameters())


# --------------------------------------------------------------------------------------------
# Unreadable images and invalid arguments
# --------------------------------------------------------------------------------------------


def _garbage(path, source):
    path.write_bytes(b"this is not an image\n" * 20)


def _truncated(path, source):
    path.write_bytes(source.read_bytes()[:1500])


def _empty(path, source):
    path.write_bytes(b"")


@pytest.mark.parametrize("make_file", [_garbage, _truncated, _empty], ids=["garbage", "truncated", "empty"])
def test_lite0_undecodable_image_names_file(lite0, sample_paths, tmp_path, make_file):
    bad = tmp_path / "bad.jpg"
    make_file(bad, sample_paths[0])

    with pytest.raises(ImageDecodeError, match=f"Cannot decode image {bad}"):
        lite0.extract([sample_paths[0], bad])


def test_lite0_missing_image_names_file(lite0, tmp_path):
    missing = tmp_path / "missing.jpg"

    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        lite0.extract([missing])


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "8"], ids=["zero", "negative", "float", "bool", "str"])
def test_lite0_rejects_invalid_batch_size(lite0, batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {batch_size!r}"):
        lite0.extract([], batch_size=batch_size)


def test_lite0_rejects_invalid_num_threads(lite0):
    with pytest.raises(ValueError, match="num_threads must be a positive integer, got 0"):
        lite0.extract([], num_threads=0)


@pytest.mark.parametrize(
    "batch, error, message",
    [
        (np.zeros((1, 3, 224, 224), dtype=np.float32), TypeError, "must be a torch.Tensor"),
        (torch.zeros(1, 3, 128, 128), ValueError, r"shape \(n_images, 3, 224, 224\).*got \(1, 3, 128, 128\)"),
        (torch.zeros(3, 224, 224), ValueError, r"got \(3, 224, 224\)"),
        (torch.zeros(1, 3, 224, 224, dtype=torch.uint8), TypeError, "floating-point"),
    ],
    ids=["numpy", "size", "no-batch-axis", "uint8"],
)
def test_forward_tensor_rejects_invalid_batch(lite0, batch, error, message):
    with pytest.raises(error, match=message):
        lite0.forward_tensor(batch)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def test_list_backbones():
    assert list_backbones() == ["efficientnet-lite0", "gist", "vgg16"]


def test_get_backbone_unknown_lists_known():
    with pytest.raises(ValueError, match=r"Unknown backbone 'resnet50'. Known backbones: efficientnet-lite0, gist, vgg16"):
        get_backbone("resnet50")


def test_register_backbone_rejects_duplicate_name():
    class Duplicate(Backbone):
        name = "efficientnet-lite0"

    with pytest.raises(ValueError, match=r"registered twice: by .*EfficientNetLite0 and by .*Duplicate"):
        register_backbone(Duplicate)


def test_import_sets_no_threads_and_loads_no_model():
    code = (
        "import torch; torch.set_num_threads(1); "
        "import hashbench.features, hashbench.features.backbones as b; "
        "assert torch.get_num_threads() == 1, torch.get_num_threads(); "
        "import sys; assert 'efficientnet_lite_pytorch' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
