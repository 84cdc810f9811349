"""Tests of the VGG-16 backbone with a randomly initialised weights file on real MIRFlickr images.

Tests never download the official 528 MB file. They use a seeded torchvision ``vgg16`` state
dict in its place, saved under a name with its own SHA-256 prefix.
"""

import logging
import os

import numpy as np
import pytest
import torch
import torchvision

from hashbench.download import sha256_file
from hashbench.features import get_backbone
from hashbench.features.backbones import VGG16_WEIGHTS_ENV


@pytest.fixture(scope="module")
def sample_paths(data_root):
    folder = data_root / "mirflickr25k" / "mirflickr"
    if not (folder / "im1.jpg").is_file():
        pytest.skip(f"MIRFlickr images not found under {folder}")
    # im7 is greyscale.
    return [folder / "im1.jpg", folder / "im7.jpg"]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A random VGG-16 state dict named ``vgg16-<first 8 hex digits of its SHA-256>.pth``."""
    folder = tmp_path_factory.mktemp("vgg16_weights")
    torch.manual_seed(0)
    staging = folder / "staging.pth"
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), staging)
    path = folder / f"vgg16-{sha256_file(staging)[:8]}.pth"
    staging.rename(path)
    return path


@pytest.fixture(scope="module")
def vgg16(weights_file):
    return get_backbone("vgg16", weights_path=weights_file)


def _link(source, destination):
    """Give ``source`` a second name without copying its 528 MB."""
    try:
        os.link(source, destination)
    except OSError:
        os.symlink(source, destination)
    return destination


def test_vgg16_features_shape_and_dtype(vgg16, sample_paths):
    features = vgg16.extract(sample_paths, batch_size=2)

    assert features.shape == (2, 4096)
    assert features.dtype == np.float32


def test_vgg16_features_are_fc7_after_relu(vgg16, sample_paths):
    batch = vgg16.load_images(sample_paths)
    captured = []
    handle = vgg16.model.classifier[4].register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.inference_mode():
            vgg16.model(batch)
    finally:
        handle.remove()

    features = vgg16.forward_tensor(batch)

    assert isinstance(vgg16.model.classifier[4], torch.nn.ReLU)
    torch.testing.assert_close(features, captured[0], rtol=1e-4, atol=1e-5)
    assert features.min() >= 0


def test_vgg16_loads_weights_from_environment(weights_file, monkeypatch):
    monkeypatch.setenv(VGG16_WEIGHTS_ENV, str(weights_file))

    backbone = get_backbone("vgg16")

    assert backbone.weights_sha256 == sha256_file(weights_file)


def test_vgg16_warns_when_weights_not_official(weights_file, caplog):
    with caplog.at_level(logging.WARNING, logger="hashbench.features.backbones"):
        get_backbone("vgg16", weights_path=weights_file)

    assert "is not torchvision's vgg16-397923af.pth" in caplog.text


def test_vgg16_identity(vgg16, weights_file):
    assert vgg16.n_features == 4096
    assert vgg16.weights_sha256.startswith(weights_file.name[6:14])
    assert "resize shorter side to 256" in vgg16.preprocessing
    assert "mean=(0.485, 0.456, 0.406)" in vgg16.preprocessing


def test_vgg16_rejects_hash_mismatch(weights_file, tmp_path):
    wrong_prefix = "00000000" if not weights_file.name.startswith("vgg16-00000000") else "11111111"
    renamed = _link(weights_file, tmp_path / f"vgg16-{wrong_prefix}.pth")

    with pytest.raises(ValueError, match=f"SHA-256 is [0-9a-f]{{64}}, which does not start with {wrong_prefix}"):
        get_backbone("vgg16", weights_path=renamed)


def test_vgg16_rejects_name_without_hash(weights_file, tmp_path):
    renamed = _link(weights_file, tmp_path / "vgg16.pth")

    with pytest.raises(ValueError, match="name has no SHA-256 prefix"):
        get_backbone("vgg16", weights_path=renamed)


def test_vgg16_rejects_other_state_dict(tmp_path):
    staging = tmp_path / "staging.pth"
    torch.save({"weight": torch.zeros(3)}, staging)
    path = tmp_path / f"vgg16-{sha256_file(staging)[:8]}.pth"
    staging.rename(path)

    with pytest.raises(ValueError, match=f"Cannot load {path} as torchvision VGG-16 weights"):
        get_backbone("vgg16", weights_path=path)


def test_vgg16_missing_weights_explains_download(monkeypatch):
    monkeypatch.delenv(VGG16_WEIGHTS_ENV, raising=False)

    with pytest.raises(FileNotFoundError) as error:
        get_backbone("vgg16")

    message = str(error.value)
    assert "vgg16-397923af.pth" in message
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert "hashbench fetch-weights vgg16" in message
    assert VGG16_WEIGHTS_ENV in message


def test_vgg16_missing_file_names_path(tmp_path):
    missing = tmp_path / "vgg16-397923af.pth"

    with pytest.raises(FileNotFoundError, match=f"VGG-16 weights file {missing} .*not found"):
        get_backbone("vgg16", weights_path=missing)
