"""MIRFlickr-25K loader: the 20,015-image subset with 24 labels and 1,386 user tags.

MIRFlickr-25K, the collection of the MIR Flickr retrieval evaluation, contains 25,000 Flickr
photos. Hashing papers use the 20,015 images that carry at least one of the 24
labels and at least one tag of the 1,386-tag vocabulary. The dataset folder contains:

- ``all_imgs.txt``: one relative image path ``mirflickr/imN.jpg`` a line, where N is the item id.
- ``all_labels.txt``: one row of 24 space-separated 0/1 values a line, same row order.
- ``all_tags.txt``: one row of comma-separated tags a line, same row order.
- ``Concepts/TagList.txt``: the tag vocabulary, one tag a line.
- ``mirflickr/imN.jpg``: the images, of which any subset may be present.

File names, checksums and counts come from ``datasets/mirflickr25k.toml``. CRLF and LF line ends
are both accepted.
"""

import logging
import re
import time
from collections import defaultdict

import numpy as np
import scipy.sparse as sp

from hashbench.data import mirflickr25k_official as official
from hashbench.data.dataset import (
    Dataset,
    DatasetError,
    DatasetLoader,
    list_folder_names,
    read_metadata_file,
    register_dataset,
    resolve_dataset_folder,
    split_lines,
)
from hashbench.paths import DATA_ROOT_ENV
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

# A relative image path such as "mirflickr/im123.jpg", whose group is the item id.
_IMAGE_PATH = re.compile(r"(?:[^/\\]+/)*im([0-9]+)\.jpg")

_RESTORE = "Restore the original MIRFlickr-25K metadata files."


def _parse_image_list(text, path):
    """Return the item ids (int64) and the relative image paths listed in ``all_imgs.txt``."""
    relative_paths = []
    ids = []
    first_line_of_id = {}
    for number, line in enumerate(split_lines(text), start=1):
        line = line.strip()
        match = _IMAGE_PATH.fullmatch(line)
        if match is None:
            raise DatasetError(
                f"{path} line {number}: expected a relative image path such as "
                f"'mirflickr/im1.jpg', got {line!r}. {_RESTORE}"
            )
        item_id = int(match.group(1))
        if item_id in first_line_of_id:
            raise DatasetError(
                f"{path} line {number}: image id {item_id} is already listed on line "
                f"{first_line_of_id[item_id]}, but every image must be listed once. {_RESTORE}"
            )
        first_line_of_id[item_id] = number
        ids.append(item_id)
        relative_paths.append(line)
    return np.asarray(ids, dtype=np.int64), relative_paths


def _parse_labels(text, path, *, n_rows, n_labels, image_list_path):
    """Return the ``(n_rows, n_labels)`` uint8 label matrix of ``all_labels.txt``."""
    lines = split_lines(text)
    _check_row_count(len(lines), n_rows, path, image_list_path)
    digits = []
    for number, line in enumerate(lines, start=1):
        values = line.split()
        if len(values) != n_labels:
            raise DatasetError(
                f"{path} line {number}: expected {n_labels} space-separated 0/1 values, found "
                f"{len(values)}. {_RESTORE}"
            )
        if not set(values) <= {"0", "1"}:
            bad = next(value for value in values if value not in ("0", "1"))
            raise DatasetError(
                f"{path} line {number}: labels must be 0 or 1, found {bad!r}. {_RESTORE}"
            )
        digits.append("".join(values))

    # Every entry is one ASCII digit, so the bytes minus ord("0") are the labels.
    flat = np.frombuffer("".join(digits).encode("ascii"), dtype=np.uint8) - np.uint8(ord("0"))
    return flat.reshape(n_rows, n_labels)


def _parse_vocabulary(text, path):
    """Return the tag vocabulary of ``TagList.txt`` as a list, in file order."""
    vocabulary = []
    first_line_of_tag = {}
    for number, line in enumerate(split_lines(text), start=1):
        tag = line.strip()
        if not tag:
            raise DatasetError(f"{path} line {number}: empty tag. {_RESTORE}")
        if tag in first_line_of_tag:
            raise DatasetError(
                f"{path} line {number}: tag {tag!r} already appears on line "
                f"{first_line_of_tag[tag]}. {_RESTORE}"
            )
        first_line_of_tag[tag] = number
        vocabulary.append(tag)
    return vocabulary


def _parse_tags(text, path, *, n_rows, vocabulary, vocabulary_path, image_list_path):
    """Return the ``(n_rows, len(vocabulary))`` float32 0/1 CSR tag matrix of ``all_tags.txt``.

    An empty line is an item without tags, and a tag repeated within a row counts once.
    """
    lines = split_lines(text)
    _check_row_count(len(lines), n_rows, path, image_list_path)
    column_of = {tag: column for column, tag in enumerate(vocabulary)}
    indptr = [0]
    indices = []
    for number, line in enumerate(lines, start=1):
        columns = set()
        if line.strip():
            for tag in line.split(","):
                tag = tag.strip()
                column = column_of.get(tag)
                if column is None:
                    raise DatasetError(
                        f"{path} line {number}: tag {tag!r} is not in the vocabulary "
                        f"{vocabulary_path} ({len(vocabulary):,} tags). {_RESTORE}"
                    )
                columns.add(column)
        indices.extend(sorted(columns))
        indptr.append(len(indices))

    indices = np.asarray(indices, dtype=np.int32)
    data = np.ones(len(indices), dtype=np.float32)
    shape = (n_rows, len(vocabulary))
    return sp.csr_matrix((data, indices, np.asarray(indptr, dtype=np.int64)), shape=shape)


def _check_row_count(n_found, n_rows, path, image_list_path):
    if n_found < n_rows:
        raise DatasetError(
            f"{path} has {n_found:,} rows but {image_list_path} lists {n_rows:,} images: line "
            f"{n_found + 1:,} and later are missing. Every file needs one row per image in the "
            f"same order. {_RESTORE}"
        )
    if n_found > n_rows:
        raise DatasetError(
            f"{path} has {n_found:,} rows but {image_list_path} lists {n_rows:,} images: line "
            f"{n_rows + 1:,} has no image. Every file needs one row per image in the same "
            f"order. {_RESTORE}"
        )


def _present_mask(folder, relative_paths):
    """Return whether each listed image exists, with one directory listing per image folder."""
    rows_by_subfolder = defaultdict(list)
    for row, relative in enumerate(relative_paths):
        subfolder, _, file_name = relative.rpartition("/")
        rows_by_subfolder[subfolder].append((row, file_name))

    present = np.zeros(len(relative_paths), dtype=bool)
    for subfolder, rows in rows_by_subfolder.items():
        names = list_folder_names(folder / subfolder)
        for row, file_name in rows:
            present[row] = file_name in names
    return present, sorted(rows_by_subfolder)


def _check_count(found, key, counts, path, kind):
    if found != counts[key]:
        raise DatasetError(
            f"{path} has {found:,} {kind}, expected {counts[key]:,} (counts.{key} in the dataset "
            f"definition). {_RESTORE}"
        )


@register_dataset("mirflickr25k")
class MIRFlickr25K(DatasetLoader):
    """Loader of MIRFlickr-25K from the folder ``mirflickr25k/`` of the data root."""

    file_roles = ("image_list", "labels", "tags", "tag_vocabulary")
    count_keys = ("items", "labels", "tags")

    def _dataset_folder(self, data_root):
        folder = resolve_dataset_folder(data_root, self.definition["folder"])
        if not folder.is_dir():
            raise DatasetError(
                f"Dataset folder {folder} does not exist in the data root {folder.parent}. Copy "
                f"the MIRFlickr-25K files there, or set the {DATA_ROOT_ENV} environment variable "
                f"or --data-root to the folder that contains {self.definition['folder']}/."
            )
        return folder

    def load(self, data_root, *, progress=NULL_PROGRESS):
        """Read MIRFlickr-25K from ``data_root``, as ``hashbench.data.load_dataset`` describes."""
        start = time.perf_counter()
        definition = self.definition
        counts = definition["counts"]
        files = definition["files"]
        label_names = list(definition["label_names"])
        if len(label_names) != counts["labels"]:
            raise ValueError(
                f"{self.definition_path}: 'label_names' has {len(label_names)} entries but "
                f"counts.labels is {counts['labels']}. Make them agree."
            )

        folder = self._dataset_folder(data_root)
        paths = {role: folder / files[role]["path"] for role in self.file_roles}
        if not paths["image_list"].is_file() and official.archives_present(folder):
            return self._load_from_archives(folder, label_names, progress)
        logger.info("Loading %s from %s", self.name, folder)

        with progress.task(f"Reading {self.name} metadata", total=len(self.file_roles)) as advance:
            text = read_metadata_file(folder, files["tag_vocabulary"])
            vocabulary = _parse_vocabulary(text, paths["tag_vocabulary"])
            _check_count(len(vocabulary), "tags", counts, paths["tag_vocabulary"], "tags")
            advance(1)

            text = read_metadata_file(folder, files["image_list"])
            ids, relative_paths = _parse_image_list(text, paths["image_list"])
            _check_count(len(ids), "items", counts, paths["image_list"], "images")
            advance(1)

            text = read_metadata_file(folder, files["labels"])
            labels = _parse_labels(
                text,
                paths["labels"],
                n_rows=len(ids),
                n_labels=counts["labels"],
                image_list_path=paths["image_list"],
            )
            advance(1)

            text = read_metadata_file(folder, files["tags"])
            tags = _parse_tags(
                text,
                paths["tags"],
                n_rows=len(ids),
                vocabulary=vocabulary,
                vocabulary_path=paths["tag_vocabulary"],
                image_list_path=paths["image_list"],
            )
            advance(1)

        present, subfolders = _present_mask(folder, relative_paths)
        image_paths = [folder / relative for relative in relative_paths]
        n_present = int(np.count_nonzero(present))
        if n_present == 0:
            logger.warning(
                "None of the %d listed images of %s exist in %s",
                len(ids),
                self.name,
                ", ".join(str(folder / subfolder) for subfolder in subfolders),
            )
        logger.info(
            "Loaded %s: %d items listed, %d images present, %d labels, %d tags in %.2f s",
            self.name,
            len(ids),
            n_present,
            labels.shape[1],
            tags.shape[1],
            time.perf_counter() - start,
        )
        return Dataset(
            name=self.name,
            description=definition["description"],
            ids=ids,
            image_paths=image_paths,
            present=present,
            labels=labels,
            tags=tags,
            tag_vocabulary=vocabulary,
            label_names=label_names,
            definition=definition,
            definition_path=self.definition_path,
            folder=folder,
        )

    def _load_from_archives(self, folder, label_names, progress):
        """Derive the subset from the official archives when the published files are absent."""
        counts = self.definition["counts"]
        with progress.task(f"Deriving {self.name} from the official archives", total=1) as advance:
            derived = official.derive_from_archives(folder, label_names, official.N_IMAGES)
            advance(1)
        _check_count(len(derived.ids), "items", counts, folder / official.IMAGES_ARCHIVE, "images in the derived subset")
        _check_count(len(derived.vocabulary), "tags", counts, folder / official.IMAGES_ARCHIVE, "vocabulary tags in the derived subset")

        # Extracted images take precedence over the members of the archive.
        extracted = list_folder_names(folder / "mirflickr")
        image_paths = []
        present = np.zeros(len(derived.ids), dtype=bool)
        for row, item_id in enumerate(derived.ids):
            file_name = f"im{item_id}.jpg"
            if file_name in extracted:
                image_paths.append(folder / "mirflickr" / file_name)
                present[row] = True
            elif int(item_id) in derived.image_members:
                image_paths.append(official.ZipMemberImage(folder / official.IMAGES_ARCHIVE, derived.image_members[int(item_id)]))
                present[row] = True
            else:
                image_paths.append(folder / "mirflickr" / file_name)
        logger.info("Loaded %s from the official archives: %d items, %d images present", self.name, len(derived.ids), present.sum())
        return Dataset(
            name=self.name,
            description=self.definition["description"],
            ids=derived.ids,
            image_paths=image_paths,
            present=present,
            labels=derived.labels,
            tags=derived.tags,
            tag_vocabulary=derived.vocabulary,
            label_names=label_names,
            definition=self.definition,
            definition_path=self.definition_path,
            folder=folder,
            source=f"official archives:{official.IMAGES_ARCHIVE}",
        )

    def verify_extra(self, dataset, folder):
        """Compare the subset derived from the official archives with the published files.

        Returns
        -------
        list of hashbench.data.verify.Finding
            One finding per compared aspect when both the archives and the published files are
            present, else one ``skip`` or ``ok`` finding that says why nothing was compared.
        """
        from hashbench.data.verify import Finding

        if not official.archives_present(folder):
            return [Finding(
                "skip", "derivation",
                f"{official.IMAGES_ARCHIVE} and {official.ANNOTATIONS_ARCHIVE} are not both in {folder}, "
                "so the subset is not derived and compared.",
            )]
        if dataset.source.startswith("official archives"):
            return [Finding("ok", "derivation", f"Subset derived from the official archives in {folder}; no published files to compare.")]
        try:
            derived = official.derive_from_archives(folder, list(self.definition["label_names"]), official.N_IMAGES)
        except DatasetError as error:
            return [Finding("fail", "derivation", str(error))]
        return [
            Finding("ok" if matches else "fail", "derivation", f"derived vs published {message}")
            for matches, message in official.compare_with_release(derived, dataset)
        ]

    def status(self, data_root):
        """Summarise the files on disk, as ``hashbench.data.dataset_status`` describes."""
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

        files = self.definition["files"]
        missing = [files[role]["path"] for role in self.file_roles if not (folder / files[role]["path"]).is_file()]
        result["found"] = not missing
        if missing and official.archives_present(folder):
            result["found"] = True
            result["n_items"] = result["n_images_present"] = None
            result["message"] = (
                f"Official archives in {folder}, without the published metadata files: the "
                "20,015-image subset is derived from them on load."
            )
            return result

        image_list = folder / files["image_list"]["path"]
        if image_list.is_file():
            try:
                text = image_list.read_text(encoding="utf-8-sig")
                ids, relative_paths = _parse_image_list(text, image_list)
            except (DatasetError, UnicodeDecodeError) as error:
                result["found"] = False
                result["message"] = f"Invalid image list: {error}"
                return result
            present, subfolders = _present_mask(folder, relative_paths)
            result["n_items"] = len(ids)
            result["n_images_present"] = int(np.count_nonzero(present))

        n_items = result["n_items"]
        n_present = result["n_images_present"]
        if missing:
            result["message"] = f"Missing metadata files in {folder}: {', '.join(missing)}."
        elif n_present == n_items:
            result["message"] = f"All {n_items:,} listed images present in {folder}."
        elif n_present == 0:
            result["message"] = (
                f"No listed image found in {', '.join(str(folder / s) for s in subfolders)}, "
                "only the metadata is present."
            )
        else:
            result["message"] = (
                f"{n_present:,} of {n_items:,} listed images present in {folder}. The standard "
                "protocol runs on them with --allow-partial."
            )
        return result
