"""Derive the 20,015-image MIRFlickr-25K subset from the official MIRFlickr archives.

The official distribution (press.liacs.nl/mirflickr) has two archives:

- ``mirflickr25k.zip``: ``mirflickr/imN.jpg`` for N = 1 ... 25,000 and the user tags of each
  image in ``mirflickr/meta/tags/tagsN.txt``, one tag a line.
- ``mirflickr25k_annotations_v080.zip``: one file ``<concept>.txt`` per concept, listing the
  numbers N of the images annotated with it, one a line. Files ``<concept>_r1.txt`` (the
  stricter "relevant" annotation) and ``README.txt`` are not used.

The subset that cross-modal and social-image hashing papers use, following DCMH (Jiang and Li,
CVPR 2017), is derived by this rule:

1. The tag vocabulary is every tag that occurs in at least 20 of the 25,000 images.
2. An image is kept when it has at least one of the 24 concept labels and at least one
   vocabulary tag.

The vocabulary is counted over all 25,000 images: in the published 20,015-image files 22 of
the 1,386 vocabulary tags occur in fewer than 20 kept images, which only a count over the
whole collection explains. The vocabulary here is ordered by descending count, ties
alphabetically. The published ``TagList.txt`` appears ordered by count as well, but its exact
order is not documented, so ``compare_with_release`` compares the vocabularies as sets.
"""

import logging
import re
import threading
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from PIL import Image

from hashbench.data.dataset import DatasetError

logger = logging.getLogger(__name__)

IMAGES_ARCHIVE = "mirflickr25k.zip"
ANNOTATIONS_ARCHIVE = "mirflickr25k_annotations_v080.zip"
N_IMAGES = 25000
MIN_TAG_COUNT = 20

_TAG_MEMBER = re.compile(r"(?:.*/)?meta/tags/tags([0-9]+)\.txt")
_IMAGE_MEMBER = re.compile(r"(?:.*/)?im([0-9]+)\.jpg")


@dataclass
class DerivedSubset:
    """The subset derived from the official archives.

    Attributes
    ----------
    ids : ndarray of shape (n_items,), dtype int64
        Image numbers N of the kept images, ascending.
    labels : ndarray of shape (n_items, n_labels), dtype uint8
    tags : scipy.sparse.csr_matrix of shape (n_items, n_tags), dtype float32
    vocabulary : list of str of length n_tags
    image_members : dict of int to str
        Archive member of each image number found in the images archive.
    """

    ids: np.ndarray
    labels: np.ndarray
    tags: sp.csr_matrix
    vocabulary: list
    image_members: dict


class ZipMemberImage:
    """A JPEG inside a zip archive, decoded on request without extracting the archive.

    Open archives are cached per path and read under a lock, because ``zipfile.ZipFile`` is not
    safe for concurrent reads.
    """

    __slots__ = ("archive", "member")
    _open_archives = {}
    _lock = threading.Lock()

    def __init__(self, archive, member):
        self.archive = Path(archive)
        self.member = member

    def open_rgb(self):
        """Decode the member and return it as an RGB ``PIL.Image.Image``."""
        with self._lock:
            handle = self._open_archives.get(self.archive)
            if handle is None:
                handle = self._open_archives[self.archive] = zipfile.ZipFile(self.archive)
            with handle.open(self.member) as file, Image.open(file) as opened:
                return opened.convert("RGB")

    def __repr__(self):
        return f"ZipMemberImage({str(self.archive)!r}, {self.member!r})"

    def __str__(self):
        return f"{self.archive.name}:{self.member}"


def _open_zip(path):
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"{path} is not a readable zip archive ({error}). Download it again.") from None


def read_annotations(path, label_names, n_images=N_IMAGES):
    """Read the concept files of the annotation archive into a (n_images, n_labels) uint8 matrix.

    Row N - 1 belongs to image N.
    """
    labels = np.zeros((n_images, len(label_names)), dtype=np.uint8)
    with _open_zip(path) as archive:
        members = {Path(name).name: name for name in archive.namelist()}
        for column, concept in enumerate(label_names):
            member = members.get(f"{concept}.txt")
            if member is None:
                raise DatasetError(
                    f"{path} has no member {concept}.txt, so it is not the MIRFlickr-25K annotation "
                    f"archive ({ANNOTATIONS_ARCHIVE}). Download it again."
                )
            text = archive.read(member).decode("utf-8-sig")
            for number, line in enumerate(text.splitlines(), start=1):
                line = line.strip()
                if not line:
                    continue
                if not line.isdigit() or not 1 <= int(line) <= n_images:
                    raise DatasetError(
                        f"{path}:{member} line {number}: expected an image number from 1 to "
                        f"{n_images:,}, got {line!r}."
                    )
                labels[int(line) - 1, column] = 1
    return labels


def read_tags(path, n_images=N_IMAGES):
    """Read the tags of every image and the archive member of every image file.

    Returns
    -------
    tags : list of list of str
        Entry N - 1 lists the distinct tags of image N, in file order.
    image_members : dict of int to str
    """
    tags = [None] * n_images
    image_members = {}
    with _open_zip(path) as archive:
        for info in archive.infolist():
            match = _TAG_MEMBER.fullmatch(info.filename)
            if match and 1 <= int(match.group(1)) <= n_images:
                text = archive.read(info).decode("utf-8", errors="replace")
                seen = dict.fromkeys(tag.strip() for tag in text.splitlines() if tag.strip())
                tags[int(match.group(1)) - 1] = list(seen)
                continue
            match = _IMAGE_MEMBER.fullmatch(info.filename)
            if match and "/meta/" not in info.filename and 1 <= int(match.group(1)) <= n_images:
                image_members[int(match.group(1))] = info.filename
    missing = [number for number, entry in enumerate(tags, start=1) if entry is None]
    if missing:
        raise DatasetError(
            f"{path} lacks the tag files of {len(missing):,} of {n_images:,} images (first: "
            f"meta/tags/tags{missing[0]}.txt), so it is not the complete {IMAGES_ARCHIVE}. "
            "Download it again."
        )
    return tags, image_members


def derive_subset(labels, tags, min_count=MIN_TAG_COUNT):
    """Apply the DCMH rule: vocabulary of tags in at least ``min_count`` images, then keep the
    images with at least one label and at least one vocabulary tag.

    Parameters
    ----------
    labels : ndarray of shape (n_images, n_labels), dtype uint8
        Row N - 1 belongs to image N.
    tags : list of list of str
        Distinct tags of each image, same order.
    min_count : int, default=20

    Returns
    -------
    ids : ndarray of shape (n_items,), dtype int64
    labels : ndarray of shape (n_items, n_labels), dtype uint8
    tags : scipy.sparse.csr_matrix of shape (n_items, n_tags), dtype float32
    vocabulary : list of str
    """
    counts = Counter(tag for image_tags in tags for tag in image_tags)
    vocabulary = sorted((tag for tag, count in counts.items() if count >= min_count), key=lambda tag: (-counts[tag], tag))
    column_of = {tag: column for column, tag in enumerate(vocabulary)}

    ids, indptr, indices = [], [0], []
    for row, image_tags in enumerate(tags):
        columns = sorted({column_of[tag] for tag in image_tags if tag in column_of})
        if columns and labels[row].any():
            ids.append(row + 1)
            indices.extend(columns)
            indptr.append(len(indices))
    ids = np.asarray(ids, dtype=np.int64)
    matrix = sp.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), np.asarray(indices, dtype=np.int32), np.asarray(indptr, dtype=np.int64)),
        shape=(len(ids), len(vocabulary)),
    )
    return ids, labels[ids - 1], matrix, vocabulary


def archives_present(folder):
    """Return whether both official archives are in ``folder``."""
    return (folder / IMAGES_ARCHIVE).is_file() and (folder / ANNOTATIONS_ARCHIVE).is_file()


def derive_from_archives(folder, label_names, n_images=N_IMAGES):
    """Read both official archives in ``folder`` and derive the subset.

    Returns
    -------
    DerivedSubset
    """
    labels = read_annotations(folder / ANNOTATIONS_ARCHIVE, label_names, n_images)
    tags, image_members = read_tags(folder / IMAGES_ARCHIVE, n_images)
    ids, kept_labels, matrix, vocabulary = derive_subset(labels, tags)
    logger.info(
        "Derived %d images and %d vocabulary tags from %s and %s",
        len(ids), len(vocabulary), IMAGES_ARCHIVE, ANNOTATIONS_ARCHIVE,
    )
    return DerivedSubset(ids=ids, labels=kept_labels, tags=matrix, vocabulary=vocabulary, image_members=image_members)


def compare_with_release(derived, dataset):
    """Compare a derived subset with a dataset loaded from the published metadata files.

    Returns
    -------
    list of (bool, str)
        One (matches, message) pair per aspect: image list, vocabulary, labels, tags.
    """
    results = []
    missing = np.setdiff1d(dataset.ids, derived.ids)
    extra = np.setdiff1d(derived.ids, dataset.ids)
    same_ids = not len(missing) and not len(extra)
    results.append((
        same_ids,
        f"image list: derived {len(derived.ids):,} images, release lists {dataset.n_items:,}; "
        f"{len(missing):,} only in the release, {len(extra):,} only derived"
        + (f" (first only in the release: im{missing[0]}.jpg)" if len(missing) else "")
        + (f" (first only derived: im{extra[0]}.jpg)" if len(extra) else "") + ".",
    ))

    release_vocabulary, derived_vocabulary = set(dataset.tag_vocabulary), set(derived.vocabulary)
    results.append((
        release_vocabulary == derived_vocabulary,
        f"vocabulary: derived {len(derived_vocabulary):,} tags, release has {len(release_vocabulary):,}; "
        f"{len(release_vocabulary - derived_vocabulary):,} only in the release, "
        f"{len(derived_vocabulary - release_vocabulary):,} only derived.",
    ))

    common, release_rows, derived_rows = np.intersect1d(dataset.ids, derived.ids, return_indices=True)
    differing = np.flatnonzero(np.any(dataset.labels[release_rows] != derived.labels[derived_rows], axis=1))
    results.append((
        len(differing) == 0,
        f"labels: {len(differing):,} of the {len(common):,} common images have different labels"
        + (f" (first: im{common[differing[0]]}.jpg)" if len(differing) else "") + ".",
    ))

    # Compare on the tags both vocabularies contain, so a vocabulary difference is counted once.
    in_both = release_vocabulary & derived_vocabulary
    n_tag_differences = 0
    first = None
    for release_row, derived_row, image_id in zip(release_rows, derived_rows, common):
        release_tags = {dataset.tag_vocabulary[column] for column in dataset.tags[release_row].indices}
        derived_tags = {derived.vocabulary[column] for column in derived.tags[derived_row].indices}
        if release_tags & in_both != derived_tags & in_both:
            n_tag_differences += 1
            first = first or image_id
    results.append((
        n_tag_differences == 0,
        f"tags: {n_tag_differences:,} of the {len(common):,} common images have different tags"
        + (f" (first: im{first}.jpg)" if first is not None else "") + ".",
    ))
    return results
