"""Dataset registry, dataset definitions and the in-memory ``Dataset``.

A dataset is one loader class in a module of ``hashbench.data`` that registers itself with
``@register_dataset("name")``, plus a definition file ``datasets/<name>.toml``. The definition
states what the files on disk must contain (folder, metadata files with their SHA-256, counts,
label names) and which split protocols exist. The first call to ``list_datasets``, ``load_dataset`` or
``dataset_status`` imports every public module of ``hashbench.data``, so adding a dataset never
edits a central list. The data itself lies under a data root (``$HASHBENCH_DATA`` or
``--data-root``), in the folder that the definition names.
"""

import hashlib
import importlib
import logging
import os
import pkgutil
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hashbench.paths import DATA_ROOT_ENV, DATASETS_DIR, default_data_root
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

# dataset name -> DatasetLoader subclass
_LOADERS = {}

_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


class DatasetError(ValueError):
    """Raised when a dataset's files or a protocol file are missing, invalid or inconsistent."""


# --------------------------------------------------------------------------------------------
# The in-memory dataset
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Dataset:
    """All listed items of a dataset, in the row order of its metadata files.

    Tags are user annotations and may be used for training only. Labels are the ground truth of
    relevance and are for evaluation only: no method may train on them.

    Attributes
    ----------
    name : str
        Registry name, for example ``"mirflickr25k"``.
    description : str
        One line for listings.
    ids : ndarray of shape (n_items,), dtype int64
        Item ids, for MIRFlickr-25K the N of ``imN.jpg``.
    image_paths : list of length n_items
        Image of each item: a ``pathlib.Path`` to its file, whether or not it exists on disk, or
        for releases that pack the images (CIFAR-10) an in-memory image with an ``open_rgb()``
        method that returns a PIL image (see ``hashbench.data.images``).
    present : ndarray of shape (n_items,), dtype bool
        Whether each image file exists under the data root.
    labels : ndarray of shape (n_items, n_labels), dtype uint8
        0/1 ground-truth labels, one column per entry of ``label_names``.
    tags : scipy.sparse.csr_matrix of shape (n_items, n_tags), dtype float32, or None
        0/1 user tags, one column per entry of ``tag_vocabulary``. None for a dataset without
        user tags (CIFAR-10), on which methods that train on tags cannot run.
    tag_vocabulary : list of str of length n_tags
        Tag of each column of ``tags``, empty when ``tags`` is None.
    label_names : list of str of length n_labels
        Name of each column of ``labels``.
    definition : dict
        The parsed and validated definition file.
    definition_path : pathlib.Path
        The definition file. Protocol file paths are relative to its folder.
    folder : pathlib.Path
        The dataset folder under the data root.
    subsets : ndarray of shape (n_items,), dtype str, or None
        The official subset of each item (``"train"`` or ``"test"`` for CIFAR-10), which split
        protocols may draw from. None when the release has no such division.
    source : str
        The layout and file the items were read from, for example
        ``"python-archive:cifar-10-python.tar.gz"``, or empty. Two layouts of one dataset share
        item ids but may differ in pixels.
    features : ndarray of shape (n_items, n_features), dtype float32, or None
        Precomputed features of a dataset that ships features instead of images (see
        ``hashbench.data.custom``), else None.
    """

    name: str
    description: str
    ids: np.ndarray
    image_paths: list
    present: np.ndarray
    labels: np.ndarray
    tags: sp.csr_matrix
    tag_vocabulary: list
    label_names: list
    definition: dict
    definition_path: Path
    folder: Path
    subsets: np.ndarray | None = None
    source: str = ""
    features: np.ndarray | None = None

    def __len__(self):
        return len(self.ids)

    @property
    def n_items(self):
        """Number of listed items, whether or not their images are present."""
        return len(self.ids)

    @property
    def n_present(self):
        """Number of listed items whose image file exists."""
        return int(np.count_nonzero(self.present))

    def __repr__(self):
        return (
            f"Dataset(name={self.name!r}, n_items={self.n_items}, n_present={self.n_present}, "
            f"n_labels={len(self.label_names)}, n_tags={len(self.tag_vocabulary)}"
            + (f", source={self.source!r})" if self.source else ")")
        )


# --------------------------------------------------------------------------------------------
# Loader base class and registry
# --------------------------------------------------------------------------------------------


class DatasetLoader:
    """Base class of dataset loaders, with one subclass per dataset, registered by name.

    Class attributes
    ----------------
    name : str
        Registry name, set by ``register_dataset``.
    file_roles : tuple of str
        Keys of the ``[files.<role>]`` tables that the definition must contain, one per
        metadata file.
    count_keys : tuple of str
        Keys that the ``[counts]`` table of the definition must contain.

    Parameters
    ----------
    definition : dict
        The validated definition (see ``load_definition``).
    definition_path : pathlib.Path
        Where the definition was read from.
    """

    name = None
    file_roles = ()
    count_keys = ()

    def __init__(self, definition, definition_path):
        self.definition = definition
        self.definition_path = definition_path

    def load(self, data_root, *, progress=NULL_PROGRESS):
        """Read the dataset from ``data_root`` and return a ``Dataset``."""
        raise NotImplementedError

    def status(self, data_root):
        """Return the ``dataset_status`` dict without decoding any image."""
        raise NotImplementedError


def register_dataset(name):
    """Class decorator that registers a ``DatasetLoader`` subclass under ``name``.

    Raises
    ------
    ValueError
        If another class is already registered under ``name``.
    """

    def decorator(cls):
        if name in _LOADERS and _LOADERS[name] is not cls:
            raise ValueError(
                f"Dataset name {name!r} is registered twice: by {_LOADERS[name].__module__} "
                f"and by {cls.__module__}. Rename one of them."
            )
        cls.name = name
        _LOADERS[name] = cls
        return cls

    return decorator


def _import_loaders():
    import hashbench.data as package

    # Modules whose names start with an underscore (``__main__`` included) are not loaders.
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")


def list_datasets():
    """Return the registered dataset names, sorted.

    Returns
    -------
    list of str
    """
    _import_loaders()
    return sorted(_LOADERS)


def _get_loader_class(name):
    _import_loaders()
    if name not in _LOADERS:
        known = ", ".join(sorted(_LOADERS)) or "none"
        raise ValueError(
            f"Unknown dataset {name!r}. Registered datasets: {known}. "
            "Run `hashbench datasets` to list them."
        )
    return _LOADERS[name]


# --------------------------------------------------------------------------------------------
# Definition files
# --------------------------------------------------------------------------------------------

# key -> (type, required) for the top level of datasets/<name>.toml
_TOP_LEVEL_KEYS = {
    "description": (str, True),
    "folder": (str, True),
    "image_note": (str, False),
    "label_names": (list, True),
    "standard_protocol": (str, True),
    "files": (dict, True),
    "counts": (dict, True),
    "protocols": (dict, True),
    "downloads": (dict, False),
    "loader": (str, False),
    "source": (dict, False),
}
_FILE_KEYS = {"path": (str, True), "sha256": (str, True)}
_PROTOCOL_KEYS = {
    "file": (str, True),
    "version": (int, True),
    "seed": (int, True),
    "n_query": (int, True),
    "n_train": (int, True),
    "generator": (str, False),
    "n_database": (int, False),
    "query_from": (str, False),
    "train_from": (str, False),
    "split_hash": (str, False),
    "generate_on_load": (bool, False),
}
_DOWNLOAD_KEYS = {
    "url": (str, True),
    "file": (str, True),
    "sha256": (str, False),
    "size": (int, False),
    "note": (str, False),
}


def _check_table(table, schema, path, where):
    """Reject unknown and missing keys and values of the wrong type in one TOML table."""
    unknown = sorted(set(table) - set(schema))
    if unknown:
        raise ValueError(
            f"{path}: unknown key {unknown[0]!r} in {where}. Allowed keys: {sorted(schema)}."
        )
    for key, (kind, required) in schema.items():
        if key not in table:
            if required:
                raise ValueError(f"{path}: missing key {key!r} in {where}.")
            continue
        value = table[key]
        # bool is a subclass of int, but `version = true` is a mistake, not version 1.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(
                f"{path}: key {key!r} in {where} must be of type {kind.__name__}, "
                f"got {type(value).__name__} {value!r}."
            )


def _check_exact_keys(table, expected, path, where):
    unknown = sorted(set(table) - set(expected))
    if unknown:
        raise ValueError(
            f"{path}: unknown key {unknown[0]!r} in {where}. Allowed keys: {sorted(expected)}."
        )
    missing = sorted(set(expected) - set(table))
    if missing:
        raise ValueError(f"{path}: missing key {missing[0]!r} in {where}.")


def load_definition(name, *, datasets_dir=None):
    """Read and validate the definition file ``datasets/<name>.toml`` of a registered dataset.

    Parameters
    ----------
    name : str
        Registered dataset name.
    datasets_dir : path-like, optional
        Folder that contains the definition files, by default ``datasets/`` in the repository.

    Returns
    -------
    definition : dict
        The parsed TOML, with every key checked.
    path : pathlib.Path
        The definition file.

    Raises
    ------
    ValueError
        If the dataset is not registered, or the file is invalid TOML, has an unknown or a
        missing key, or a value of the wrong type. The message names the file and the key.
    FileNotFoundError
        If the definition file does not exist.
    """
    loader_class = _get_loader_class(name)
    path = Path(datasets_dir or DATASETS_DIR) / f"{name}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"Dataset {name!r} has no definition file: {path} does not exist.")
    with open(path, "rb") as handle:
        try:
            definition = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path} is not valid TOML: {error}") from None

    _check_table(definition, _TOP_LEVEL_KEYS, path, "the top level")
    if not all(isinstance(label, str) for label in definition["label_names"]):
        raise ValueError(f"{path}: key 'label_names' must be a list of strings.")

    _check_exact_keys(definition["files"], loader_class.file_roles, path, "[files]")
    for role, table in definition["files"].items():
        _check_table(table, _FILE_KEYS, path, f"[files.{role}]")
        if not _SHA256_PATTERN.fullmatch(table["sha256"]):
            raise ValueError(
                f"{path}: key 'sha256' in [files.{role}] must be 64 lowercase hexadecimal "
                f"digits, got {table['sha256']!r}."
            )

    _check_exact_keys(definition["counts"], loader_class.count_keys, path, "[counts]")
    for key, value in definition["counts"].items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(
                f"{path}: key {key!r} in [counts] must be a non-negative integer, got {value!r}."
            )

    for protocol, table in definition["protocols"].items():
        _check_table(table, _PROTOCOL_KEYS, path, f"[protocols.{protocol}]")
    for download, table in definition.get("downloads", {}).items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [downloads.{download}] must be a table with url and file, and optionally sha256 and size.")
        _check_table(table, _DOWNLOAD_KEYS, path, f"[downloads.{download}]")
        if "sha256" in table and not _SHA256_PATTERN.fullmatch(table["sha256"]):
            raise ValueError(
                f"{path}: key 'sha256' in [downloads.{download}] must be 64 lowercase hexadecimal "
                f"digits, got {table['sha256']!r}."
            )
    if definition["standard_protocol"] not in definition["protocols"]:
        raise ValueError(
            f"{path}: key 'standard_protocol' names {definition['standard_protocol']!r}, which "
            f"has no [protocols.{definition['standard_protocol']}] table. Defined protocols: "
            f"{sorted(definition['protocols'])}."
        )
    return definition, path


# --------------------------------------------------------------------------------------------
# Helpers for loaders: data root, metadata files, line splitting
# --------------------------------------------------------------------------------------------


def resolve_dataset_folder(data_root, folder):
    """Return ``data_root / folder`` after checking that the data root exists.

    Parameters
    ----------
    data_root : path-like or None
        The data root. None means ``$HASHBENCH_DATA``, else ``./data``.
    folder : str
        The dataset folder under the data root.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DatasetError
        If the data root is not an existing folder.
    """
    root = Path(data_root) if data_root is not None else default_data_root()
    if not root.is_dir():
        raise DatasetError(
            f"Data root {root} does not exist or is not a folder. Set the {DATA_ROOT_ENV} "
            f"environment variable or pass --data-root to the folder that contains {folder}/."
        )
    return root / folder


def normalized_sha256(data):
    """Return the SHA-256 hex digest of ``data`` with every CRLF line end converted to LF.

    A copy of a metadata file whose line ends were converted therefore has the same checksum.
    ``sed 's/\\r$//' FILE | sha256sum`` computes the same value.

    Parameters
    ----------
    data : bytes

    Returns
    -------
    str
        64 lowercase hexadecimal digits.
    """
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def read_metadata_file(folder, entry):
    """Read one metadata file, check its SHA-256 and return its text.

    Parameters
    ----------
    folder : pathlib.Path
        The dataset folder.
    entry : dict
        A ``[files.<role>]`` table of the definition, with ``path`` and ``sha256``.

    Returns
    -------
    str
        The file decoded as UTF-8, without a leading byte-order mark.

    Raises
    ------
    DatasetError
        If the file is missing, is not UTF-8, or its checksum differs from the definition.
    """
    path = folder / entry["path"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(
            f"Metadata file {path} is missing. Copy the dataset's metadata files into {folder} "
            "(see the description in its definition file)."
        ) from None
    except IsADirectoryError:
        raise DatasetError(f"Metadata file {path} is a folder, expected a file.") from None

    found = normalized_sha256(data)
    if found != entry["sha256"]:
        raise DatasetError(
            f"Metadata file {path} has SHA-256 {found}, expected {entry['sha256']} "
            "(computed with CRLF line ends converted to LF). The file differs from the published "
            "one: restore the original file."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(
            f"Metadata file {path} is not valid UTF-8 (byte {error.start}). Restore the original file."
        ) from None


def split_lines(text):
    """Split text into lines, accepting CRLF and LF line ends and an optional final line end.

    Only ``\\n`` and ``\\r\\n`` end a line, because other characters that ``str.splitlines``
    splits on may occur inside user tags.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str
        The lines without their line ends. An empty text has no lines.
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def list_folder_names(folder):
    """Return the set of entry names in ``folder``, or an empty set if it does not exist.

    One directory listing replaces a ``stat`` call per image, which matters for 20,000 files.
    """
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except (FileNotFoundError, NotADirectoryError):
        return set()


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def load_dataset(name, data_root=None, *, progress=NULL_PROGRESS, datasets_dir=None):
    """Load a registered dataset from the data root.

    The metadata files are checked against the SHA-256 values in the definition before they are
    parsed. Images are only listed, never decoded.

    Parameters
    ----------
    name : str
        Registered dataset name, as ``list_datasets`` returns.
    data_root : path-like, optional
        Folder that contains the dataset folder. Defaults to ``$HASHBENCH_DATA``, else ``./data``.
    progress : hashbench.progress.Progress, optional
        Receives progress of the metadata reading.
    datasets_dir : path-like, optional
        Folder of definition files, by default ``datasets/`` in the repository.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        If the dataset is not registered or its definition is invalid.
    DatasetError
        If the data root or a metadata file is missing, a checksum differs, or a file is
        malformed. The message names the file, the line and what to do.
    """
    definition, definition_path = load_definition(name, datasets_dir=datasets_dir)
    loader = _get_loader_class(name)(definition, definition_path)
    return loader.load(data_root, progress=progress)


def dataset_status(name, data_root=None, *, datasets_dir=None):
    """Summarise what of a dataset is on disk, for listings such as ``hashbench datasets``.

    Reads the image list and lists the image folder once. It decodes no image and verifies no
    checksum, so it is fast enough for listings.

    Parameters
    ----------
    name : str
        Registered dataset name.
    data_root : path-like, optional
        Folder that contains the dataset folder. Defaults to ``$HASHBENCH_DATA``, else ``./data``.
    datasets_dir : path-like, optional
        Folder of definition files, by default ``datasets/`` in the repository.

    Returns
    -------
    dict
        ``name`` (str), ``description`` (str), ``found`` (bool, every metadata file exists),
        ``n_items`` (int, listed items, 0 when not found), ``n_images_present`` (int, listed items
        whose image exists) and ``message`` (str, one line, for example what is missing).
    """
    definition, definition_path = load_definition(name, datasets_dir=datasets_dir)
    loader = _get_loader_class(name)(definition, definition_path)
    return loader.status(data_root)

