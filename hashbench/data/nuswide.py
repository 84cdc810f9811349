"""NUS-WIDE loader: the images of the 21 most frequent of the 81 concepts, with 1,000 user tags.

NUS-WIDE (Chua et al., CIVR 2009) has 269,648 Flickr images with 81 ground-truth concepts and
the 1,000 most frequent user tags. Hashing papers (for example DPSH, Li et al., IJCAI 2016, and
ADSH, Jiang and Li, AAAI 2018) keep the images that carry at least one of the 21 most frequent
concepts and use those 21 concepts as labels. The dataset folder (``nuswide/`` under the data
root) contains one of two layouts:

Official layout
    ``ImageList/Imagelist.txt`` (one image path a line, Windows separators accepted),
    ``NUS_WID_Tags/AllTags1k.txt`` (one row of 1,000 0/1 values a line, same order),
    ``NUS_WID_Tags/TagList1k.txt`` (the 1,000 tags), and the concept labels as either
    ``Groundtruth/AllLabels/Labels_<concept>.txt`` (81 files of one 0/1 value a line) or
    ``AllLabels81.txt`` (one row of 81 0/1 values a line, columns in the order of
    ``Concepts81.txt``). Images are looked up as ``Flickr/<folder>/<file>`` from the last two
    components of each listed path. Item ids are 0-based row numbers of ``Imagelist.txt``.

Repackaged MATLAB layout
    ``*lall*.mat`` with the label matrix ``LAll`` (n, 21), optionally ``*yall*.mat`` with the tag
    matrix ``YAll`` (n, n_tags) and ``*iall*.mat`` with the images ``IAll`` as uint8 of shape
    (n, height, width, 3). Item ids are 0-based rows. These files already contain only the
    21-concept subset. MATLAB v7.3 files are HDF5 and need the optional ``h5py`` package.

The two layouts number items differently, so a split generated on one does not apply to the
other.
"""

import logging
import re
import time
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from hashbench.data.dataset import (
    Dataset,
    DatasetError,
    DatasetLoader,
    list_folder_names,
    register_dataset,
    resolve_dataset_folder,
    split_lines,
)
from hashbench.data.images import ArrayImage
from hashbench.paths import DATA_ROOT_ENV
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

IMAGE_LIST = ("ImageList/Imagelist.txt", "Imagelist.txt")
TAG_MATRIX = ("NUS_WID_Tags/AllTags1k.txt", "AllTags1k.txt")
TAG_LIST = ("NUS_WID_Tags/TagList1k.txt", "TagList1k.txt", "ConceptsList/TagList1k.txt")
CONCEPT_LIST = ("Concepts81.txt", "ConceptsList/Concepts81.txt", "Groundtruth/Concepts81.txt")
LABEL_MATRIX = ("AllLabels81.txt", "Groundtruth/AllLabels81.txt")
LABEL_FOLDER = "Groundtruth/AllLabels"
IMAGE_FOLDER = "Flickr"

_LABEL_FILE = re.compile(r"Labels_(.+)\.txt")
_ZERO, _ONE = ord("0"), ord("1")
_WHITESPACE = np.frombuffer(b" \t\r\n", dtype=np.uint8)


def _find(folder, candidates):
    for relative in candidates:
        if (folder / relative).is_file():
            return folder / relative
    return None


def _parse_binary_rows(path, n_columns, *, n_rows=None):
    """Read a text file of 0/1 values separated by blanks, one row a line, as uint8 (n, n_columns).

    The whole file is parsed with vectorised numpy operations, because the official tag matrix
    has 269,648 lines of 1,000 values.
    """
    lines = path.read_bytes().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    lengths = np.fromiter((len(line) for line in lines), dtype=np.int64, count=len(lines))
    flat = np.frombuffer(b"".join(lines), dtype=np.uint8)
    is_value = ~np.isin(flat, _WHITESPACE)
    if len(flat):
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        per_line = np.add.reduceat(is_value.astype(np.int64), np.minimum(starts, len(flat) - 1))
        per_line[lengths == 0] = 0
    else:
        per_line = np.zeros(len(lines), dtype=np.int64)

    values = flat[is_value]
    wrong_value = np.flatnonzero((values != _ZERO) & (values != _ONE))
    wrong_line = np.flatnonzero(per_line != n_columns)
    if len(wrong_value):
        line_index = int(np.searchsorted(np.cumsum(per_line), wrong_value[0], side="right"))
        wrong_line = np.union1d(wrong_line, [line_index])
    if len(wrong_line):
        index = int(wrong_line[0])
        found = lines[index].decode("latin-1").split()
        raise DatasetError(
            f"{path} line {index + 1}: expected {n_columns} blank-separated 0/1 values, found "
            f"{len(found)} values ({' '.join(found[:5])}{' ...' if len(found) > 5 else ''}). "
            "Restore the original NUS-WIDE file."
        )
    matrix = (values - _ZERO).reshape(len(lines), n_columns)
    if n_rows is not None and len(matrix) != n_rows:
        raise DatasetError(
            f"{path} has {len(matrix):,} rows, expected {n_rows:,} (one per line of the image list). "
            "Restore the original NUS-WIDE file."
        )
    return matrix


def _read_lines(path):
    return [line.strip() for line in split_lines(path.read_text(encoding="utf-8-sig")) if line.strip()]


def select_frequent_concepts(labels, n_concepts):
    """Return the columns of the ``n_concepts`` most frequent concepts, in column order.

    Parameters
    ----------
    labels : ndarray of shape (n_items, n_all_concepts), dtype uint8
    n_concepts : int

    Returns
    -------
    ndarray of shape (n_concepts,), dtype int64
        Ties in frequency go to the earlier column.
    """
    counts = labels.sum(axis=0, dtype=np.int64)
    order = np.lexsort((np.arange(len(counts)), -counts))
    return np.sort(order[:n_concepts])


@register_dataset("nuswide")
class NUSWIDE(DatasetLoader):
    """Loader of NUS-WIDE from the folder ``nuswide/`` of the data root, official or ``.mat`` layout."""

    file_roles = ()
    count_keys = ("items", "listed_items", "labels", "concepts", "tags")

    def _dataset_folder(self, data_root):
        folder = resolve_dataset_folder(data_root, self.definition["folder"])
        if not folder.is_dir():
            raise DatasetError(
                f"Dataset folder {folder} does not exist in the data root {folder.parent}. Copy the "
                f"NUS-WIDE files there (see docs/datasets.md), or set the {DATA_ROOT_ENV} environment "
                f"variable or --data-root to the folder that contains {self.definition['folder']}/."
            )
        return folder

    def _check(self, found, key, path, what):
        expected = self.definition["counts"][key]
        if found != expected:
            raise DatasetError(
                f"{path}: found {found:,} {what}, expected {expected:,} (counts.{key} in "
                f"{self.definition_path})."
            )

    # ----------------------------------------------------------------------------------------
    # Official layout
    # ----------------------------------------------------------------------------------------

    def _read_concept_labels(self, folder, n_rows):
        """Return the 81 concept names and the (n_rows, 81) uint8 label matrix."""
        n_concepts = self.definition["counts"]["concepts"]
        concept_list = _find(folder, CONCEPT_LIST)
        matrix_path = _find(folder, LABEL_MATRIX)
        if matrix_path is not None:
            if concept_list is None:
                raise DatasetError(
                    f"{matrix_path} needs the concept names of its columns, but none of "
                    f"{', '.join(CONCEPT_LIST)} exists in {folder}."
                )
            names = _read_lines(concept_list)
            self._check(len(names), "concepts", concept_list, "concepts")
            return names, _parse_binary_rows(matrix_path, n_concepts, n_rows=n_rows), matrix_path

        label_folder = folder / LABEL_FOLDER
        files = {}
        for name in list_folder_names(label_folder):
            match = _LABEL_FILE.fullmatch(name)
            if match:
                files[match.group(1)] = label_folder / name
        if not files:
            raise DatasetError(
                f"No concept labels in {folder}: expected {LABEL_FOLDER}/Labels_<concept>.txt files "
                f"or {LABEL_MATRIX[0]}."
            )
        names = _read_lines(concept_list) if concept_list is not None else sorted(files)
        missing = [name for name in names if name not in files]
        if missing:
            raise DatasetError(f"{label_folder}: Labels_{missing[0]}.txt is missing ({len(missing)} concepts missing).")
        self._check(len(names), "concepts", label_folder, "concept label files")
        columns = [_parse_binary_rows(files[name], 1, n_rows=n_rows)[:, 0] for name in names]
        return names, np.stack(columns, axis=1), label_folder

    def _load_official(self, folder, image_list, progress):
        counts = self.definition["counts"]
        with progress.task(f"Reading {self.name} metadata", total=3) as advance:
            listed = _read_lines(image_list)
            self._check(len(listed), "listed_items", image_list, "listed images")
            relative_paths = []
            for line in listed:
                parts = line.replace("\\", "/").split("/")
                relative_paths.append("/".join([IMAGE_FOLDER, *parts[-2:]]))
            advance(1)

            names, all_labels, label_source = self._read_concept_labels(folder, len(listed))
            advance(1)

            tag_list = _find(folder, TAG_LIST)
            tag_matrix = _find(folder, TAG_MATRIX)
            if tag_list is None or tag_matrix is None:
                raise DatasetError(
                    f"NUS-WIDE tags missing in {folder}: expected {TAG_LIST[0]} and {TAG_MATRIX[0]}."
                )
            vocabulary = _read_lines(tag_list)
            self._check(len(vocabulary), "tags", tag_list, "tags")
            all_tags = _parse_binary_rows(tag_matrix, len(vocabulary), n_rows=len(listed))
            advance(1)

        columns = select_frequent_concepts(all_labels, counts["labels"])
        labels = np.ascontiguousarray(all_labels[:, columns])
        kept = np.flatnonzero(labels.any(axis=1))
        self._check(len(kept), "items", label_source, f"images with at least one of the {counts['labels']} most frequent concepts")

        label_names = [names[column] for column in columns]
        expected_names = list(self.definition["label_names"])
        if label_names != expected_names:
            raise DatasetError(
                f"{label_source}: the {counts['labels']} most frequent concepts are {label_names}, "
                f"expected {expected_names} (label_names in {self.definition_path})."
            )

        image_paths = [folder / relative_paths[row] for row in kept]
        present = np.zeros(len(kept), dtype=bool)
        folder_names = {}
        for position, row in enumerate(kept):
            subfolder, _, file_name = relative_paths[row].rpartition("/")
            if subfolder not in folder_names:
                folder_names[subfolder] = list_folder_names(folder / subfolder)
            present[position] = file_name in folder_names[subfolder]
        tags = sp.csr_matrix(all_tags[kept], dtype=np.float32)
        return kept.astype(np.int64), image_paths, present, labels[kept], tags, vocabulary, label_names, "official"

    # ----------------------------------------------------------------------------------------
    # Repackaged .mat layout
    # ----------------------------------------------------------------------------------------

    @staticmethod
    def _read_mat_variable(path, variable):
        try:
            content = scipy.io.loadmat(path, variable_names=[variable])
        except NotImplementedError:
            try:
                import h5py
            except ImportError:
                raise DatasetError(
                    f"{path} is a MATLAB v7.3 (HDF5) file, which needs the h5py package: "
                    "pip install h5py."
                ) from None
            # NOTE: untested, because no v7.3 fixture is written by the tests. MATLAB stores
            # arrays transposed in HDF5, so the axes are reversed here.
            with h5py.File(path, "r") as handle:
                if variable not in handle:
                    raise DatasetError(f"{path} has no variable {variable!r}; found {sorted(handle)}.") from None
                return np.asarray(handle[variable]).transpose()
        except (ValueError, OSError) as error:
            raise DatasetError(f"{path} is not a readable MATLAB file ({error}).") from None
        if variable not in content:
            found = sorted(name for name, _, _ in scipy.io.whosmat(path))
            raise DatasetError(f"{path} has no variable {variable!r}; found {found}.")
        return content[variable]

    def _load_mat(self, folder, label_file, progress):
        counts = self.definition["counts"]
        mats = sorted(path.name for path in folder.glob("*.mat"))
        tag_file = next((folder / name for name in mats if "yall" in name.lower()), None)
        image_file = next((folder / name for name in mats if "iall" in name.lower()), None)

        with progress.task(f"Reading {self.name} .mat files", total=3) as advance:
            labels = np.asarray(self._read_mat_variable(label_file, "LAll"))
            if labels.ndim != 2 or labels.shape[1] != counts["labels"] or not np.isin(labels, (0, 1)).all():
                raise DatasetError(
                    f"{label_file}: LAll must be a 0/1 matrix of shape (n, {counts['labels']}), found "
                    f"shape {labels.shape}."
                )
            labels = labels.astype(np.uint8)
            self._check(len(labels), "items", label_file, "items")
            advance(1)

            tags, vocabulary = None, []
            if tag_file is not None:
                tags = sp.csr_matrix(np.asarray(self._read_mat_variable(tag_file, "YAll")), dtype=np.float32)
                if tags.shape[0] != len(labels):
                    raise DatasetError(f"{tag_file}: YAll has {tags.shape[0]:,} rows, expected {len(labels):,} as LAll.")
                if tags.shape[1] != counts["tags"]:
                    raise DatasetError(f"{tag_file}: YAll has {tags.shape[1]:,} tag columns, expected {counts['tags']:,} (counts.tags).")
                # The .mat files carry no tag names, so the columns are named by number.
                vocabulary = [f"tag{column}" for column in range(tags.shape[1])]
            advance(1)

            n_items = len(labels)
            if image_file is not None:
                pixels = np.asarray(self._read_mat_variable(image_file, "IAll"))
                if pixels.dtype != np.uint8 or pixels.ndim != 4 or len(pixels) != n_items or 3 not in (pixels.shape[1], pixels.shape[3]):
                    raise DatasetError(
                        f"{image_file}: IAll must be uint8 images of shape ({n_items}, height, width, 3), "
                        f"found {pixels.dtype} of shape {pixels.shape}."
                    )
                if pixels.shape[3] != 3:
                    pixels = pixels.transpose(0, 2, 3, 1)
                image_paths = [ArrayImage(pixels[row], f"{image_file.name}:IAll[{row}]") for row in range(n_items)]
                present = np.ones(n_items, dtype=bool)
            else:
                image_paths = [folder / f"IAll[{row}]" for row in range(n_items)]
                present = np.zeros(n_items, dtype=bool)
            advance(1)
        ids = np.arange(n_items, dtype=np.int64)
        label_names = list(self.definition["label_names"])
        return ids, image_paths, present, labels, tags, vocabulary, label_names, "mat"

    # ----------------------------------------------------------------------------------------
    # Public API
    # ----------------------------------------------------------------------------------------

    def _layout(self, folder):
        image_list = _find(folder, IMAGE_LIST)
        if image_list is not None:
            return "official", image_list
        label_files = sorted(path for path in folder.glob("*.mat") if "lall" in path.name.lower())
        if label_files:
            return "mat", label_files[0]
        return None, None

    def load(self, data_root, *, progress=NULL_PROGRESS):
        """Read NUS-WIDE from ``data_root``, as ``hashbench.data.load_dataset`` describes."""
        start = time.perf_counter()
        folder = self._dataset_folder(data_root)
        kind, path = self._layout(folder)
        if kind is None:
            raise DatasetError(
                f"No NUS-WIDE files found in {folder}: expected {IMAGE_LIST[0]} (official layout) or "
                "a *lall*.mat label file (repackaged layout)."
            )
        logger.info("Loading %s from %s (%s layout)", self.name, folder, kind)
        if kind == "official":
            loaded = self._load_official(folder, path, progress)
        else:
            loaded = self._load_mat(folder, path, progress)
        ids, image_paths, present, labels, tags, vocabulary, label_names, source = loaded
        logger.info(
            "Loaded %s: %d items, %d images present, %d labels, %d tags in %.2f s",
            self.name, len(ids), np.count_nonzero(present), labels.shape[1], len(vocabulary), time.perf_counter() - start,
        )
        return Dataset(
            name=self.name,
            description=self.definition["description"],
            ids=ids,
            image_paths=image_paths,
            present=present,
            labels=labels,
            tags=tags,
            tag_vocabulary=vocabulary,
            label_names=label_names,
            definition=self.definition,
            definition_path=self.definition_path,
            folder=folder,
            source=f"{source}:{path.name}",
        )

    def status(self, data_root):
        """Summarise what is on disk without parsing the large files."""
        result = {
            "name": self.name,
            "description": self.definition["description"],
            "found": False,
            "n_items": None,
            "n_images_present": None,
            "message": "",
        }
        try:
            folder = self._dataset_folder(data_root)
        except DatasetError as error:
            result["message"] = str(error)
            result["n_items"] = result["n_images_present"] = 0
            return result
        kind, path = self._layout(folder)
        if kind is None:
            result["message"] = f"No NUS-WIDE image list or .mat label file in {folder}."
            result["n_items"] = result["n_images_present"] = 0
            return result
        result["found"] = True
        result["message"] = f"{kind} layout ({path.name}), not parsed for this listing. `hashbench datasets verify nuswide` counts it."
        return result
