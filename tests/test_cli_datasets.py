"""``hashbench datasets`` list, verify and download, with a local HTTP server for downloads."""

import hashlib
import http.server
import pickle
import re
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import hashbench.data.dataset as dataset_module
from hashbench.cli_datasets import datasets_app
from hashbench.paths import DATASETS_DIR

OFFICIAL_CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


def _flat(result):
    return " ".join(result.output.split())


# --------------------------------------------------------------------------------------------
# A local server that serves a folder and honours Range requests
# --------------------------------------------------------------------------------------------


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serve files from ``directory`` and respond to ``Range: bytes=N-`` with status 206."""

    range_requests = []

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            type(self).range_requests.append((self.path, start))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    _RangeHandler.range_requests = []

    def handler(*args, **kwargs):
        return _RangeHandler(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/files"
    httpd.shutdown()
    httpd.server_close()


def _small_python_release(path):
    """Write a tar.gz with the python release's member names and tiny batches."""
    staging = path.parent / "staging" / "cifar-10-batches-py"
    staging.mkdir(parents=True)
    batch = {b"labels": [0], b"data": np.zeros((1, 3072), dtype=np.uint8)}
    for name in [f"data_batch_{n}" for n in range(1, 6)] + ["test_batch"]:
        (staging / name).write_bytes(pickle.dumps(batch))
    (staging / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"]}))
    with tarfile.open(path, "w:gz") as archive:
        archive.add(staging, arcname="cifar-10-batches-py")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _definitions_with_sha256(tmp_path, sha256, size):
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    text = (DATASETS_DIR / "cifar10.toml").read_text(encoding="utf-8")
    text = text.replace(OFFICIAL_CIFAR10_SHA256, sha256).replace("size = 170498071", f"size = {size}")
    (definitions / "cifar10.toml").write_text(text, encoding="utf-8")
    shutil.copytree(DATASETS_DIR / "cifar10", definitions / "cifar10")
    return definitions


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------


def test_list_reports_both_datasets(data_root):
    result = CliRunner().invoke(datasets_app, ["--data-root", str(data_root)])

    assert result.exit_code == 0
    assert "cifar10" in result.output
    assert "20,015" in result.output
    assert "11,644" in result.output


def test_list_missing_root(tmp_path):
    result = CliRunner().invoke(datasets_app, ["--data-root", str(tmp_path / "absent")])

    assert result.exit_code == 0
    assert "does not exist" in _flat(result)


# --------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------


def test_verify_cifar10_real_archive(data_root):
    result = CliRunner().invoke(datasets_app, ["verify", "cifar10", "--data-root", str(data_root)])

    assert result.exit_code == 0, result.output
    assert re.search(r"^OK +counts +60,000 items loaded", result.output, re.MULTILINE)
    for protocol in ("cifar10-i", "cifar10-ii", "cifar10-cibhash"):
        assert re.search(rf"^OK +protocol +{protocol} v1: split hash [0-9a-f]{{64}} verified", result.output, re.MULTILINE)


def test_verify_mirflickr_partial_warns(data_root):
    result = CliRunner().invoke(datasets_app, ["verify", "mirflickr25k", "--data-root", str(data_root)])

    assert result.exit_code == 0, result.output
    assert len(re.findall(r"^OK +file ", result.output, re.MULTILINE)) == 4
    assert re.search(r"^WARN +protocol +mirflickr25k-standard v1: .*11,644 of 20,015", result.output, re.MULTILINE)
    assert re.search(r"no check failed \(\d+ passed, 1 with a warning, \d+ skipped\)", result.output)


def test_verify_edited_file_fails(data_root, tmp_path):
    source = data_root / "mirflickr25k"
    copy = tmp_path / "root" / "mirflickr25k"
    (copy / "Concepts").mkdir(parents=True)
    for name in ("all_imgs.txt", "all_labels.txt", "all_tags.txt", "Concepts/TagList.txt"):
        shutil.copyfile(source / name, copy / name)
    with open(copy / "all_tags.txt", "ab") as handle:
        handle.write(b"sky\r\n")

    result = CliRunner().invoke(datasets_app, ["verify", "mirflickr25k", "--data-root", str(tmp_path / "root")])

    assert result.exit_code == 1
    assert re.search(r"^FAIL +file +Metadata file .*all_tags.txt has SHA-256", result.output, re.MULTILINE)
    assert "1 of 8 checks failed" in result.output


def test_verify_missing_folder_fails(tmp_path):
    result = CliRunner().invoke(datasets_app, ["verify", "cifar10", "--data-root", str(tmp_path)])

    assert result.exit_code == 1
    assert re.search(r"^FAIL +folder +Dataset folder .*cifar10 does not exist", result.output, re.MULTILINE)


def test_verify_unknown_dataset(tmp_path):
    result = CliRunner().invoke(datasets_app, ["verify", "imagenet", "--data-root", str(tmp_path)])

    assert result.exit_code == 2
    assert "Unknown dataset 'imagenet'. Registered datasets: " in _flat(result)


# --------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------


def test_download_fetches_and_verifies(tmp_path, server, monkeypatch):
    served, base_url = server
    (served / "files").mkdir()
    archive = served / "files" / "cifar-10-python.tar.gz"
    sha256 = _small_python_release(archive)
    monkeypatch.setattr(dataset_module, "DATASETS_DIR", _definitions_with_sha256(tmp_path, sha256, archive.stat().st_size))
    root = tmp_path / "root"

    result = CliRunner().invoke(datasets_app, ["download", "cifar10", "--data-root", str(root), "--base-url", base_url])

    assert result.exit_code == 0, result.output
    assert (root / "cifar10" / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()
    assert f"SHA-256 verified ({sha256})" in _flat(result)

    verified = CliRunner().invoke(datasets_app, ["verify", "cifar10", "--data-root", str(root)])
    assert re.search(r"^OK +download +.*cifar-10-python.tar.gz: SHA-256 [0-9a-f]{64} matches", verified.output, re.MULTILINE)


def test_download_resumes_partial_file(tmp_path, server, monkeypatch):
    served, base_url = server
    (served / "files").mkdir()
    archive = served / "files" / "cifar-10-python.tar.gz"
    sha256 = _small_python_release(archive)
    monkeypatch.setattr(dataset_module, "DATASETS_DIR", _definitions_with_sha256(tmp_path, sha256, archive.stat().st_size))
    part = tmp_path / "root" / "cifar10" / "cifar-10-python.tar.gz.part"
    part.parent.mkdir(parents=True)
    half = archive.stat().st_size // 2
    part.write_bytes(archive.read_bytes()[:half])

    result = CliRunner().invoke(datasets_app, ["download", "cifar10", "--data-root", str(tmp_path / "root"), "--base-url", base_url])

    assert result.exit_code == 0, result.output
    assert _RangeHandler.range_requests == [("/files/cifar-10-python.tar.gz", half)]
    assert not part.exists()
    assert (part.parent / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()


def test_download_checksum_mismatch_official_definition(tmp_path, server):
    served, base_url = server
    (served / "files").mkdir()
    (served / "files" / "cifar-10-python.tar.gz").write_bytes(b"not the CIFAR-10 release")

    result = CliRunner().invoke(datasets_app, ["download", "cifar10", "--data-root", str(tmp_path), "--base-url", base_url])

    assert result.exit_code == 2
    assert f"expected SHA-256 {OFFICIAL_CIFAR10_SHA256}" in _flat(result)
    assert not (tmp_path / "cifar10" / "cifar-10-python.tar.gz").exists()


def test_download_missing_file_reports_http_error(tmp_path, server):
    _, base_url = server

    result = CliRunner().invoke(datasets_app, ["download", "cifar10", "--data-root", str(tmp_path), "--base-url", base_url])

    assert result.exit_code == 2
    assert "HTTP 404" in _flat(result)


def test_download_unpinned_archive_reports_sha256(tmp_path, server):
    served, base_url = server
    (served / "files").mkdir()
    for name in ("mirflickr25k.zip", "mirflickr25k_annotations_v080.zip"):
        (served / "files" / name).write_bytes(name.encode())

    result = CliRunner().invoke(datasets_app, ["download", "mirflickr25k", "--data-root", str(tmp_path), "--base-url", base_url])

    assert result.exit_code == 0, result.output
    expected = hashlib.sha256(b"mirflickr25k.zip").hexdigest()
    assert f"SHA-256 not pinned by the definition, not verified ({expected})" in _flat(result)
    assert (tmp_path / "mirflickr25k" / "mirflickr25k_annotations_v080.zip").is_file()
