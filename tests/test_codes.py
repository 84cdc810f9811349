import numpy as np
import pytest

from hashbench.codes import binarize, check_packed_codes, pack_codes, unpack_codes, validate_n_bits


@pytest.mark.parametrize("n_bits", [8, 16, 32, 64, 128])
def test_pack_unpack_roundtrip(n_bits):
    rng = np.random.default_rng(0)
    signs = rng.choice(np.array([-1, 1], dtype=np.int8), size=(5, n_bits))
    packed = pack_codes(signs)
    assert packed.shape == (5, n_bits // 8)
    assert packed.dtype == np.uint8
    np.testing.assert_array_equal(unpack_codes(packed), signs)


def test_pack_bit_order_msb_first():
    bits = np.array([[1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1]])
    np.testing.assert_array_equal(pack_codes(bits), [[0b10000000, 0b00000001]])


def test_binarize_maps_zero_to_plus_one():
    np.testing.assert_array_equal(binarize([[0.0, -0.0, -1e-9, 2.0]]), [[1, 1, -1, 1]])


@pytest.mark.parametrize("bad", [0, -8, 12, 7, 2.0, "32", True])
def test_validate_n_bits_rejects(bad):
    with pytest.raises(ValueError, match="positive multiple of 8"):
        validate_n_bits(bad)


def test_check_packed_codes_rejects_other_dtypes():
    with pytest.raises(TypeError, match="dtype uint8"):
        check_packed_codes(np.zeros((2, 4), dtype=np.int64))


def test_check_packed_codes_rejects_wrong_width():
    with pytest.raises(ValueError, match="expected 4 bytes for 32-bit codes"):
        check_packed_codes(np.zeros((2, 2), dtype=np.uint8), n_bits=32)
