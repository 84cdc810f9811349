"""GIST-512: the scene descriptor of Oliva and Torralba, as used for 32 x 32 images.

Oliva and Torralba, "Modeling the shape of the scene: a holistic representation of the spatial
envelope", IJCV 42(3), 2001. The steps and constants are those of the authors' ``LMgist.m``
(``param.orientationsPerScale = [8 8 8 8]``, ``param.numberBlocks = 4``, ``param.fc_prefilt = 4``,
``param.boundaryExtension = 32``), applied to images of 32 x 32 pixels as in the usual CIFAR-10
GIST-512 setup:

1. Average the RGB channels to grey, resize the shorter side to 32 px (PIL bilinear) and take the
   centre 32 x 32 crop. Rescale the pixel values to [0, 255] by their minimum and maximum.
2. Prefilter: take ``log(1 + x)``, pad 5 px symmetrically, whiten by removing the output of a
   Gaussian low-pass filter ``exp(-(fx^2 + fy^2) / s^2)``, ``s = 4 / sqrt(log 2)``, and divide by
   ``0.2`` plus the local standard deviation (the same low-pass filter on the squared output).
3. Pad 32 px symmetrically and filter with 4 scales x 8 orientations of Gabor-like transfer
   functions ``exp(-3.5 (f / (n * f_s) - 1)^2 - 2 pi a_s theta^2)`` with ``f_s = 0.3 / 1.85^s`` and
   ``a_s = 16 * 8^2 / 32^2``, where ``n = 96`` is the padded side.
4. Average the magnitude of each filter's output over a 4 x 4 grid of 8 x 8 px blocks.

The feature vector lists the 16 block averages of filter 1, then of filter 2, and so on, with the
filters ordered by scale, then orientation. Within a filter the blocks are in column-major order,
as ``LMgist.m`` stores them. That gives 32 filters x 16 blocks = 512 float32 values.

Because of the min-max rescaling in step 1, scaling the brightness of an image leaves its
descriptor unchanged up to the rounding of 8-bit pixels. The descriptor has no weights, so
``weights_sha256`` is the SHA-256 of the parameter description instead, which changes the feature
cache key whenever a parameter changes.

The computation uses numpy and scipy FFTs on the CPU and is deterministic.
"""

import hashlib
import logging
import time

import numpy as np
import scipy.fft
from PIL import Image

from hashbench.features.backbones import open_rgb, register_backbone
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

IMAGE_SIZE = 32
ORIENTATIONS_PER_SCALE = (8, 8, 8, 8)
N_BLOCKS = 4
PREFILTER_CUTOFF = 4.0
BOUNDARY_EXTENSION = 32
# Padding of the prefilter, in pixels (``w = 5`` in prefilt.m).
_PREFILTER_PAD = 5


def gabor_transfer_functions(size, orientations_per_scale=ORIENTATIONS_PER_SCALE):
    """Build the frequency responses of the GIST filter bank (``createGabor.m``).

    Parameters
    ----------
    size : int
        Side ``n`` of the square, padded image.
    orientations_per_scale : sequence of int
        Orientations at each scale, from the finest scale to the coarsest.

    Returns
    -------
    ndarray of shape (n_filters, size, size), dtype float64
        Transfer functions in FFT order (zero frequency at index 0).
    """
    parameters = []
    for scale, n_orientations in enumerate(orientations_per_scale):
        for orientation in range(n_orientations):
            parameters.append((
                0.35,
                0.3 / 1.85**scale,
                16.0 * n_orientations**2 / 32.0**2,
                np.pi / n_orientations * orientation,
            ))

    fx, fy = np.meshgrid(np.arange(-size // 2, size // 2), np.arange(-size // 2, size // 2))
    radius = np.fft.fftshift(np.sqrt(fx**2 + fy**2))
    angle = np.fft.fftshift(np.angle(fx + 1j * fy))
    filters = np.empty((len(parameters), size, size))
    for index, (bandwidth, peak, angular_width, rotation) in enumerate(parameters):
        rotated = angle + rotation
        rotated = rotated + 2 * np.pi * (rotated < -np.pi) - 2 * np.pi * (rotated > np.pi)
        filters[index] = np.exp(
            -10 * bandwidth * (radius / size / peak - 1) ** 2 - 2 * angular_width * np.pi * rotated**2
        )
    return filters


def prefilter(images, cutoff=PREFILTER_CUTOFF):
    """Whiten and normalise local contrast (``prefilt.m``).

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width), dtype float64
        Grey values in [0, 255].
    cutoff : float
        ``fc``: the low-pass filter is ``exp(-(fx^2 + fy^2) / s^2)`` with ``s = fc / sqrt(log 2)``.

    Returns
    -------
    ndarray of shape (n_images, height, width), dtype float64
    """
    pad = _PREFILTER_PAD
    s1 = cutoff / np.sqrt(np.log(2))
    images = np.log(images + 1)
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
    height, width = padded.shape[1:]
    n = max(height, width)
    n += n % 2
    padded = np.pad(padded, ((0, 0), (0, n - height), (0, n - width)), mode="symmetric")

    fx, fy = np.meshgrid(np.arange(-n // 2, n // 2), np.arange(-n // 2, n // 2))
    lowpass = np.fft.fftshift(np.exp(-(fx**2 + fy**2) / s1**2))

    whitened = padded - np.real(scipy.fft.ifft2(scipy.fft.fft2(padded) * lowpass))
    local_std = np.sqrt(np.abs(scipy.fft.ifft2(scipy.fft.fft2(whitened**2) * lowpass)))
    normalised = whitened / (0.2 + local_std)
    return normalised[:, pad:height - pad, pad:width - pad]


def block_means(values, n_blocks):
    """Average over an ``n_blocks x n_blocks`` grid (``downN.m``).

    Parameters
    ----------
    values : ndarray of shape (..., height, width)
    n_blocks : int

    Returns
    -------
    ndarray of shape (..., n_blocks * n_blocks)
        Block means in column-major order of the grid (row blocks vary fastest).
    """
    rows = np.fix(np.linspace(0, values.shape[-2], n_blocks + 1)).astype(int)
    cols = np.fix(np.linspace(0, values.shape[-1], n_blocks + 1)).astype(int)
    means = np.empty(values.shape[:-2] + (n_blocks, n_blocks))
    for i in range(n_blocks):
        for j in range(n_blocks):
            means[..., i, j] = values[..., rows[i]:rows[i + 1], cols[j]:cols[j + 1]].mean(axis=(-2, -1))
    return np.swapaxes(means, -2, -1).reshape(values.shape[:-2] + (n_blocks * n_blocks,))


def gist_descriptors(images):
    """Compute GIST descriptors of grey 32 x 32 images.

    Parameters
    ----------
    images : ndarray of shape (n_images, 32, 32), floating or integer dtype
        Grey values. Each image is rescaled to [0, 255] by its own minimum and maximum.

    Returns
    -------
    ndarray of shape (n_images, 512), dtype float32
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"images must have shape (n_images, {IMAGE_SIZE}, {IMAGE_SIZE}), got {images.shape}")
    images = images - images.min(axis=(1, 2), keepdims=True)
    peak = images.max(axis=(1, 2), keepdims=True)
    images = np.divide(255.0 * images, peak, out=np.zeros_like(images), where=peak > 0)

    filtered = prefilter(images)
    be = BOUNDARY_EXTENSION
    padded = np.pad(filtered, ((0, 0), (be, be), (be, be)), mode="symmetric")
    filters = _filters_for(padded.shape[1])
    spectrum = scipy.fft.fft2(padded)

    descriptors = np.empty((len(images), len(filters), N_BLOCKS * N_BLOCKS))
    for index, transfer in enumerate(filters):
        response = np.abs(scipy.fft.ifft2(spectrum * transfer))[:, be:-be, be:-be]
        descriptors[:, index] = block_means(response, N_BLOCKS)
    return descriptors.reshape(len(images), -1).astype(np.float32)


_FILTER_CACHE = {}


def _filters_for(size):
    if size not in _FILTER_CACHE:
        _FILTER_CACHE[size] = gabor_transfer_functions(size)
    return _FILTER_CACHE[size]


def load_grey(image):
    """Decode an image, average its RGB channels and resize-crop it to 32 x 32.

    Parameters
    ----------
    image : str, path-like, PIL.Image.Image or an object with ``open_rgb()``
        Anything ``hashbench.features.backbones`` decodes, in-memory archive images included.

    Returns
    -------
    ndarray of shape (32, 32), dtype float64
    """
    rgb = open_rgb(image)

    # Resize the shorter side to 32 px and take the centre square, as imresizecrop.m does.
    width, height = rgb.size
    scale = IMAGE_SIZE / min(width, height)
    resized = rgb.resize(
        (max(IMAGE_SIZE, round(width * scale)), max(IMAGE_SIZE, round(height * scale))), Image.BILINEAR
    )
    left = (resized.size[0] - IMAGE_SIZE) // 2
    top = (resized.size[1] - IMAGE_SIZE) // 2
    pixels = np.asarray(resized.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE)), dtype=np.float64)
    return pixels.mean(axis=2)


@register_backbone
class GIST:
    """GIST-512 descriptor with the public interface of ``hashbench.features.Backbone``.

    It is not a ``Backbone`` subclass, because that class wraps a torch model. It provides the
    attributes and the ``extract`` method that the feature cache and the runner use.

    Parameters
    ----------
    device : str, default="cpu"
        Only ``"cpu"``: the descriptor is computed with numpy.

    Attributes
    ----------
    name : str
    n_features : int
        512.
    weights_sha256 : str
        SHA-256 of ``preprocessing``, since there are no weights.
    preprocessing : str
        Every step and parameter, stored in cache keys.
    """

    name = "gist"
    n_features = len(ORIENTATIONS_PER_SCALE) * ORIENTATIONS_PER_SCALE[0] * N_BLOCKS * N_BLOCKS
    preprocessing = (
        f"PIL decode, convert to RGB, mean of R, G, B; resize shorter side to {IMAGE_SIZE} px (PIL bilinear); "
        f"centre crop {IMAGE_SIZE}x{IMAGE_SIZE}; min-max rescale to [0, 255]; LMgist prefilter fc={PREFILTER_CUTOFF:g} "
        f"(log, whitening, local contrast normalisation); Gabor bank {list(ORIENTATIONS_PER_SCALE)} orientations "
        f"per scale, boundary extension {BOUNDARY_EXTENSION}; {N_BLOCKS}x{N_BLOCKS} block means"
    )
    weights_sha256 = hashlib.sha256(preprocessing.encode("utf-8")).hexdigest()

    def __init__(self, *, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"The gist backbone runs on the CPU only, got device={device!r}. Use device='cpu'.")
        self.device = "cpu"

    def __repr__(self):
        return "GIST(device='cpu')"

    def extract(self, images, *, batch_size=64, num_threads=None, progress=NULL_PROGRESS):
        """Compute one GIST descriptor per image.

        Parameters
        ----------
        images : sequence of (str, path-like or PIL.Image.Image)
            Image files, or images already decoded.
        batch_size : int, default=64
            Images filtered at once; the descriptors do not depend on it.
        num_threads : int, optional
            Accepted for compatibility with ``Backbone.extract`` and unused: the FFTs run on one
            thread.
        progress : hashbench.progress.Progress, default=NULL_PROGRESS
            Advanced by the number of images done.

        Returns
        -------
        ndarray of shape (n_images, 512), dtype float32

        Raises
        ------
        ImageDecodeError
            A file cannot be decoded; the message names the file.
        FileNotFoundError
            A file does not exist.
        """
        for name, value in (("batch_size", batch_size), ("num_threads", num_threads)):
            if value is None and name == "num_threads":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        images = list(images)
        features = np.empty((len(images), self.n_features), dtype=np.float32)

        logger.info("Extracting gist features of %d images (batch size %d)", len(images), batch_size)
        start = time.perf_counter()
        with progress.task("gist features", total=len(images)) as advance:
            for first in range(0, len(images), batch_size):
                last = min(first + batch_size, len(images))
                grey = np.stack([load_grey(image) for image in images[first:last]])
                features[first:last] = gist_descriptors(grey)
                advance(last - first)
        seconds = time.perf_counter() - start
        logger.info(
            "Extracted gist features of %d images in %.1f s (%.1f images/s)",
            len(images), seconds, len(images) / seconds if seconds > 0 else float("nan"),
        )
        return features
