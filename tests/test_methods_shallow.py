"""Shallow hashing methods: PCAH, SH, AGH, SGH, SpH, DSH and CCA-ITQ.

Each method is checked for the common contract and for a property that its paper claims, on a
small generated problem where the property can be measured.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from hashbench.codes import unpack_codes
from hashbench.interface import TrainingSet
from hashbench.methods.agh import AGH
from hashbench.methods.cca_itq import CCAITQ
from hashbench.methods.dsh import DSH
from hashbench.methods.itq import ITQ
from hashbench.methods.pcah import PCAH
from hashbench.methods.sgh import SGH
from hashbench.methods.sh import SpectralHashing
from hashbench.methods.sph import SphericalHashing
from hashbench.registry import get_method_class, list_methods, load_method_definition

NAMES = ["pcah", "sh", "agh", "sgh", "sph", "dsh", "cca-itq"]


def _features(n=400, d=40, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) * np.linspace(3.0, 0.1, d)).astype(np.float32)


def _tags(n=400, n_tags=30, seed=1):
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n, n_tags)) < 0.2).astype(np.float32))


def _train(features, tags=None):
    return TrainingSet(ids=np.arange(len(features)), features=features, tags=tags)


def _small(name, n_bits, seed=0):
    """Build a method with parameters that fit 400 training items."""
    cls = get_method_class(name)
    if name in ("agh", "sgh"):
        return cls(n_bits=n_bits, seed=seed, n_anchors=100)
    return cls(n_bits=n_bits, seed=seed)


def _bit_correlations(bits):
    correlations = np.corrcoef(bits.T.astype(np.float64))
    return correlations[~np.eye(bits.shape[1], dtype=bool)]


# --------------------------------------------------------------------------------------------
# Common contract
# --------------------------------------------------------------------------------------------


def test_methods_registered():
    assert set(NAMES) <= set(list_methods())


@pytest.mark.parametrize("name", NAMES)
def test_definition_matches_constructor(name):
    definition = load_method_definition(name)
    assert set(definition.defaults) <= set(get_method_class(name).get_param_names())
    get_method_class(name)(**definition.defaults)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_bits", [8, 16])
def test_codes_have_packed_shape(name, n_bits):
    features = _features()
    codes = _small(name, n_bits).fit(_train(features, _tags())).encode(features[:50])
    assert codes.shape == (50, n_bits // 8)
    assert codes.dtype == np.uint8


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_codes(name):
    features = _features()
    train = _train(features, _tags())
    first = _small(name, 16, seed=3).fit(train).encode(features)
    second = _small(name, 16, seed=3).fit(train).encode(features)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", NAMES)
def test_encode_rejects_other_width(name):
    features = _features()
    hasher = _small(name, 16).fit(_train(features, _tags()))
    with pytest.raises(ValueError, match="fitted on 40-dimensional features"):
        hasher.encode(features[:, :10])


# --------------------------------------------------------------------------------------------
# PCAH
# --------------------------------------------------------------------------------------------


def test_pcah_rejects_more_bits_than_features():
    features = _features(d=12)
    with pytest.raises(ValueError, match="n_bits must be at most n_features=12 for PCAH.* got 16"):
        PCAH(n_bits=16).fit(_train(features))


def test_pcah_bits_follow_principal_axes():
    # Axis-aligned data whose standard deviation halves from one axis to the next: bit j is the
    # sign of centred coordinate j.
    rng = np.random.default_rng(0)
    features = (rng.standard_normal((2000, 12)) * 0.5 ** np.arange(12)).astype(np.float32)
    pcah = PCAH(n_bits=8).fit(_train(features))
    bits = unpack_codes(pcah.encode(features))
    centred = features - features.mean(axis=0)
    agreement = np.mean(bits == np.where(centred[:, :8] >= 0, 1, -1), axis=0)
    assert np.all(np.maximum(agreement, 1 - agreement) > 0.95)


# --------------------------------------------------------------------------------------------
# SH
# --------------------------------------------------------------------------------------------


def _uniform_box(n=20000, lengths=(8.0, 5.0, 3.0, 2.0, 1.3), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, len(lengths))) * np.array(lengths)).astype(np.float32)


def test_sh_bits_nearly_uncorrelated_on_box():
    features = _uniform_box()
    sh = SpectralHashing(n_bits=16).fit(_train(features))
    bits = unpack_codes(sh.encode(features))

    # Bits from different principal directions are independent on a uniform box.
    direction = np.argmax(sh.modes_, axis=1)
    correlations = np.corrcoef(bits.T.astype(np.float64))
    different = direction[:, None] != direction[None, :]
    assert np.max(np.abs(correlations[different])) < 0.05
    # Along one direction, thresholded cosines of modes k and 3k correlate (-1/3); the rest do not.
    assert np.mean(np.abs(_bit_correlations(bits))) < 0.06
    assert np.all(np.abs(bits.mean(axis=0)) < 0.05)


def test_sh_eigenfunctions_orthogonal_on_box():
    features = _uniform_box()
    sh = SpectralHashing(n_bits=16).fit(_train(features))
    values = sh.eigenfunctions(features)
    gram = values.T @ values / len(values)
    assert np.max(np.abs(gram - np.diag(np.diag(gram)))) < 0.05


def test_sh_orders_modes_by_eigenvalue():
    sh = SpectralHashing(n_bits=8).fit(_train(_uniform_box(n=2000)))
    eigenvalues = np.sum((sh.modes_ / sh.box_range_) ** 2, axis=1)
    assert np.all(np.diff(eigenvalues) >= 0)
    # The side of length 8 gives the first mode, and the side of length 1.3 gives none of the 8 bits.
    assert sh.modes_[0, 0] == 1
    assert np.all(sh.modes_[:, 4] == 0)


def test_sh_allows_more_bits_than_features():
    features = _uniform_box(n=2000, lengths=(4.0, 1.0))
    codes = SpectralHashing(n_bits=16).fit(_train(features)).encode(features)
    assert codes.shape == (2000, 2)


# --------------------------------------------------------------------------------------------
# AGH
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [1, 2])
def test_agh_codes_balanced(layers):
    features = _uniform_box(n=3000, lengths=(3.0, 2.0, 1.0))
    agh = AGH(n_bits=16, layers=layers, n_anchors=100).fit(_train(features))
    bits = unpack_codes(agh.encode(features))
    assert np.mean(np.abs(bits.mean(axis=0))) < 0.1
    assert np.all(np.abs(bits.mean(axis=0)) < 0.3)


def test_agh_embedding_meets_constraints():
    # The relaxed codes Y = Z W meet the balance and decorrelation constraints of AGH:
    # 1^T Y = 0 and Y^T Y = n I.
    features = _features(n=1000)
    agh = AGH(n_bits=16, n_anchors=100).fit(_train(features))
    embedding = agh.embed(features)
    np.testing.assert_allclose(embedding.sum(axis=0), 0.0, atol=1e-6 * len(features))
    np.testing.assert_allclose(embedding.T @ embedding / len(features), np.eye(16), atol=1e-6)


def test_agh_two_layers_share_first_layer():
    features = _features(n=1000)
    one = unpack_codes(AGH(n_bits=16, n_anchors=100).fit(_train(features)).encode(features))
    two = unpack_codes(AGH(n_bits=16, layers=2, n_anchors=100).fit(_train(features)).encode(features))
    np.testing.assert_array_equal(two[:, :8], one[:, :8])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"layers": 3}, "layers must be 1 .* or 2 .*, got 3"),
        ({"n_anchors": 500}, "n_anchors must be between 2 and 400 .*got 500"),
        ({"n_anchors": 10}, "n_bits=16 with layers=1 needs 16 eigenvectors, but n_anchors=10"),
        ({"n_nearest_anchors": 0}, "n_nearest_anchors must be between 1 and 300 .*got 0"),
    ],
    ids=["layers", "anchors-above-items", "anchors-below-bits", "nearest"],
)
def test_agh_rejects_bad_params(params, message):
    with pytest.raises(ValueError, match=message):
        AGH(n_bits=16, **params).fit(_train(_features()))


# --------------------------------------------------------------------------------------------
# SGH
# --------------------------------------------------------------------------------------------


def _clusters(n=600, n_clusters=6, d=20, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d))
    labels = rng.integers(0, n_clusters, n)
    features = centres[labels] + spread * rng.standard_normal((n, d))
    return features.astype(np.float32), labels


def _hamming(bits):
    return (bits.shape[1] - bits.astype(np.int64) @ bits.T.astype(np.int64)) // 2


def test_sgh_codes_preserve_neighbourhoods():
    features, labels = _clusters()
    bits = unpack_codes(SGH(n_bits=16, n_anchors=100).fit(_train(features)).encode(features))
    distances = _hamming(bits)
    same = labels[:, None] == labels[None, :]
    assert distances[same].mean() < 0.5 * distances[~same].mean()


def test_sgh_rejects_more_bits_than_anchors():
    with pytest.raises(ValueError, match="n_bits must be at most n_anchors=8 for SGH.*got 16"):
        SGH(n_bits=16, n_anchors=8).fit(_train(_features()))


# --------------------------------------------------------------------------------------------
# SpH
# --------------------------------------------------------------------------------------------


def test_sph_spheres_balanced_and_independent():
    features = _features(n=2000, d=32)
    sph = SphericalHashing(n_bits=16).fit(_train(features))
    inside = unpack_codes(sph.encode(features)) > 0
    n = len(features)
    assert sph.converged_

    # Each sphere contains half the items.
    np.testing.assert_allclose(inside.sum(axis=0), n / 2, atol=1)
    # Pairs of spheres share about a quarter, within the SpH tolerances 0.1 n/4 (mean) and 0.15 n/4 (std).
    overlaps = (inside.T.astype(np.int64) @ inside.astype(np.int64))[np.triu_indices(16, k=1)]
    assert np.mean(np.abs(overlaps - n / 4)) <= 0.1 * n / 4
    assert np.std(overlaps) <= 0.15 * n / 4


def test_sph_rejects_bad_iterations():
    with pytest.raises(ValueError, match="max_iter must be at least 0, got -1"):
        SphericalHashing(n_bits=16, max_iter=-1).fit(_train(_features()))


# --------------------------------------------------------------------------------------------
# DSH
# --------------------------------------------------------------------------------------------


def test_dsh_bits_balanced_on_clusters():
    # Among the bisectors of adjacent k-means groups, the most even splits are kept.
    features, _ = _clusters(n=1200, n_clusters=12)
    dsh = DSH(n_bits=8).fit(_train(features))
    bits = unpack_codes(dsh.encode(features))
    above = np.mean(bits > 0, axis=0)
    np.testing.assert_allclose(above, np.mean(features.astype(np.float64) @ dsh.projection_ > dsh.thresholds_, axis=0))
    entropy = -(above * np.log2(above) + (1 - above) * np.log2(1 - above))
    np.testing.assert_allclose(entropy, dsh.entropies_)
    assert np.all(entropy > 0.8)


def test_dsh_keeps_highest_entropy_splits():
    dsh = DSH(n_bits=16).fit(_train(_features()))
    assert np.all(np.diff(dsh.entropies_) <= 1e-12)
    assert dsh.entropies_[0] > 0.95


def test_dsh_rejects_too_few_items():
    with pytest.raises(ValueError, match="48 groups, but there are only 20 training items"):
        DSH(n_bits=32).fit(_train(_features(n=20)))


# --------------------------------------------------------------------------------------------
# CCA-ITQ
# --------------------------------------------------------------------------------------------


def _tagged_problem(n=800, n_classes=4, seed=0):
    """Items whose class shows in weak feature directions and in noisy tags.

    The class adds an offset of 2 in one of 4 feature dimensions, and 30 other dimensions carry
    noise with standard deviation 3. The top principal directions are therefore mostly noise,
    while CCA with the tags finds the class directions.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    signal = np.eye(n_classes)[labels] * 2.0 + 0.3 * rng.standard_normal((n, n_classes))
    noise = 3.0 * rng.standard_normal((n, 30))
    features = np.hstack([signal, noise]).astype(np.float32)
    tags = np.eye(n_classes)[labels] * (rng.random((n, n_classes)) < 0.8)
    extra = rng.random((n, 6)) < 0.1
    return features, sp.csr_matrix(np.hstack([tags, extra]).astype(np.float32)), labels


def _same_class_gap(bits, labels):
    distances = _hamming(bits)
    same = labels[:, None] == labels[None, :]
    return distances[~same].mean() - distances[same].mean()


def test_cca_itq_encodes_tag_structure_from_features():
    features, tags, labels = _tagged_problem()
    cca_bits = unpack_codes(CCAITQ(n_bits=8).fit(_train(features, tags)).encode(features))
    itq_bits = unpack_codes(ITQ(n_bits=8).fit(_train(features)).encode(features))
    assert _same_class_gap(cca_bits, labels) > 2.0
    assert _same_class_gap(cca_bits, labels) > 3 * _same_class_gap(itq_bits, labels)


def test_cca_itq_requires_tags():
    with pytest.raises(ValueError, match="has no \\['tags'\\]"):
        CCAITQ(n_bits=8).fit(_train(_features()))


def test_cca_itq_rejects_more_bits_than_tags():
    features = _features()
    with pytest.raises(ValueError, match="min\\(n_features=40, n_tags=12\\) = 12 .* got 16"):
        CCAITQ(n_bits=16).fit(_train(features, _tags(n_tags=12)))


def test_cca_itq_rejects_untagged_set():
    features = _features()
    empty = sp.csr_matrix((len(features), 20), dtype=np.float32)
    with pytest.raises(ValueError, match="none of the 400 training items has a tag"):
        CCAITQ(n_bits=8).fit(_train(features, empty))
