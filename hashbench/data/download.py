"""Download a dataset's official archives into its folder under the data root.

The ``[downloads.<name>]`` tables of ``datasets/<dataset>.toml`` list each archive's official URL,
file name and SHA-256. Downloads resume an interrupted ``.part`` file and are renamed into place
only after the checksum matches (see ``hashbench.download.download``). An archive whose
definition pins no SHA-256 is downloaded, and its computed SHA-256 is reported so that a user
can compare it with a trusted value.
"""

import logging
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from hashbench.data.dataset import load_definition
from hashbench.download import download, sha256_file
from hashbench.paths import default_data_root
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadedFile:
    """One archive after ``download_dataset``.

    Attributes
    ----------
    name : str
        Key of its ``[downloads.<name>]`` table.
    url : str
        The URL it was fetched from, or would have been when it was present already.
    path : pathlib.Path
        The file under the dataset folder.
    sha256 : str
        Its SHA-256.
    verified : bool
        Whether the definition pins a SHA-256 and the file matches it.
    """

    name: str
    url: str
    path: Path
    sha256: str
    verified: bool


def archive_url(entry, base_url=None):
    """Return the URL of one ``[downloads]`` entry, on ``base_url`` when it is given.

    With ``base_url`` the file name of the official URL is appended to it, so a mirror that serves
    the official file names replaces the official host.
    """
    if base_url is None:
        return entry["url"]
    file_name = Path(urllib.parse.urlsplit(entry["url"]).path).name
    return base_url.rstrip("/") + "/" + file_name


def download_dataset(name, data_root=None, *, base_url=None, progress=NULL_PROGRESS, timeout=60, datasets_dir=None):
    """Download every archive that the definition of dataset ``name`` lists.

    Parameters
    ----------
    name : str
        Registered dataset name.
    data_root : path-like, optional
        Folder that contains the dataset folder, created when missing. Defaults to
        ``$HASHBENCH_DATA``, else ``./data``.
    base_url : str, optional
        Folder URL of a mirror that serves the official file names, instead of the official
        hosts.
    progress : hashbench.progress.Progress, optional
        Receives one task per archive, advanced by bytes.
    timeout : float, default=60
        Seconds to wait for the connection and for each read.
    datasets_dir : path-like, optional
        Folder of definition files, by default ``datasets/`` in the repository.

    Returns
    -------
    list of DownloadedFile

    Raises
    ------
    ValueError
        If the dataset is unknown or its definition lists no download.
    hashbench.download.DownloadError
        If a transfer fails or a checksum differs. A partial file is kept for resuming, except
        after a checksum mismatch.
    """
    definition, definition_path = load_definition(name, datasets_dir=datasets_dir)
    entries = definition.get("downloads", {})
    if not entries:
        raise ValueError(
            f"Dataset {name!r} has no [downloads] in {definition_path}: its files cannot be "
            "downloaded by hashbench. Its definition file describes where they come from."
        )
    root = Path(data_root) if data_root is not None else default_data_root()
    folder = root / definition["folder"]

    results = []
    for key, entry in entries.items():
        url = archive_url(entry, base_url)
        destination = folder / entry["file"]
        expected = entry.get("sha256")
        logger.info("Fetching %s (%s) to %s", key, url, destination)
        path = download(url, destination, sha256=expected, progress=progress, timeout=timeout)
        actual = expected if expected is not None else sha256_file(path)
        if expected is None:
            logger.warning(
                "%s has SHA-256 %s, but %s pins no checksum for it, so it is not verified",
                path, actual, definition_path,
            )
        results.append(DownloadedFile(name=key, url=url, path=path, sha256=actual, verified=expected is not None))
    return results
