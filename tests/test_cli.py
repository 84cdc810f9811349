import functools
import http.server
import threading

import pytest
from typer.testing import CliRunner

from hashbench.cli import app


def _flat(result):
    return " ".join(result.output.split())


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/served over HTTP on 127.0.0.1 for the test's duration."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_methods_lists_builtins():
    result = CliRunner().invoke(app, ["methods"])
    assert result.exit_code == 0
    for name in ("dstdh", "itq", "lsh"):
        assert name in result.output


def test_datasets_reports_counts(data_root):
    result = CliRunner().invoke(app, ["datasets", "--data-root", str(data_root)])
    assert result.exit_code == 0
    assert "20,015" in result.output
    assert "11,644" in result.output


def test_datasets_missing_root(tmp_path):
    result = CliRunner().invoke(app, ["datasets", "--data-root", str(tmp_path / "absent")])
    assert result.exit_code == 0
    assert "no" in result.output


def test_report_missing_runs_dir(tmp_path):
    result = CliRunner().invoke(app, ["report", "--runs-dir", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "does not exist" in _flat(result)


def test_report_empty_runs_dir(tmp_path):
    result = CliRunner().invoke(app, ["report", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "hashbench run" in _flat(result)


def test_report_rejects_unknown_format(tmp_path):
    result = CliRunner().invoke(app, ["report", "--runs-dir", str(tmp_path), "--format", "xml"])
    assert result.exit_code == 2
    assert "--format must be one of" in _flat(result)


def test_fetch_weights_rejects_other_backbones(tmp_path):
    result = CliRunner().invoke(app, ["fetch-weights", "resnet50", "--directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "only vgg16" in _flat(result)


def test_fetch_weights_rejects_checksum_mismatch(server, tmp_path):
    served, url = server
    (served / "vgg16-397923af.pth").write_bytes(b"not the real weights")
    result = CliRunner().invoke(app, ["fetch-weights", "vgg16", "--directory", str(tmp_path / "w"), "--base-url", url])
    assert result.exit_code == 2
    assert "397923af" in _flat(result)
    assert not (tmp_path / "w" / "vgg16-397923af.pth").exists()


def test_fetch_weights_reports_missing_file(server, tmp_path):
    _, url = server
    result = CliRunner().invoke(app, ["fetch-weights", "vgg16", "--directory", str(tmp_path / "w"), "--base-url", url])
    assert result.exit_code == 2
    assert "404" in _flat(result)
