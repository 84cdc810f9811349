"""The runner on datasets other than MIRFlickr-25K: shipped features, and no tags."""

import functools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hashbench import runner
from hashbench.cli import app
from hashbench.data import list_datasets, load_dataset
from hashbench.data.custom import register_custom_dataset
from hashbench.data.dataset import _LOADERS
from hashbench.runner import RunRequest, run_grid


@pytest.fixture
def features_dataset(tmp_path, monkeypatch):
    """A 60-item dataset that ships 16-d features, registered from a definition in tmp_path."""
    list_datasets()
    before = dict(_LOADERS)
    rng = np.random.default_rng(0)
    labels = np.eye(3, dtype=int)[rng.integers(0, 3, size=60)]
    folder = tmp_path / "data" / "feats"
    folder.mkdir(parents=True)
    np.savez(folder / "features.npz", features=labels @ rng.normal(size=(3, 16)) + rng.normal(size=(60, 16)) * 0.1,
             labels=labels)
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    (definitions / "feats.toml").write_text(
        'loader = "features"\ndescription = "Test features"\nfolder = "feats"\n'
        'label_names = ["a", "b", "c"]\nstandard_protocol = "feats-random"\n'
        "[files]\n\n[counts]\nitems = 60\nlabels = 3\n\n"
        '[source]\npath = "features.npz"\n\n'
        '[protocols.feats-random]\nfile = "feats/feats-random.v1.json"\n'
        "version = 1\nseed = 0\nn_query = 10\nn_train = 30\ngenerate_on_load = true\n",
        encoding="utf-8",
    )
    register_custom_dataset("feats")
    monkeypatch.setattr(runner, "load_dataset", functools.partial(load_dataset, datasets_dir=definitions))
    yield tmp_path
    _LOADERS.clear()
    _LOADERS.update(before)


def test_shipped_features_need_no_backbone(features_dataset):
    request = RunRequest(
        method="itq", dataset="feats", bits=[8], seeds=[0], data_root=features_dataset / "data",
        runs_dir=features_dataset / "runs", cache_dir=features_dataset / "cache",
    )
    (outcome,) = run_grid(request)
    record = json.loads((outcome.path / "record.json").read_text())
    assert record["backbone"] == "precomputed"
    assert record["backbone_details"] == {"name": "precomputed", "n_features": 16}
    assert outcome.metrics["map"] > 0.9
    assert not (features_dataset / "cache").exists()


def test_tag_method_on_dataset_without_tags_is_rejected(features_dataset, monkeypatch):
    result = CliRunner().invoke(app, [
        "run", "--method", "dstdh", "--dataset", "feats", "--data-root", str(features_dataset / "data"),
        "--runs-dir", str(features_dataset / "runs"),
    ])
    assert result.exit_code == 2
    assert "dstdh trains on user tags, but dataset 'feats' has none" in " ".join(result.output.split())


class _PathBackbone:
    """A stand-in backbone whose features are a fixed function of each image path (no decoding)."""

    name = "path-features"
    n_features = 8
    weights_sha256 = "0" * 64
    preprocessing = "hash of the path"

    def extract(self, images, *, batch_size=64, progress=None, **options):
        rows = [np.random.default_rng(abs(hash(str(image))) % 2**32).normal(size=8) for image in images]
        return np.asarray(rows, dtype=np.float32)


def test_sample_reuses_features_of_whole_split(data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "get_backbone", lambda name, **options: _PathBackbone())
    base = dict(method="lsh", dataset="mirflickr25k", bits=[8], seeds=[0], data_root=data_root,
                runs_dir=tmp_path / "runs", cache_dir=tmp_path / "cache", allow_partial=True)
    run_grid(RunRequest(**base))

    def no_extraction(*args, **kwargs):
        raise AssertionError("a sampled run extracted features although the whole split is cached")

    monkeypatch.setattr(runner, "compute_features", no_extraction)
    (outcome,) = run_grid(RunRequest(**base, sample=(50, 400)))
    assert outcome.status == "done"
