"""Your own data: an image folder with a manifest, or precomputed features in an ``.npz`` file.

A custom dataset is a definition file ``datasets/<name>.toml`` with a top-level
``loader = "manifest"`` or ``loader = "features"`` and a ``[source]`` table that names the file
inside the dataset folder (``path``, and optionally its ``sha256``). Every such definition in
``datasets/`` is registered under its file name when the loaders are imported. A definition kept
elsewhere is registered with ``register_custom_dataset(name)`` and loaded with
``load_dataset(name, data_root, datasets_dir=...)``.

Manifest (``loader = "manifest"``), a CSV file with a header or a JSON-lines file:

- CSV columns ``path`` (image file relative to the dataset folder), ``labels`` (label names
  separated by ``;``), optional ``tags`` (user tags separated by ``;``) and optional ``id``
  (integer item id, by default the 0-based row number).
- JSON lines: one object a line with ``path`` (str), ``labels`` (list of str), optional
  ``tags`` (list of str) and optional ``id`` (int).

Every label must be one of the definition's ``label_names``. Tags form a vocabulary sorted
alphabetically. Without a ``tags`` column or key, ``Dataset.tags`` is None.

Features (``loader = "features"``), an ``.npz`` file read without pickle, with arrays
``features`` (n, d) float, ``labels`` (n, n_labels) 0/1, and optionally ``tags`` (n, n_tags)
0/1, ``tag_vocabulary`` (n_tags,) str and ``ids`` (n,) int. Such a dataset has no images:
``Dataset.features`` contains the features.
"""

import csv
import io
import json
import logging
import time
import tomllib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hashbench.data.dataset import (
    _LOADERS,
    Dataset,
    DatasetError,
    DatasetLoader,
    list_folder_names,
    normalized_sha256,
    register_dataset,
    resolve_dataset_folder,
)
from hashbench.paths import DATASETS_DIR
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

LOADER_KINDS = ("manifest", "features")
LIST_SEPARATOR = ";"


class NoImage:
    """Placeholder in ``image_paths`` of a dataset that ships precomputed features only."""

    __slots__ = ("dataset", "item_id")

    def __init__(self, dataset, item_id):
        self.dataset = dataset
        self.item_id = item_id

    def open_rgb(self):
        """Raise, because the dataset has no image files."""
        raise DatasetError(
            f"Dataset {self.dataset!r} ships precomputed features and no images, so item "
            f"{self.item_id} cannot be decoded. Use Dataset.features instead of a backbone."
        )

    def __str__(self):
        return f"{self.dataset}:{self.item_id} (features only)"


def _read_source(folder, definition, definition_path):
    source = definition.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("path"), str):
        raise ValueError(f"{definition_path}: a custom dataset needs a [source] table with a 'path' string.")
    unknown = sorted(set(source) - {"path", "sha256"})
    if unknown:
        raise ValueError(f"{definition_path}: unknown key {unknown[0]!r} in [source]. Allowed keys: ['path', 'sha256'].")
    path = folder / source["path"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist. Put the file named by [source] in {definition_path} there.") from None
    if "sha256" in source:
        found = normalized_sha256(data)
        if found != source["sha256"]:
            raise DatasetError(
                f"{path} has SHA-256 {found}, expected {source['sha256']} ([source] in "
                f"{definition_path}, computed with CRLF line ends converted to LF)."
            )
    return path, data


def _parse_list(value, path, where):
    if value is None:
        return []
    if isinstance(value, str):
        return [entry.strip() for entry in value.split(LIST_SEPARATOR) if entry.strip()]
    if isinstance(value, list) and all(isinstance(entry, str) for entry in value):
        return [entry.strip() for entry in value if entry.strip()]
    raise DatasetError(f"{path} {where}: expected a list of strings, got {value!r}.")


def parse_manifest(path, data):
    """Parse a CSV or JSON-lines manifest.

    Returns
    -------
    list of dict
        One dict per item with ``path`` (str), ``labels`` (list of str), ``tags`` (list of str
        or None) and ``id`` (int or None), and the source line number under ``line``.
    """
    text = data.decode("utf-8-sig")
    records = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path} line {number}: invalid JSON ({error}).") from None
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                raise DatasetError(f"{path} line {number}: expected an object with a 'path' string, got {line.strip()[:80]!r}.")
            records.append({
                "path": entry["path"],
                "labels": _parse_list(entry.get("labels"), path, f"line {number} 'labels'"),
                "tags": _parse_list(entry["tags"], path, f"line {number} 'tags'") if "tags" in entry else None,
                "id": entry.get("id"),
                "line": number,
            })
        return records

    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    for required in ("path", "labels"):
        if required not in columns:
            raise DatasetError(f"{path}: the CSV header {columns} has no {required!r} column; expected path,labels[,tags][,id].")
    for number, row in enumerate(reader, start=2):
        item_id = row.get("id")
        if item_id not in (None, ""):
            try:
                item_id = int(item_id)
            except ValueError:
                raise DatasetError(f"{path} line {number}: id must be an integer, got {item_id!r}.") from None
        else:
            item_id = None
        records.append({
            "path": row["path"].strip(),
            "labels": _parse_list(row["labels"], path, f"line {number}"),
            "tags": _parse_list(row["tags"], path, f"line {number}") if "tags" in columns else None,
            "id": item_id,
            "line": number,
        })
    return records


def _item_ids(records, path):
    given = [record["id"] for record in records]
    if all(item_id is None for item_id in given):
        return np.arange(len(records), dtype=np.int64)
    if any(item_id is None or isinstance(item_id, bool) or not isinstance(item_id, int) for item_id in given):
        first = next(record for record in records if not isinstance(record["id"], int) or isinstance(record["id"], bool))
        raise DatasetError(f"{path} line {first['line']}: every item needs an integer id when one has it, got {first['id']!r}.")
    ids = np.asarray(given, dtype=np.int64)
    values, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise DatasetError(f"{path}: item id {values[counts > 1][0]} occurs {counts[counts > 1][0]} times, but ids must be unique.")
    return ids


class CustomDatasetLoader(DatasetLoader):
    """Loader of a custom dataset, configured entirely by its definition file."""

    file_roles = ()
    count_keys = ("items", "labels")

    def _folder(self, data_root):
        folder = resolve_dataset_folder(data_root, self.definition["folder"])
        if not folder.is_dir():
            raise DatasetError(f"Dataset folder {folder} does not exist in the data root {folder.parent}.")
        return folder

    def _check_counts(self, n_items, path):
        expected = self.definition["counts"]["items"]
        if n_items != expected:
            raise DatasetError(f"{path}: found {n_items:,} items, expected {expected:,} (counts.items in {self.definition_path}).")
        if len(self.definition["label_names"]) != self.definition["counts"]["labels"]:
            raise ValueError(
                f"{self.definition_path}: 'label_names' has {len(self.definition['label_names'])} entries but "
                f"counts.labels is {self.definition['counts']['labels']}. Make them agree."
            )

    def load(self, data_root, *, progress=NULL_PROGRESS):
        """Read the custom dataset, as ``hashbench.data.load_dataset`` describes."""
        start = time.perf_counter()
        kind = self.definition.get("loader")
        if kind not in LOADER_KINDS:
            raise ValueError(f"{self.definition_path}: 'loader' must be one of {LOADER_KINDS}, got {kind!r}.")
        folder = self._folder(data_root)
        path, data = _read_source(folder, self.definition, self.definition_path)
        with progress.task(f"Reading {self.name}", total=1) as advance:
            fields = self._load_manifest(folder, path, data) if kind == "manifest" else self._load_features(path, data)
            advance(1)
        logger.info("Loaded %s from %s (%s) in %.2f s", self.name, path, kind, time.perf_counter() - start)
        return Dataset(
            name=self.name,
            description=self.definition["description"],
            label_names=list(self.definition["label_names"]),
            definition=self.definition,
            definition_path=self.definition_path,
            folder=folder,
            source=f"{kind}:{path.name}",
            **fields,
        )

    def _load_manifest(self, folder, path, data):
        records = parse_manifest(path, data)
        self._check_counts(len(records), path)
        label_names = list(self.definition["label_names"])
        column_of = {name: column for column, name in enumerate(label_names)}
        labels = np.zeros((len(records), len(label_names)), dtype=np.uint8)
        for row, record in enumerate(records):
            for name in record["labels"]:
                if name not in column_of:
                    raise DatasetError(
                        f"{path} line {record['line']}: label {name!r} is not in label_names {label_names} "
                        f"of {self.definition_path}."
                    )
                labels[row, column_of[name]] = 1

        tags, vocabulary = None, []
        has_tags = [record["tags"] is not None for record in records]
        if any(has_tags):
            vocabulary = sorted({tag for record in records for tag in record["tags"] or []})
            tag_column = {tag: column for column, tag in enumerate(vocabulary)}
            rows, columns = [], []
            for row, record in enumerate(records):
                for column in sorted({tag_column[tag] for tag in record["tags"] or []}):
                    rows.append(row)
                    columns.append(column)
            tags = sp.csr_matrix(
                (np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=(len(records), len(vocabulary))
            )

        image_paths = [folder / record["path"] for record in records]
        present = np.zeros(len(records), dtype=bool)
        names_by_folder = {}
        for row, image_path in enumerate(image_paths):
            parent = image_path.parent
            if parent not in names_by_folder:
                names_by_folder[parent] = list_folder_names(parent)
            present[row] = image_path.name in names_by_folder[parent]
        return {
            "ids": _item_ids(records, path),
            "image_paths": image_paths,
            "present": present,
            "labels": labels,
            "tags": tags,
            "tag_vocabulary": vocabulary,
        }

    def _load_features(self, path, data):
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (ValueError, OSError) as error:
            raise DatasetError(f"{path} is not a readable .npz file without pickled objects ({error}).") from None
        for key in ("features", "labels"):
            if key not in arrays:
                raise DatasetError(f"{path} has no array {key!r}; found {sorted(arrays)}. Expected features, labels[, tags, tag_vocabulary, ids].")
        features = np.asarray(arrays["features"])
        if features.ndim != 2 or not np.issubdtype(features.dtype, np.number):
            raise DatasetError(f"{path}: 'features' must be a numeric array of shape (n, d), found {features.dtype} of shape {features.shape}.")
        n_items = len(features)
        self._check_counts(n_items, path)
        labels = np.asarray(arrays["labels"])
        n_labels = self.definition["counts"]["labels"]
        if labels.shape != (n_items, n_labels) or not np.isin(labels, (0, 1)).all():
            raise DatasetError(f"{path}: 'labels' must be a 0/1 array of shape ({n_items}, {n_labels}), found shape {labels.shape}.")

        tags, vocabulary = None, []
        if "tags" in arrays:
            tag_array = np.asarray(arrays["tags"])
            if tag_array.ndim != 2 or len(tag_array) != n_items or not np.isin(tag_array, (0, 1)).all():
                raise DatasetError(f"{path}: 'tags' must be a 0/1 array of shape ({n_items}, n_tags), found shape {tag_array.shape}.")
            tags = sp.csr_matrix(tag_array, dtype=np.float32)
            if "tag_vocabulary" in arrays:
                vocabulary = [str(tag) for tag in arrays["tag_vocabulary"]]
                if len(vocabulary) != tags.shape[1]:
                    raise DatasetError(f"{path}: 'tag_vocabulary' has {len(vocabulary)} entries, expected {tags.shape[1]} as 'tags' has columns.")
            else:
                vocabulary = [f"tag{column}" for column in range(tags.shape[1])]

        ids = np.asarray(arrays["ids"], dtype=np.int64) if "ids" in arrays else np.arange(n_items, dtype=np.int64)
        if ids.shape != (n_items,) or len(np.unique(ids)) != n_items:
            raise DatasetError(f"{path}: 'ids' must be {n_items} unique integers, found shape {ids.shape}.")
        return {
            "ids": ids,
            "image_paths": [NoImage(self.name, int(item_id)) for item_id in ids],
            "present": np.ones(n_items, dtype=bool),
            "labels": labels.astype(np.uint8),
            "tags": tags,
            "tag_vocabulary": vocabulary,
            "features": np.ascontiguousarray(features, dtype=np.float32),
        }

    def status(self, data_root):
        """Summarise whether the source file exists, without parsing it."""
        result = {"name": self.name, "description": self.definition["description"], "found": False,
                  "n_items": None, "n_images_present": None, "message": ""}
        try:
            folder = self._folder(data_root)
        except DatasetError as error:
            result.update(message=str(error), n_items=0, n_images_present=0)
            return result
        source = folder / self.definition.get("source", {}).get("path", "")
        result["found"] = source.is_file()
        result["message"] = f"{self.definition.get('loader')} source {source}" + ("" if result["found"] else " is missing")
        return result


def register_custom_dataset(name):
    """Register ``name`` as a custom dataset whose definition selects the manifest or features loader.

    Parameters
    ----------
    name : str
        The definition file's name without ``.toml``.

    Returns
    -------
    type
        The registered ``DatasetLoader`` subclass.
    """
    if name in _LOADERS and issubclass(_LOADERS[name], CustomDatasetLoader):
        return _LOADERS[name]
    loader = type(f"CustomDataset_{name}", (CustomDatasetLoader,), {"__module__": __name__})
    return register_dataset(name)(loader)


def _register_definitions(folder=DATASETS_DIR):
    """Register every definition in ``folder`` whose top-level ``loader`` names a custom kind."""
    for path in sorted(Path(folder).glob("*.toml")):
        try:
            with open(path, "rb") as handle:
                loader = tomllib.load(handle).get("loader")
        except (OSError, tomllib.TOMLDecodeError):
            # load_definition reports an invalid file when the dataset is requested.
            continue
        if loader in LOADER_KINDS and path.stem not in _LOADERS:
            register_custom_dataset(path.stem)


_register_definitions()
