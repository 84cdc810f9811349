"""Tests of hashbench.download against a real HTTP server on 127.0.0.1."""

import hashlib
import http.server
import re
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

import hashbench.download
from hashbench.download import (
    ChecksumMismatchError,
    DownloadError,
    download,
    fetch_vgg16_weights,
    sha256_file,
)
from hashbench.progress import Progress

PAYLOAD = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _FileServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes) and records every request's path and Range header."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = {}
        self.requests = []
        self.honour_range = True
        self.cut_after = None  # send only this many body bytes, then close the connection
        self.delay = 0.0

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        time.sleep(server.delay)
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return

        status, first = 200, 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.honour_range:
            first = int(match.group(1))
            if first >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206

        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - first))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        sent = body[first:] if server.cut_after is None else body[first:first + server.cut_after]
        self.wfile.write(sent)
        if server.cut_after is not None:
            self.close_connection = True

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server():
    server = _FileServer()
    server.files["/data.bin"] = PAYLOAD
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class _CountingProgress(Progress):
    def __init__(self):
        self.totals = []
        self.advanced = 0

    @contextmanager
    def task(self, description, total=None):
        self.totals.append(total)

        def advance(count=1):
            self.advanced += count

        yield advance


def test_download_full_file(server, tmp_path):
    destination = tmp_path / "sub" / "data.bin"

    result = download(f"{server.base_url}/data.bin", destination, sha256=PAYLOAD_SHA256)

    assert result == destination
    assert destination.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.bin.part").exists()


def test_download_without_checksum(server, tmp_path):
    destination = download(f"{server.base_url}/data.bin", tmp_path / "data.bin")

    assert destination.read_bytes() == PAYLOAD


def test_download_reports_progress_total(server, tmp_path):
    progress = _CountingProgress()

    download(f"{server.base_url}/data.bin", tmp_path / "data.bin", progress=progress)

    assert progress.totals == [len(PAYLOAD)]
    assert progress.advanced == len(PAYLOAD)


def test_download_resumes_part_file_with_range(server, tmp_path):
    destination = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:100_000])

    download(f"{server.base_url}/data.bin", destination, sha256=PAYLOAD_SHA256)

    assert destination.read_bytes() == PAYLOAD
    assert server.requests == [("/data.bin", "bytes=100000-")]


def test_download_restarts_when_server_ignores_range(server, tmp_path):
    server.honour_range = False
    destination = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)

    download(f"{server.base_url}/data.bin", destination, sha256=PAYLOAD_SHA256)

    assert destination.read_bytes() == PAYLOAD


def test_download_interrupted_then_resumed(server, tmp_path):
    destination = tmp_path / "data.bin"
    part = tmp_path / "data.bin.part"
    server.cut_after = 120_000

    with pytest.raises(DownloadError, match=r"ended after 120000 of 300000 bytes.*Run the download again"):
        download(f"{server.base_url}/data.bin", destination, sha256=PAYLOAD_SHA256)
    assert part.stat().st_size == 120_000
    assert not destination.exists()

    server.cut_after = None
    download(f"{server.base_url}/data.bin", destination, sha256=PAYLOAD_SHA256)
    assert destination.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/data.bin", "bytes=120000-")


def test_download_complete_part_file_gets_416(server, tmp_path):
    destination = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)

    download(f"{server.base_url}/data.bin", destination, sha256=PAYLOAD_SHA256)

    assert destination.read_bytes() == PAYLOAD


def test_download_checksum_mismatch_deletes_part(server, tmp_path):
    destination = tmp_path / "data.bin"
    wrong = "0" * 64
    url = f"{server.base_url}/data.bin"

    with pytest.raises(ChecksumMismatchError) as error:
        download(url, destination, sha256=wrong)

    message = str(error.value)
    assert url in message
    assert wrong in message
    assert PAYLOAD_SHA256 in message
    assert not destination.exists()
    assert not (tmp_path / "data.bin.part").exists()


def test_download_prefix_mismatch_names_prefix(server, tmp_path):
    wrong_prefix = "ffffffff" if not PAYLOAD_SHA256.startswith("ffffffff") else "00000000"

    with pytest.raises(ChecksumMismatchError, match=f"expected SHA-256 {wrong_prefix}"):
        download(f"{server.base_url}/data.bin", tmp_path / "data.bin", sha256_prefix=wrong_prefix)


def test_download_prefix_match(server, tmp_path):
    destination = download(f"{server.base_url}/data.bin", tmp_path / "data.bin", sha256_prefix=PAYLOAD_SHA256[:8])

    assert sha256_file(destination) == PAYLOAD_SHA256


def test_download_404_names_url(server, tmp_path):
    url = f"{server.base_url}/missing.bin"

    with pytest.raises(DownloadError, match=re.escape(url) + r".*HTTP 404"):
        download(url, tmp_path / "missing.bin")
    assert not (tmp_path / "missing.bin").exists()


def test_download_connection_refused_names_url(tmp_path):
    # Bind and close a socket to get a port that nothing listens on.
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    url = f"http://127.0.0.1:{port}/data.bin"

    with pytest.raises(DownloadError, match=re.escape(url) + ".*cannot connect"):
        download(url, tmp_path / "data.bin", timeout=5)


def test_download_timeout_names_url(server, tmp_path):
    server.delay = 2.0
    url = f"{server.base_url}/data.bin"

    with pytest.raises(DownloadError, match=re.escape(url) + ".*timed out"):
        download(url, tmp_path / "data.bin", timeout=0.3)


def test_download_existing_valid_file_is_kept(server, tmp_path):
    destination = tmp_path / "data.bin"
    destination.write_bytes(PAYLOAD)

    download(f"{server.base_url}/data.bin", destination, sha256=PAYLOAD_SHA256)

    assert server.requests == []


def test_download_existing_invalid_file_is_replaced(server, tmp_path):
    destination = tmp_path / "data.bin"
    destination.write_bytes(b"stale")

    download(f"{server.base_url}/data.bin", destination, sha256=PAYLOAD_SHA256)

    assert destination.read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"url": "ftp://example.org/x"}, ValueError, "must start with http"),
        ({"url": 42}, TypeError, "url must be a str"),
        ({"sha256": "abc"}, ValueError, "sha256 must be 64 hexadecimal digits"),
        ({"sha256_prefix": "xyz"}, ValueError, "sha256_prefix must be 1 to 64 hexadecimal digits"),
        ({"sha256": "a" * 64, "sha256_prefix": "b"}, ValueError, "does not start with sha256_prefix"),
        ({"timeout": 0}, ValueError, "timeout must be a positive number"),
    ],
    ids=["scheme", "url-type", "sha256-length", "prefix-hex", "inconsistent", "timeout"],
)
def test_download_rejects_invalid_arguments(tmp_path, arguments, error, message):
    arguments = {"url": "http://127.0.0.1:9/x", **arguments}
    url = arguments.pop("url")

    with pytest.raises(error, match=message):
        download(url, tmp_path / "x", **arguments)


def test_fetch_vgg16_weights_requests_official_name(server, tmp_path, monkeypatch):
    server.files["/models/vgg16-397923af.pth"] = PAYLOAD
    # No small file has a SHA-256 starting with 397923af, so the served bytes stand in for it.
    monkeypatch.setattr(hashbench.download, "VGG16_SHA256_PREFIX", PAYLOAD_SHA256[:8])

    path = fetch_vgg16_weights(tmp_path, base_url=f"{server.base_url}/models")

    assert path == tmp_path / "vgg16-397923af.pth"
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [("/models/vgg16-397923af.pth", None)]


def test_fetch_vgg16_weights_rejects_wrong_file(server, tmp_path):
    server.files["/models/vgg16-397923af.pth"] = PAYLOAD

    with pytest.raises(ChecksumMismatchError, match="expected SHA-256 397923af"):
        fetch_vgg16_weights(tmp_path, base_url=f"{server.base_url}/models/")
    assert list(tmp_path.iterdir()) == []
