"""In-memory images of datasets that pack their images into archives or arrays.

The backbones decode ``Dataset.image_paths`` entries with ``open_rgb()`` when an entry is not a
path, so a loader can hand over images read from a tar archive or a pickled batch without
writing them anywhere.
"""

import io

import numpy as np
from PIL import Image


class EncodedImage:
    """An encoded image file (JPEG, PNG) held in memory, for example a tar archive member.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    name : str
        Where the bytes came from, for messages, for example ``"cifar10-jpeg.tar.gz:train/cat/0001.jpg"``.
    """

    __slots__ = ("data", "name")

    def __init__(self, data, name):
        self.data = data
        self.name = name

    def open_rgb(self):
        """Decode the image and return it as an RGB ``PIL.Image.Image``.

        Raises
        ------
        PIL.UnidentifiedImageError, OSError
            If the bytes are not a decodable image.
        """
        with Image.open(io.BytesIO(self.data)) as opened:
            return opened.convert("RGB")

    def __repr__(self):
        return f"EncodedImage({self.name!r}, {len(self.data)} bytes)"

    def __str__(self):
        return self.name


class ArrayImage:
    """An RGB image held as a uint8 array, for example one row of a CIFAR-10 pickled batch.

    Parameters
    ----------
    pixels : ndarray of shape (height, width, 3), dtype uint8
    name : str
        Where the pixels came from, for messages, for example ``"data_batch_1[17]"``.
    """

    __slots__ = ("pixels", "name")

    def __init__(self, pixels, name):
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(
                f"{name}: expected pixels of shape (height, width, 3) and dtype uint8, got shape "
                f"{pixels.shape} and dtype {pixels.dtype}."
            )
        self.pixels = pixels
        self.name = name

    def open_rgb(self):
        """Return the pixels as an RGB ``PIL.Image.Image``."""
        return Image.fromarray(self.pixels)

    def __repr__(self):
        return f"ArrayImage({self.name!r}, shape={self.pixels.shape})"

    def __str__(self):
        return self.name
