"""CIFAR-10 loader: 60,000 32 x 32 colour images in 10 classes, 50,000 train and 10,000 test.

The dataset folder (``cifar10/`` under the data root) may hold CIFAR-10 in any of these
layouts, searched in this order:

1. ``cifar-10-batches-py/``: the extracted official python release, pickled batches
   ``data_batch_1`` ... ``data_batch_5``, ``test_batch`` and ``batches.meta``.
2. ``cifar-10-python.tar.gz``: the official python release, read without extracting it.
3. ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``: an extracted image-folder layout.
4. Any other ``*.tar.gz``, ``*.tgz`` or ``*.tar`` archive with the image-folder layout inside,
   for example ``cifar10-jpeg.tar.gz``, read without extracting it.

Item ids do not depend on the layout: the k-th training image of class c (0-based, in the
order of the release) has id ``c * 5000 + k`` and the k-th test image ``50000 + c * 1000 + k``.
In the python release k is the rank of the image among its class in the batches' row order.
In an image-folder layout k is the number in the file name (``train/cat/0042.jpg`` is k = 42).
Rows of the loaded ``Dataset`` are sorted by id, so the protocol files apply to every layout.

Images are held in memory (encoded bytes or one uint8 array) and decoded by the backbones
through ``open_rgb()``, so nothing is written into the data root. CIFAR-10 has no user tags:
``Dataset.tags`` is None, and methods that train on tags cannot run on it.
"""

import logging
import os
import pickle
import re
import tarfile
import time
from pathlib import Path

import numpy as np

from hashbench.data.dataset import (
    Dataset,
    DatasetError,
    DatasetLoader,
    register_dataset,
    resolve_dataset_folder,
)
from hashbench.data.images import ArrayImage, EncodedImage
from hashbench.paths import DATA_ROOT_ENV
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

PYTHON_ARCHIVE = "cifar-10-python.tar.gz"
PYTHON_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
SUBSETS = ("train", "test")

IMAGE_SIZE = 32
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
# "train/cat/0042.jpg", possibly below a top-level folder inside an archive.
_IMAGE_MEMBER = re.compile(r"(?:.*/)?(train|test)/([^/]+)/([0-9]+)\.(?:jpg|jpeg|png)", re.IGNORECASE)


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, because a pickle can run arbitrary code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def _unpickle(handle, source):
    """Read one pickled batch or ``batches.meta`` and return a dict with str keys."""
    try:
        raw = _BatchUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as error:
        raise DatasetError(
            f"{source} is not a CIFAR-10 python batch ({error}). Restore the file from "
            f"{PYTHON_ARCHIVE}."
        ) from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{source}: expected a pickled dict, found {type(raw).__name__}. Restore the file.")
    return {key.decode("latin-1") if isinstance(key, bytes) else key: value for key, value in raw.items()}


def _parse_batch(batch, source, n_labels):
    """Return the pixels (n, 32, 32, 3) uint8 and the class indices (n,) int64 of one batch."""
    for key in ("data", "labels"):
        if key not in batch:
            raise DatasetError(f"{source}: key {key!r} is missing. Restore the file from {PYTHON_ARCHIVE}.")
    data = batch["data"]
    n_values = 3 * IMAGE_SIZE * IMAGE_SIZE
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_values:
        shape = getattr(data, "shape", None)
        raise DatasetError(
            f"{source}: 'data' must be a uint8 array of shape (n, {n_values}), found "
            f"{type(data).__name__} of shape {shape}. Restore the file from {PYTHON_ARCHIVE}."
        )
    labels = np.asarray(batch["labels"])
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"{source}: 'labels' must list one integer per image ({data.shape[0]}), found shape "
            f"{labels.shape}. Restore the file from {PYTHON_ARCHIVE}."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= n_labels):
        raise DatasetError(
            f"{source}: labels must be class indices 0 to {n_labels - 1}, found "
            f"{labels.min()} to {labels.max()}. Restore the file from {PYTHON_ARCHIVE}."
        )
    # A row is 1,024 red, then 1,024 green, then 1,024 blue values, each a 32 x 32 row-major plane.
    pixels = data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(pixels), labels.astype(np.int64)


def find_layout(folder):
    """Find which CIFAR-10 layout the dataset folder holds.

    Parameters
    ----------
    folder : pathlib.Path
        The dataset folder.

    Returns
    -------
    kind : str or None
        ``"python-folder"``, ``"python-archive"``, ``"image-folder"``, ``"image-archive"``, or None
        when no layout is found.
    path : pathlib.Path or None
        The folder or archive to read.
    """
    if (folder / PYTHON_FOLDER).is_dir():
        return "python-folder", folder / PYTHON_FOLDER
    if (folder / PYTHON_ARCHIVE).is_file():
        return "python-archive", folder / PYTHON_ARCHIVE
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        return "image-folder", folder
    archives = sorted(
        path for path in folder.iterdir()
        if path.is_file() and path.name != PYTHON_ARCHIVE and path.name.endswith(_ARCHIVE_SUFFIXES)
    ) if folder.is_dir() else []
    if archives:
        if len(archives) > 1:
            logger.info("Several archives in %s, so reading the first by name, %s", folder, archives[0].name)
        return "image-archive", archives[0]
    return None, None


class _Collected:
    """Images of one layout before ids are assigned: subset, class, rank in class and image."""

    def __init__(self):
        self.subsets = []
        self.classes = []
        self.ranks = []
        self.images = []

    def add(self, subset, class_index, rank, image):
        self.subsets.append(subset)
        self.classes.append(class_index)
        self.ranks.append(rank)
        self.images.append(image)


@register_dataset("cifar10")
class CIFAR10(DatasetLoader):
    """Loader of CIFAR-10 from the folder ``cifar10/`` of the data root, in any layout."""

    file_roles = ()
    count_keys = ("items", "train_items", "test_items", "labels")

    # ----------------------------------------------------------------------------------------
    # Folder and counts
    # ----------------------------------------------------------------------------------------

    def _dataset_folder(self, data_root):
        folder = resolve_dataset_folder(data_root, self.definition["folder"])
        if not folder.is_dir():
            raise DatasetError(
                f"Dataset folder {folder} does not exist in the data root {folder.parent}. Put "
                f"{PYTHON_ARCHIVE} there (`hashbench datasets download cifar10`), or set the "
                f"{DATA_ROOT_ENV} environment variable or --data-root to the folder that contains "
                f"{self.definition['folder']}/."
            )
        return folder

    def _per_class(self):
        counts = self.definition["counts"]
        n_labels = counts["labels"]
        per_class = {}
        for subset in SUBSETS:
            key = f"{subset}_items"
            if counts[key] % n_labels:
                raise ValueError(
                    f"{self.definition_path}: counts.{key} = {counts[key]} is not a multiple of "
                    f"counts.labels = {n_labels}, but CIFAR-10 has the same number of images per class."
                )
            per_class[subset] = counts[key] // n_labels
        if counts["items"] != counts["train_items"] + counts["test_items"]:
            raise ValueError(
                f"{self.definition_path}: counts.items = {counts['items']} differs from "
                f"counts.train_items + counts.test_items = {counts['train_items'] + counts['test_items']}."
            )
        return per_class

    def _label_names(self):
        label_names = list(self.definition["label_names"])
        if len(label_names) != self.definition["counts"]["labels"]:
            raise ValueError(
                f"{self.definition_path}: 'label_names' has {len(label_names)} entries but "
                f"counts.labels is {self.definition['counts']['labels']}. Make them agree."
            )
        return label_names

    # ----------------------------------------------------------------------------------------
    # Readers, one per layout
    # ----------------------------------------------------------------------------------------

    def _read_python(self, kind, path, label_names):
        """Read the python release from its folder or archive and return a ``_Collected``."""
        names = (META_FILE, *TRAIN_BATCHES, TEST_BATCH)
        batches = {}
        if kind == "python-folder":
            for name in names:
                file_path = path / name
                if not file_path.is_file():
                    raise DatasetError(
                        f"{file_path} is missing. {path} must contain {', '.join(names)}: extract "
                        f"{PYTHON_ARCHIVE} again."
                    )
                with open(file_path, "rb") as handle:
                    batches[name] = _unpickle(handle, file_path)
        else:
            try:
                with tarfile.open(path, "r:*") as archive:
                    members = {Path(member.name).name: member for member in archive if member.isfile()}
                    for name in names:
                        if name not in members:
                            raise DatasetError(
                                f"{path} has no member {PYTHON_FOLDER}/{name}, so it is not the "
                                f"CIFAR-10 python release. Download it again."
                            )
                        with archive.extractfile(members[name]) as handle:
                            batches[name] = _unpickle(handle, f"{path}:{members[name].name}")
            except (tarfile.TarError, EOFError, OSError) as error:
                raise DatasetError(f"{path} is not a readable tar.gz archive ({error}). Download it again.") from None

        meta_names = batches[META_FILE].get("label_names")
        if meta_names is not None:
            meta_names = [name.decode("ascii") if isinstance(name, bytes) else str(name) for name in meta_names]
            if meta_names != label_names:
                raise DatasetError(
                    f"{path}: {META_FILE} names the classes {meta_names}, expected {label_names} "
                    f"(label_names in {self.definition_path})."
                )

        collected = _Collected()
        pixels = {}
        for subset, batch_names in (("train", TRAIN_BATCHES), ("test", (TEST_BATCH,))):
            arrays, labels = [], []
            for name in batch_names:
                batch_pixels, batch_labels = _parse_batch(batches[name], f"{path}/{name}", len(label_names))
                arrays.append(batch_pixels)
                labels.append(batch_labels)
            pixels[subset] = np.concatenate(arrays)
            labels = np.concatenate(labels)
            # Rank of each image among the images of its class, in release order.
            ranks = np.zeros(len(labels), dtype=np.int64)
            for class_index in range(len(label_names)):
                rows = np.flatnonzero(labels == class_index)
                ranks[rows] = np.arange(len(rows))
            source = PYTHON_FOLDER if kind == "python-folder" else path.name
            for row in range(len(labels)):
                image = ArrayImage(pixels[subset][row], f"{source}:{subset}[{row}]")
                collected.add(subset, int(labels[row]), int(ranks[row]), image)
        return collected

    def _read_image_folder(self, kind, path, label_names):
        """Read ``train/<class>/N.jpg`` files from a folder or a tar archive."""
        column_of = {name: column for column, name in enumerate(label_names)}
        collected = _Collected()

        def add(relative, read_bytes, name):
            match = _IMAGE_MEMBER.fullmatch(relative)
            if match is None:
                return
            subset, class_name, number = match.group(1).lower(), match.group(2), int(match.group(3))
            if class_name not in column_of:
                raise DatasetError(
                    f"{name}: class folder {class_name!r} is not a CIFAR-10 class. Expected one of "
                    f"{label_names} (label_names in {self.definition_path})."
                )
            collected.add(subset, column_of[class_name], number, EncodedImage(read_bytes(), name))

        if kind == "image-folder":
            for subset in SUBSETS:
                for class_folder in sorted((path / subset).iterdir()):
                    if not class_folder.is_dir():
                        continue
                    for file_path in sorted(class_folder.iterdir()):
                        relative = f"{subset}/{class_folder.name}/{file_path.name}"
                        add(relative, file_path.read_bytes, str(file_path))
            return collected

        try:
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    if member.isfile():
                        def read(member=member):
                            with archive.extractfile(member) as handle:
                                return handle.read()

                        add(member.name, read, f"{path.name}:{member.name}")
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DatasetError(f"{path} is not a readable tar archive ({error}). Restore or download it again.") from None
        return collected

    # ----------------------------------------------------------------------------------------
    # Ids and checks
    # ----------------------------------------------------------------------------------------

    def _assign_ids(self, collected, path, per_class):
        """Check the counts and return ids, subsets, class indices and images sorted by id."""
        subsets = np.asarray(collected.subsets)
        classes = np.asarray(collected.classes, dtype=np.int64)
        ranks = np.asarray(collected.ranks, dtype=np.int64)
        counts = self.definition["counts"]
        if len(subsets) == 0:
            raise DatasetError(
                f"{path} contains no CIFAR-10 image: expected train/<class>/N.jpg and "
                "test/<class>/N.jpg files, or the pickled batches of the python release."
            )

        for subset in SUBSETS:
            found = int(np.count_nonzero(subsets == subset))
            key = f"{subset}_items"
            if found != counts[key]:
                raise DatasetError(
                    f"{path}: found {found:,} {subset} images, expected {counts[key]:,} "
                    f"(counts.{key} in {self.definition_path}). The copy is incomplete: restore it."
                )
            in_subset = subsets == subset
            n_per_class = np.bincount(classes[in_subset], minlength=counts["labels"])
            wrong = np.flatnonzero(n_per_class != per_class[subset])
            if len(wrong):
                column = int(wrong[0])
                raise DatasetError(
                    f"{path}: class {self.definition['label_names'][column]!r} has "
                    f"{n_per_class[column]:,} {subset} images, expected {per_class[subset]:,}."
                )
            too_large = in_subset & (ranks >= per_class[subset])
            if too_large.any():
                row = int(np.flatnonzero(too_large)[0])
                raise DatasetError(
                    f"{collected.images[row]}: image number {ranks[row]} is out of range, expected 0 "
                    f"to {per_class[subset] - 1} for a {subset} image."
                )

        offsets = np.where(subsets == "train", 0, counts["train_items"])
        sizes = np.where(subsets == "train", per_class["train"], per_class["test"])
        ids = offsets + classes * sizes + ranks
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        repeated = np.flatnonzero(ids[1:] == ids[:-1])
        if len(repeated):
            image = collected.images[order[repeated[0] + 1]]
            raise DatasetError(f"{image}: the image number is listed twice in {path}, but each must occur once.")
        images = [collected.images[row] for row in order]
        return ids.astype(np.int64), subsets[order], classes[order], images

    # ----------------------------------------------------------------------------------------
    # Public API
    # ----------------------------------------------------------------------------------------

    def load(self, data_root, *, progress=NULL_PROGRESS):
        """Read CIFAR-10 from ``data_root``, as ``hashbench.data.load_dataset`` describes."""
        start = time.perf_counter()
        label_names = self._label_names()
        per_class = self._per_class()
        folder = self._dataset_folder(data_root)
        kind, path = find_layout(folder)
        if kind is None:
            raise DatasetError(
                f"No CIFAR-10 release found in {folder}: expected {PYTHON_FOLDER}/, "
                f"{PYTHON_ARCHIVE}, train/ and test/ image folders, or a .tar.gz archive of them. "
                "Run `hashbench datasets download cifar10`."
            )
        logger.info("Loading %s from %s (%s layout)", self.name, path, kind)

        with progress.task(f"Reading {self.name} from {path.name}", total=1) as advance:
            if kind.startswith("python"):
                collected = self._read_python(kind, path, label_names)
            else:
                collected = self._read_image_folder(kind, path, label_names)
            advance(1)

        ids, subsets, classes, images = self._assign_ids(collected, path, per_class)
        labels = np.zeros((len(ids), len(label_names)), dtype=np.uint8)
        labels[np.arange(len(ids)), classes] = 1
        logger.info(
            "Loaded %s: %d images (%d train, %d test) from %s in %.2f s",
            self.name, len(ids), np.count_nonzero(subsets == "train"), np.count_nonzero(subsets == "test"),
            path, time.perf_counter() - start,
        )
        return Dataset(
            name=self.name,
            description=self.definition["description"],
            ids=ids,
            image_paths=images,
            present=np.ones(len(ids), dtype=bool),
            labels=labels,
            tags=None,
            tag_vocabulary=[],
            label_names=label_names,
            definition=self.definition,
            definition_path=self.definition_path,
            folder=folder,
            subsets=subsets,
            source=f"{kind}:{path.name}",
        )

    def status(self, data_root):
        """Summarise what is on disk without reading archives, as ``dataset_status`` describes.

        Archives are not opened, so ``n_items`` and ``n_images_present`` are None for them.
        """
        result = {
            "name": self.name,
            "description": self.definition["description"],
            "found": False,
            "n_items": 0,
            "n_images_present": 0,
            "message": "",
        }
        try:
            folder = self._dataset_folder(data_root)
        except DatasetError as error:
            result["message"] = str(error)
            return result
        kind, path = find_layout(folder)
        if kind is None:
            result["message"] = f"No CIFAR-10 release in {folder}. Run `hashbench datasets download cifar10`."
            return result
        result["found"] = True
        if kind == "image-folder":
            n_files = sum(
                sum(1 for name in os.listdir(class_folder) if _IMAGE_MEMBER.fullmatch(f"{subset}/x/{name}"))
                for subset in SUBSETS
                for class_folder in (path / subset).iterdir()
                if class_folder.is_dir()
            )
            result["n_items"] = result["n_images_present"] = n_files
            result["message"] = f"Image folders in {folder} ({n_files:,} images)."
        else:
            result["n_items"] = result["n_images_present"] = None
            result["message"] = (
                f"{kind} layout at {path}, not opened for this listing. "
                "`hashbench datasets verify cifar10` counts its images."
            )
        return result
