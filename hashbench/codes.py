"""Binary codes: validation of code lengths, binarisation and bit packing.

Every method in hashbench hands its codes to the rest of the suite in one format: packed codes,
``ndarray of shape (n_items, n_bits // 8), dtype uint8``. Bit ``j`` of an item's code is stored in
byte ``j // 8`` at position ``7 - j % 8`` (most significant bit first), which is the order of
``numpy.packbits`` with ``bitorder="big"``. A set bit means +1 and a cleared bit means -1.
"""

import numpy as np


def validate_n_bits(n_bits, *, name="n_bits"):
    """Check that a code length is a positive multiple of 8 and return it as an int.

    Parameters
    ----------
    n_bits : int
        Requested code length in bits.
    name : str, default="n_bits"
        Parameter name used in the error message.

    Returns
    -------
    int
        The validated code length.

    Raises
    ------
    ValueError
        If ``n_bits`` is not an integer or is not a positive multiple of 8.
    """
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)):
        raise ValueError(f"{name} must be a positive multiple of 8 (8, 16, 32, ...), got {n_bits!r}.")
    if n_bits <= 0 or n_bits % 8 != 0:
        raise ValueError(
            f"{name} must be a positive multiple of 8 (8, 16, 32, ...), got {n_bits}. "
            "Packed codes store 8 bits per byte, so choose for example 16, 32, 64 or 128."
        )
    return int(n_bits)


def binarize(values):
    """Map real-valued projections to bits, the one place where a zero is given a side.

    Parameters
    ----------
    values : array-like of shape (n_items, n_bits)
        Real-valued outputs (projections, network outputs, relaxed codes).

    Returns
    -------
    ndarray of shape (n_items, n_bits), dtype int8
        +1 where ``values >= 0`` and -1 elsewhere. An exact zero becomes +1, so no code is ever 0.
    """
    values = np.asarray(values)
    return np.where(values >= 0, 1, -1).astype(np.int8)


def pack_codes(signs):
    """Pack a matrix of +-1 (or 0/1) bits into bytes.

    Parameters
    ----------
    signs : array-like of shape (n_items, n_bits)
        Bits as +-1 or 0/1 integers; values > 0 become set bits. ``n_bits`` must be a multiple
        of 8.

    Returns
    -------
    ndarray of shape (n_items, n_bits // 8), dtype uint8
        Packed codes, most significant bit first.
    """
    signs = np.asarray(signs)
    if signs.ndim != 2:
        raise ValueError(f"codes must be a 2-D array (n_items, n_bits), got shape {signs.shape}.")
    validate_n_bits(signs.shape[1], name="the number of code columns")
    return np.packbits(signs > 0, axis=1, bitorder="big")


def unpack_codes(codes, n_bits=None):
    """Unpack packed codes into a +-1 matrix.

    Parameters
    ----------
    codes : ndarray of shape (n_items, n_bytes), dtype uint8
        Packed codes.
    n_bits : int, optional
        Expected code length; defaults to ``8 * n_bytes``.

    Returns
    -------
    ndarray of shape (n_items, n_bits), dtype int8
        +1 for a set bit and -1 for a cleared bit.
    """
    codes = check_packed_codes(codes, n_bits=n_bits)
    bits = np.unpackbits(codes, axis=1, bitorder="big")
    return (bits.astype(np.int8) * 2 - 1).astype(np.int8)


def check_packed_codes(codes, *, n_bits=None, name="codes"):
    """Validate packed codes and return them as a C-contiguous uint8 array.

    Codes are never cast: an array of another dtype raises ``TypeError``, because a cast and a
    conversion from +-1 values would give different codes.

    Parameters
    ----------
    codes : ndarray of shape (n_items, n_bytes), dtype uint8
        Packed codes.
    n_bits : int, optional
        Expected code length in bits; ``n_bytes`` must equal ``n_bits // 8``.
    name : str, default="codes"
        Array name used in error messages.

    Returns
    -------
    ndarray of shape (n_items, n_bytes), dtype uint8
    """
    if not isinstance(codes, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of dtype uint8, got {type(codes).__name__}.")
    if codes.dtype != np.uint8:
        raise TypeError(
            f"{name} must have dtype uint8 (packed codes), got {codes.dtype}. "
            "Use hashbench.codes.pack_codes to pack a +-1 or 0/1 matrix."
        )
    if codes.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_items, n_bytes), got shape {codes.shape}.")
    if n_bits is not None and codes.shape[1] * 8 != n_bits:
        raise ValueError(
            f"{name} has {codes.shape[1]} bytes per item ({codes.shape[1] * 8} bits), "
            f"expected {n_bits // 8} bytes for {n_bits}-bit codes."
        )
    return np.ascontiguousarray(codes)
