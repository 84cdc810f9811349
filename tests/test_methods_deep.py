"""Deep unsupervised hash heads on cached features: GreedyHash, Bi-half and SSDH."""

import numpy as np
import pytest
import torch

from hashbench.codes import unpack_codes
from hashbench.interface import TrainingSet
from hashbench.methods.bihalf import BiHalf
from hashbench.methods.greedyhash import GreedyHash
from hashbench.methods.ssdh import SSDH, structure_thresholds
from hashbench.registry import get_method_class, load_method_definition

NAMES = ["greedyhash", "bihalf", "ssdh"]


def _clusters(n=600, n_clusters=6, d=32, seed=0):
    """Non-negative clustered features, like pooled ReLU activations."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d))
    labels = rng.integers(0, n_clusters, n)
    features = np.maximum(centres[labels] + 0.5 * rng.standard_normal((n, d)), 0)
    return features.astype(np.float32), labels


def _train(features):
    return TrainingSet(ids=np.arange(len(features)), features=features)


def _fast(name, **params):
    """Build a method with its TOML defaults and few epochs, so that a test takes about a second."""
    defaults = dict(load_method_definition(name).defaults)
    defaults.update({"epochs": 10, "lr": 1e-2})
    defaults.update(params)
    return get_method_class(name)(n_bits=16, **defaults)


def _hamming(bits):
    return (bits.shape[1] - bits.astype(np.int64) @ bits.T.astype(np.int64)) // 2


@pytest.mark.parametrize("name", NAMES)
def test_definition_matches_constructor(name):
    definition = load_method_definition(name)
    assert set(definition.defaults) <= set(get_method_class(name).get_param_names())
    assert definition.defaults["device"] == "cpu"


@pytest.mark.parametrize("name", NAMES)
def test_codes_have_packed_shape(name):
    features, _ = _clusters()
    codes = _fast(name).fit(_train(features)).encode(features[:7])
    assert codes.shape == (7, 2)
    assert codes.dtype == np.uint8


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_codes(name):
    features, _ = _clusters()
    first = _fast(name, seed=4).fit(_train(features)).encode(features)
    second = _fast(name, seed=4).fit(_train(features)).encode(features)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", NAMES)
def test_other_seed_other_codes(name):
    features, _ = _clusters()
    first = _fast(name, seed=1).fit(_train(features)).encode(features)
    second = _fast(name, seed=2).fit(_train(features)).encode(features)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("name", NAMES)
def test_fit_leaves_global_rng_alone(name):
    features, _ = _clusters(n=100)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _fast(name, epochs=1).fit(_train(features))
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


# Bi-half is left out: its batch-wise half-and-half codes change from step to step, so its loss
# does not fall monotonically from the first epoch.
@pytest.mark.parametrize("name", ["greedyhash", "ssdh"])
def test_training_lowers_loss(name):
    features, _ = _clusters()
    hasher = _fast(name, epochs=20).fit(_train(features))
    assert hasher.history_["loss"][-1] < hasher.history_["loss"][0]


@pytest.mark.parametrize("name", NAMES)
def test_codes_keep_clusters_together(name):
    features, labels = _clusters()
    bits = unpack_codes(_fast(name, epochs=20).fit(_train(features)).encode(features))
    distances = _hamming(bits)
    same = labels[:, None] == labels[None, :]
    assert distances[same].mean() < 0.6 * distances[~same].mean()


def test_greedyhash_code_similarity_tracks_features():
    # The unsupervised objective: cosine similarity of codes matches that of the features.
    features, _ = _clusters()
    bits = unpack_codes(_fast("greedyhash", epochs=30).fit(_train(features)).encode(features)).astype(np.float64)
    normalised = features / np.linalg.norm(features, axis=1, keepdims=True)
    feature_cosine = (normalised @ normalised.T)[np.triu_indices(len(features), k=1)]
    code_cosine = (bits @ bits.T / bits.shape[1])[np.triu_indices(len(features), k=1)]
    assert np.corrcoef(feature_cosine, code_cosine)[0, 1] > 0.7


def test_bihalf_bits_balanced():
    # Bi-half maximises bit entropy: every bit splits the training items about in half, while
    # GreedyHash on the same non-negative features leaves bits unbalanced.
    features, _ = _clusters(n=1000)
    bihalf_bits = unpack_codes(_fast("bihalf", epochs=30).fit(_train(features)).encode(features))
    greedy_bits = unpack_codes(_fast("greedyhash", epochs=30).fit(_train(features)).encode(features))
    assert np.mean(np.abs(bihalf_bits.mean(axis=0))) < 0.2
    assert np.mean(np.abs(bihalf_bits.mean(axis=0))) < np.mean(np.abs(greedy_bits.mean(axis=0)))


def test_ssdh_structure_thresholds_bracket_mode():
    features, _ = _clusters(n=300)
    similar_below, dissimilar_above = structure_thresholds(features, 2.0, 2.0)
    assert 0.0 < similar_below < dissimilar_above < 2.0


def test_ssdh_similar_pairs_closer_than_dissimilar():
    features, _ = _clusters()
    ssdh = _fast("ssdh", epochs=20).fit(_train(features))
    structure = ssdh.similarity(torch.from_numpy(features)).numpy()
    distances = _hamming(unpack_codes(ssdh.encode(features)))
    assert (structure == 1).sum() > len(features)
    assert (structure == -1).sum() > len(features)
    assert distances[structure == 1].mean() < 0.5 * distances[structure == -1].mean()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"device": "tpu"}, "device must be .*got 'tpu'"),
        ({"hidden_units": 64}, "hidden_units must be a list of layer widths .*got 64"),
        ({"hidden_units": [0]}, "each entry of hidden_units must be at least 1, got 0"),
        ({"epochs": 0}, "epochs must be at least 1, got 0"),
        ({"batch_size": 1}, "batch_size must be at least 2, got 1"),
        ({"lr": -1.0}, "lr must be greater than 0.0, got -1.0"),
    ],
    ids=["device", "hidden-type", "hidden-width", "epochs", "batch", "lr"],
)
def test_rejects_bad_training_params(params, message):
    features, _ = _clusters(n=50)
    with pytest.raises(ValueError, match=message):
        _fast("bihalf", **params).fit(_train(features))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_gpu_rejected():
    features, _ = _clusters(n=50)
    with pytest.raises(ValueError, match="torch.cuda.is_available\\(\\) is False"):
        _fast("greedyhash", device="cuda").fit(_train(features))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_gives_codes():
    features, labels = _clusters()
    bits = unpack_codes(_fast("bihalf", device="cuda", epochs=20).fit(_train(features)).encode(features))
    distances = _hamming(bits)
    same = labels[:, None] == labels[None, :]
    assert distances[same].mean() < 0.6 * distances[~same].mean()


def test_hidden_layers_used():
    features, _ = _clusters(n=100)
    hasher = _fast("ssdh", hidden_units=[24], epochs=2).fit(_train(features))
    shapes = [tuple(p.shape) for p in hasher.head_.parameters()]
    assert shapes == [(24, 32), (24,), (16, 24), (16,)]


def test_greedyhash_rejects_negative_alpha():
    features, _ = _clusters(n=50)
    with pytest.raises(ValueError, match="alpha must be at least 0.0, got -0.5"):
        GreedyHash(n_bits=16, alpha=-0.5, epochs=1).fit(_train(features))


def test_bihalf_and_ssdh_classes_registered():
    assert get_method_class("bihalf") is BiHalf
    assert get_method_class("ssdh") is SSDH
