"""Check a dataset on disk against its definition: files, checksums, counts and split hashes.

``verify_dataset`` returns one ``Finding`` per check, so a command line can print each on its
own line and exit with a non-zero status when any check failed.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from hashbench.data.dataset import (
    DatasetError,
    _get_loader_class,
    load_definition,
    read_metadata_file,
    resolve_dataset_folder,
)
from hashbench.data.protocol import load_split
from hashbench.download import sha256_file

logger = logging.getLogger(__name__)

#: Finding levels. Only "fail" makes a verification fail.
LEVELS = ("ok", "warn", "skip", "fail")


@dataclass(frozen=True)
class Finding:
    """The result of one check.

    Attributes
    ----------
    level : str
        ``"ok"``, ``"warn"`` (usable, but differs from the published dataset, for example missing
        images), ``"skip"`` (not checked, for example an archive that is not downloaded) or
        ``"fail"``.
    topic : str
        What was checked: ``"definition"``, ``"folder"``, ``"file"``, ``"download"``,
        ``"counts"``, ``"protocol"`` or a dataset-specific topic such as ``"derivation"``.
    message : str
        One line that names the file or protocol and the expected and found values.
    """

    level: str
    topic: str
    message: str

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}.")

    def format(self):
        """Return the finding as one line, ``LEVEL  topic  message``."""
        return f"{self.level.upper():<4}  {self.topic:<10}  {self.message}"


def failed(findings):
    """Return whether any finding has level ``"fail"``."""
    return any(finding.level == "fail" for finding in findings)


def _check_metadata_files(definition, folder):
    findings = []
    for role, entry in definition["files"].items():
        try:
            read_metadata_file(folder, entry)
        except DatasetError as error:
            findings.append(Finding("fail", "file", str(error)))
        else:
            findings.append(Finding("ok", "file", f"{folder / entry['path']}: SHA-256 {entry['sha256']} matches ({role})."))
    return findings


def _check_downloads(definition, folder):
    findings = []
    for name, entry in definition.get("downloads", {}).items():
        path = folder / entry["file"]
        if not path.is_file():
            findings.append(Finding("skip", "download", f"{path} is not present, so its checksum is not checked ({name})."))
            continue
        if "size" in entry and path.stat().st_size != entry["size"]:
            findings.append(Finding(
                "fail", "download",
                f"{path} has {path.stat().st_size:,} bytes, expected {entry['size']:,}. Download it again.",
            ))
            continue
        actual = sha256_file(path)
        if "sha256" not in entry:
            findings.append(Finding(
                "warn", "download",
                f"{path} has SHA-256 {actual}; the definition pins no checksum for it, so it is not verified.",
            ))
        elif actual != entry["sha256"]:
            findings.append(Finding(
                "fail", "download", f"{path} has SHA-256 {actual}, expected {entry['sha256']}. Download it again."
            ))
        else:
            findings.append(Finding("ok", "download", f"{path}: SHA-256 {actual} matches."))
    return findings


def _check_protocols(dataset):
    findings = []
    for name, recipe in sorted(dataset.definition["protocols"].items()):
        try:
            split = load_split(dataset, name, allow_partial=True)
        except (DatasetError, ValueError) as error:
            findings.append(Finding("fail", "protocol", f"{name}: {error}"))
            continue
        counts = f"{len(split.query):,} queries, {len(split.database):,} database, {len(split.train):,} training items"
        origin = split.protocol_file if Path(split.protocol_file).exists() else "generated from its seed"
        if split.partial:
            findings.append(Finding(
                "warn", "protocol",
                f"{name} v{split.version}: split hash {split.split_hash} verified ({origin}), but only "
                f"{split.n_present:,} of {split.n_listed:,} images are present, so runs need "
                f"--allow-partial ({counts} present).",
            ))
        else:
            findings.append(Finding("ok", "protocol", f"{name} v{split.version}: split hash {split.split_hash} verified ({origin}, {counts})."))
    return findings


def verify_dataset(name, data_root=None, *, datasets_dir=None):
    """Check every file, checksum, count and protocol of a dataset.

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
    list of Finding
        In the order: definition, folder, metadata files, downloaded archives, counts (by loading
        the dataset), dataset-specific checks, protocols. Checks that need the loaded dataset are
        left out when loading fails.

    Raises
    ------
    ValueError
        If ``name`` is not a registered dataset.
    """
    loader_class = _get_loader_class(name)
    try:
        definition, definition_path = load_definition(name, datasets_dir=datasets_dir)
    except (ValueError, FileNotFoundError) as error:
        return [Finding("fail", "definition", str(error))]
    findings = [Finding("ok", "definition", f"{definition_path} is valid.")]

    try:
        folder = resolve_dataset_folder(data_root, definition["folder"])
    except DatasetError as error:
        return findings + [Finding("fail", "folder", str(error))]
    if not folder.is_dir():
        return findings + [Finding(
            "fail", "folder",
            f"Dataset folder {folder} does not exist. Run `hashbench datasets download {name}` or copy the files there.",
        )]
    findings.append(Finding("ok", "folder", f"{folder} exists."))

    findings += _check_metadata_files(definition, folder)
    findings += _check_downloads(definition, folder)
    if failed(findings):
        return findings

    loader = loader_class(definition, definition_path)
    try:
        dataset = loader.load(data_root)
    except (DatasetError, ValueError) as error:
        return findings + [Finding("fail", "counts", str(error))]
    counts = ", ".join(f"{key} = {value:,}" for key, value in definition["counts"].items())
    findings.append(Finding(
        "ok", "counts",
        f"{dataset.n_items:,} items loaded ({dataset.source or folder}), {dataset.n_present:,} images present; {counts} as defined.",
    ))

    extra = getattr(loader, "verify_extra", None)
    if extra is not None:
        findings += extra(dataset, folder)
    findings += _check_protocols(dataset)
    return findings
