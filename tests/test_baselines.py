import numpy as np
import pytest

from hashbench.interface import NotFittedError, TrainingSet
from hashbench.methods.itq import ITQ
from hashbench.methods.lsh import LSH


def _features(n=400, d=40, seed=0):
    rng = np.random.default_rng(seed)
    # Anisotropic Gaussian data, so PCA has a clear order.
    return (rng.standard_normal((n, d)) * np.linspace(3.0, 0.1, d)).astype(np.float32)


@pytest.mark.parametrize("cls", [LSH, ITQ])
@pytest.mark.parametrize("n_bits", [8, 16, 32])
def test_codes_have_packed_shape(cls, n_bits):
    features = _features()
    codes = cls(n_bits=n_bits, seed=0).fit(TrainingSet(ids=np.arange(len(features)), features=features)).encode(features)
    assert codes.shape == (len(features), n_bits // 8)
    assert codes.dtype == np.uint8


@pytest.mark.parametrize("cls", [LSH, ITQ])
def test_same_seed_same_codes(cls):
    features = _features()
    train = TrainingSet(ids=np.arange(len(features)), features=features)
    first = cls(n_bits=16, seed=5).fit(train).encode(features)
    second = cls(n_bits=16, seed=5).fit(train).encode(features)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("cls", [LSH, ITQ])
def test_encode_before_fit_raises(cls):
    with pytest.raises(NotFittedError, match="Call fit before encode"):
        cls(n_bits=16).encode(_features())


def test_itq_lowers_quantization_loss():
    features = _features()
    itq = ITQ(n_bits=16, seed=0, n_iter=50).fit(TrainingSet(ids=np.arange(len(features)), features=features))
    losses = itq.quantization_losses_
    assert losses[-1] < losses[0]
    assert all(later <= earlier + 1e-6 for earlier, later in zip(losses, losses[1:]))


def test_itq_rejects_more_bits_than_features():
    features = _features(d=12)
    with pytest.raises(ValueError, match="n_bits must be at most n_features=12 .* got 16"):
        ITQ(n_bits=16).fit(TrainingSet(ids=np.arange(len(features)), features=features))


def test_itq_bits_are_balanced():
    features = _features()
    itq = ITQ(n_bits=16, seed=0).fit(TrainingSet(ids=np.arange(len(features)), features=features))
    bits = np.unpackbits(itq.encode(features), axis=1)
    assert np.all(np.abs(bits.mean(axis=0) - 0.5) < 0.2)


def test_encode_rejects_other_feature_width():
    features = _features()
    lsh = LSH(n_bits=16).fit(TrainingSet(ids=np.arange(len(features)), features=features))
    with pytest.raises(ValueError, match="fitted on 40-dimensional features"):
        lsh.encode(features[:, :10])


def test_fit_rejects_missing_inputs():
    with pytest.raises(ValueError, match="has no \\['features'\\]"):
        LSH(n_bits=16).fit(TrainingSet(ids=np.arange(3)))


def test_fit_rejects_bad_bits():
    features = _features()
    with pytest.raises(ValueError, match="got 12"):
        LSH(n_bits=12).fit(TrainingSet(ids=np.arange(len(features)), features=features))
