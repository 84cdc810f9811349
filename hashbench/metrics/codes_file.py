"""Read codes and labels for evaluation from a ``.npz`` file written by any hashing code.

The file contains four arrays:

``query_codes``, ``db_codes``
    Either packed codes (dtype uint8, shape (n, bits // 8), most significant bit first, as
    ``numpy.packbits`` writes them) or bit matrices of shape (n, bits) holding 0/1 or -1/+1
    (any integer, boolean or float dtype). Bit matrices are packed on load: +1 and 1 become a set
    bit, -1 and 0 a cleared one. A uint8 array is read as packed codes unless ``codes_format``
    says otherwise, or, under ``"auto"``, when every value of both code arrays is 0 or 1 (packed
    codes of real methods have other byte values).
``query_labels``, ``db_labels``
    0/1 label matrices, one row per code.
"""

import zipfile
from pathlib import Path

import numpy as np

from hashbench.codes import pack_codes

#: The arrays a codes file must hold.
REQUIRED_ARRAYS = ("query_codes", "db_codes", "query_labels", "db_labels")

#: Accepted readings of the code arrays.
CODES_FORMATS = ("auto", "packed", "bits")


class CodesFileError(ValueError):
    """Raised when a codes file is missing, unreadable or contains malformed arrays."""


def _bit_values(array, name):
    """Map a 0/1 or -1/+1 matrix to a 0/1 uint8 matrix, or raise naming the bad value."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise CodesFileError(
            f"{name} has dtype {array.dtype}; codes must be packed uint8 or a 0/1 or -1/+1 "
            "numeric matrix."
        )
    values = np.unique(array)
    if np.isin(values, (0, 1)).all():
        return (array == 1).astype(np.uint8)
    if np.isin(values, (-1, 1)).all():
        return (array == 1).astype(np.uint8)
    bad = values[~np.isin(values, (-1, 0, 1))]
    if bad.size:
        row, column = np.argwhere(array == bad[0])[0]
        raise CodesFileError(
            f"{name} must hold 0/1 or -1/+1 bits, got {bad[0].item()!r} at row {row}, column "
            f"{column}. Binarise the codes (for example with np.sign) before saving them."
        )
    raise CodesFileError(
        f"{name} mixes 0 and -1 values; use either 0/1 or -1/+1 for every bit."
    )


def _load_codes(array, name, codes_format):
    """Return packed uint8 codes from a packed or bit-matrix array."""
    if array.ndim != 2:
        raise CodesFileError(
            f"{name} must be 2-D, of shape (n_items, n_bytes) packed or (n_items, n_bits) as "
            f"bits, got shape {array.shape}."
        )
    if codes_format == "packed":
        if array.dtype != np.uint8:
            raise CodesFileError(
                f"{name} has dtype {array.dtype}, but packed codes are uint8; pass "
                "codes_format='bits' (--codes-format bits) for a 0/1 or -1/+1 matrix."
            )
        return np.ascontiguousarray(array)
    bits = _bit_values(array, name)
    if bits.shape[1] % 8:
        raise CodesFileError(
            f"{name} has {bits.shape[1]} bit columns; code lengths must be multiples of 8 "
            "(hashbench stores 8 bits a byte). Pad or drop bits so every code has 8, 16, 32, ... "
            "bits."
        )
    return pack_codes(bits)


def _is_bit_matrix(array, name):
    """Tell whether a code array is a bit matrix, rejecting a uint8 matrix that is almost one."""
    if array.dtype != np.uint8:
        return True
    is_bit = np.isin(array, (0, 1))
    if is_bit.all():
        return True
    # In packed codes of a real method about 2 of 256 bytes are 0 or 1, so a matrix that is
    # mostly 0 and 1 is a bit matrix with stray values.
    if array.size >= 64 and is_bit.mean() > 0.9:
        row, column = np.argwhere(~is_bit)[0]
        raise CodesFileError(
            f"{name} looks like a 0/1 bit matrix but contains {array[row, column]} at row {row}, column "
            f"{column}. Fix the value, or pass --codes-format packed if these are packed codes."
        )
    return False


def load_codes_file(path, *, codes_format="auto"):
    """Read and check the codes and labels of a ``.npz`` file.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.
    codes_format : {"auto", "packed", "bits"}, default="auto"
        How to read the code arrays (see the module docstring).

    Returns
    -------
    arrays : dict
        ``query_codes`` and ``db_codes`` as packed uint8 arrays of equal width,
        ``query_labels`` and ``db_labels`` as loaded (checked by the evaluation).
    codes_format : str
        ``"packed"`` or ``"bits"``, how the codes were read.

    Raises
    ------
    CodesFileError
        If the file is missing or not a ``.npz`` archive, an array is missing, or a code array is
        malformed. Label problems are reported by the evaluation, which names the array.
    """
    if codes_format not in CODES_FORMATS:
        raise CodesFileError(
            f"codes_format must be one of {', '.join(CODES_FORMATS)}, got {codes_format!r}."
        )
    path = Path(path)
    if not path.is_file():
        raise CodesFileError(f"Codes file {path} does not exist or is not a file.")
    if not zipfile.is_zipfile(path):
        raise CodesFileError(
            f"{path} is not a .npz archive. Write it with numpy.savez(path, query_codes=..., "
            "db_codes=..., query_labels=..., db_labels=...)."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in REQUIRED_ARRAYS if name not in archive.files]
            if missing:
                raise CodesFileError(
                    f"{path} lacks {', '.join(missing)}; it contains {', '.join(archive.files) or 'no arrays'}. "
                    f"A codes file needs the arrays {', '.join(REQUIRED_ARRAYS)}."
                )
            arrays = {name: archive[name] for name in REQUIRED_ARRAYS}
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        if isinstance(error, CodesFileError):
            raise
        raise CodesFileError(
            f"Cannot read {path} as a .npz archive of plain arrays: {error}. Write it with "
            "numpy.savez(path, query_codes=..., db_codes=..., query_labels=..., db_labels=...)."
        ) from error

    if codes_format == "auto":
        both_bits = all(_is_bit_matrix(arrays[name], name) for name in ("query_codes", "db_codes"))
        codes_format = "bits" if both_bits else "packed"
    for name in ("query_codes", "db_codes"):
        arrays[name] = _load_codes(arrays[name], name, codes_format)
    if arrays["query_codes"].shape[1] != arrays["db_codes"].shape[1]:
        width = {name: arrays[name].shape[1] * 8 for name in ("query_codes", "db_codes")}
        raise CodesFileError(
            f"query_codes has {width['query_codes']}-bit codes but db_codes has "
            f"{width['db_codes']}-bit codes; both must come from the same hasher."
        )
    return arrays, codes_format
