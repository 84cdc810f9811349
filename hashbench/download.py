"""Checksummed, resumable HTTP downloads, and the fetcher for torchvision's VGG-16 weights.

Nothing in hashbench downloads on its own: these functions run only when a user calls them.
A download streams into ``<destination>.part``, resumes that file with an HTTP ``Range``
request when it exists, verifies the SHA-256 and only then renames it to ``destination``.
"""

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

__all__ = [
    "ChecksumMismatchError",
    "DownloadError",
    "VGG16_FILE_NAME",
    "VGG16_SHA256_PREFIX",
    "VGG16_URL",
    "download",
    "fetch_vgg16_weights",
    "sha256_file",
]

#: torchvision's ImageNet VGG-16 weights (``VGG16_Weights.IMAGENET1K_V1``). As in every
#: torchvision weights file, the hex digits after the dash are the start of the file's SHA-256.
VGG16_FILE_NAME = "vgg16-397923af.pth"
VGG16_SHA256_PREFIX = "397923af"
VGG16_BASE_URL = "https://download.pytorch.org/models/"
VGG16_URL = VGG16_BASE_URL + VGG16_FILE_NAME

_CHUNK_BYTES = 1 << 20
_HEX = re.compile(r"[0-9a-f]+")


class DownloadError(OSError):
    """A download failed: HTTP error, connection failure, timeout or incomplete transfer."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes do not have the expected SHA-256."""


def sha256_file(path):
    """Compute the SHA-256 of a file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        Lowercase hexadecimal digest, 64 characters.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def download(url, destination, *, sha256=None, sha256_prefix=None, progress=NULL_PROGRESS, timeout=60):
    """Download ``url`` to ``destination``, resuming a partial file and verifying its SHA-256.

    The bytes go to ``<destination>.part``. When that file exists from an interrupted call, the
    request sets ``Range: bytes=<size>-`` to fetch only the remaining bytes. If the server ignores
    the header and sends the whole file (status 200), the download restarts from the first byte.
    The ``.part`` file is
    renamed to ``destination`` only after the checksum matches, so ``destination`` is never a
    partial or unverified file. A ``destination`` that already exists and matches the checksum is
    returned without any request. One that does not match is downloaded again.

    Parameters
    ----------
    url : str
        An ``http://`` or ``https://`` URL.
    destination : str or path-like
        Final file path. Its folder is created when missing.
    sha256 : str, optional
        Expected full SHA-256, 64 hexadecimal digits.
    sha256_prefix : str, optional
        Expected start of the SHA-256, as in torchvision file names (``vgg16-397923af.pth``).
        When both are given, both must hold. When neither is given, nothing is verified.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
        Advanced by the number of bytes received; the total is the file size when the server
        sends it.
    timeout : float, default=60
        Seconds to wait for the connection and for each read.

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    ChecksumMismatchError
        The downloaded file has another SHA-256. The ``.part`` file is deleted.
    DownloadError
        HTTP error status, connection failure, timeout, or a transfer that ended early. A partial
        ``.part`` file is kept so that the next call resumes it.
    ValueError
        Invalid ``url``, ``sha256``, ``sha256_prefix`` or ``timeout``.
    """
    _validate_url(url)
    sha256 = _validate_hex("sha256", sha256, exact_length=64)
    sha256_prefix = _validate_hex("sha256_prefix", sha256_prefix)
    if sha256 is not None and sha256_prefix is not None and not sha256.startswith(sha256_prefix):
        raise ValueError(
            f"sha256={sha256!r} does not start with sha256_prefix={sha256_prefix!r}. Pass only the "
            "correct one."
        )
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")

    destination = Path(destination)
    verify = sha256 is not None or sha256_prefix is not None
    if destination.is_file():
        if not verify:
            logger.info("%s exists and no checksum was given, so %s is not downloaded", destination, url)
            return destination
        actual = sha256_file(destination)
        if _matches(actual, sha256, sha256_prefix):
            logger.info("%s exists with the expected SHA-256, so %s is not downloaded", destination, url)
            return destination
        logger.warning(
            "%s exists but its SHA-256 is %s, expected %s. Downloading %s again",
            destination, actual, sha256 or sha256_prefix + "...", url,
        )

    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    start = time.perf_counter()
    digest, n_bytes = _fetch_to_part(url, part, progress=progress, timeout=timeout)
    actual = digest.hexdigest()
    seconds = time.perf_counter() - start

    if verify and not _matches(actual, sha256, sha256_prefix):
        part.unlink(missing_ok=True)
        expected = sha256 if sha256 is not None else f"{sha256_prefix}... (prefix)"
        raise ChecksumMismatchError(
            f"Checksum mismatch for {url}: expected SHA-256 {expected}, got {actual}. The partial "
            f"file {part} was deleted. Check the URL. If it is right, the server sent different bytes."
        )
    os.replace(part, destination)
    logger.info("Downloaded %s to %s (%d bytes, %.1f s, SHA-256 %s)", url, destination, n_bytes, seconds, actual)
    return destination


def fetch_vgg16_weights(directory, progress=NULL_PROGRESS, *, base_url=VGG16_BASE_URL, timeout=60):
    """Download torchvision's ImageNet VGG-16 weights into ``directory``.

    Fetches ``vgg16-397923af.pth`` (528 MB, ``VGG16_Weights.IMAGENET1K_V1``) from
    https://download.pytorch.org/models/ and checks that its SHA-256 starts with ``397923af``, as
    torchvision does. Pass the returned path as ``weights_path`` of the ``vgg16`` backbone or set
    ``HASHBENCH_VGG16_WEIGHTS`` to it.

    Parameters
    ----------
    directory : str or path-like
        Folder to write ``vgg16-397923af.pth`` to; created when missing.
    progress : hashbench.progress.Progress, default=NULL_PROGRESS
    base_url : str, default="https://download.pytorch.org/models/"
        URL of the folder that serves the file, for mirrors.
    timeout : float, default=60
        Seconds to wait for the connection and for each read.

    Returns
    -------
    pathlib.Path
        Path of the verified weights file.
    """
    url = base_url if base_url.endswith("/") else base_url + "/"
    url += VGG16_FILE_NAME
    return download(
        url, Path(directory) / VGG16_FILE_NAME, sha256_prefix=VGG16_SHA256_PREFIX, progress=progress,
        timeout=timeout,
    )


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _validate_url(url):
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__}")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")


def _validate_hex(name, value, exact_length=None):
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str of hexadecimal digits, got {type(value).__name__}")
    value = value.lower()
    if not _HEX.fullmatch(value) or len(value) > 64 or (exact_length is not None and len(value) != exact_length):
        length = f"{exact_length}" if exact_length else "1 to 64"
        raise ValueError(f"{name} must be {length} hexadecimal digits, got {value!r}")
    return value


def _matches(actual, sha256, sha256_prefix):
    if sha256 is not None and actual != sha256:
        return False
    return sha256_prefix is None or actual.startswith(sha256_prefix)


def _fetch_to_part(url, part, *, progress, timeout):
    """Append the missing bytes of ``url`` to ``part`` and return its SHA-256 object and size."""
    offset = part.stat().st_size if part.is_file() else 0
    digest = hashlib.sha256()
    if offset:
        with open(part, "rb") as file:
            while chunk := file.read(_CHUNK_BYTES):
                digest.update(chunk)

    response = _open(url, offset, timeout)
    if response is None:
        # 416 Range Not Satisfiable: the part file already contains every byte, or more bytes
        # than the resource has. The checksum decides, and a mismatch deletes the part file.
        logger.info("HTTP 416 for %s from byte %d, so %s may be complete. Verifying it", url, offset, part)
        return digest, offset

    with response:
        if offset and response.status == 206:
            _check_content_range(url, response, offset)
            mode = "ab"
            logger.info("Resuming %s at byte %d", url, offset)
        else:
            if offset:
                logger.info("Server ignored the Range header for %s, so the download restarts from byte 0", url)
            offset = 0
            digest = hashlib.sha256()
            mode = "wb"

        length = response.headers.get("Content-Length")
        expected_total = offset + int(length) if length is not None and length.isdigit() else None
        received = offset
        description = f"Downloading {part.name.removesuffix('.part')}"
        with open(part, mode) as file, progress.task(description, total=expected_total) as advance:
            advance(offset)
            while True:
                try:
                    chunk = response.read(_CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as exc:
                    raise DownloadError(
                        f"Download of {url} failed after {received} bytes: {exc}. The partial file "
                        f"{part} is kept. Run the download again to resume it."
                    ) from exc
                if not chunk:
                    break
                file.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                advance(len(chunk))
            file.flush()
            os.fsync(file.fileno())

    if expected_total is not None and received != expected_total:
        raise DownloadError(
            f"Download of {url} ended after {received} of {expected_total} bytes. The partial file "
            f"{part} is kept. Run the download again to resume it."
        )
    return digest, received


def _open(url, offset, timeout):
    """Send the request and return the response, or None when a Range request gets HTTP 416."""
    request = urllib.request.Request(url, headers={"User-Agent": "hashbench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise DownloadError(f"Download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            failure = f"timed out: no response within {timeout} s"
        else:
            failure = f"cannot connect ({reason})"
        raise DownloadError(f"Download of {url} failed: {failure}. Check the URL and the network.") from exc


def _check_content_range(url, response, offset):
    content_range = response.headers.get("Content-Range", "")
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range.strip())
    if match is None or int(match.group(1)) != offset:
        raise DownloadError(
            f"Download of {url} failed: asked for bytes from {offset}, but the server sent "
            f"Content-Range {content_range!r}. Delete the partial file and download again."
        )
