"""Tests of the environment description stored with each run."""

import getpass
import json
import os
import platform
import socket

import numpy as np
import pytest

from hashbench.environment import collect_environment, package_versions, read_cpu_model


def string_values(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from string_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from string_values(item)
    elif isinstance(value, str):
        yield value


@pytest.fixture(scope="module")
def environment():
    return collect_environment()


def test_environment_is_json(environment):
    assert json.loads(json.dumps(environment, allow_nan=False)) == environment


def test_environment_keys(environment):
    assert set(environment) == {
        "python", "python_implementation", "platform", "machine", "cpu_model", "cpu_count",
        "cpu_count_usable", "torch_num_threads", "cuda_devices", "packages",
    }


def test_environment_values(environment):
    torch = pytest.importorskip("torch")

    assert environment["python"] == platform.python_version()
    assert environment["cpu_count"] == os.cpu_count()
    assert 1 <= environment["cpu_count_usable"] <= environment["cpu_count"]
    assert environment["torch_num_threads"] == torch.get_num_threads()
    assert environment["packages"]["numpy"] == np.__version__
    assert environment["packages"]["hashbench"] is not None


def test_environment_has_no_host_or_user(environment):
    names = {socket.gethostname(), getpass.getuser()}
    values = set(string_values(environment))

    assert not names & values
    assert not {"hostname", "host", "user", "username", "node"} & values


def test_package_versions_missing_is_none():
    versions = package_versions(["numpy", "hashbench-no-such-distribution"])

    assert versions == {"numpy": np.__version__, "hashbench-no-such-distribution": None}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
         "processor\t: 1\nmodel name\t: AMD EPYC 7B13\n", "AMD EPYC 7B13"),
        ("processor\t: 0\nBogoMIPS\t: 50.00\n\nHardware\t: BCM2835\n", "BCM2835"),
    ],
    ids=["x86", "arm"],
)
def test_cpu_model_from_cpuinfo(tmp_path, text, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)

    assert read_cpu_model(cpuinfo) == expected


def test_cpu_model_falls_back_to_platform(tmp_path):
    assert read_cpu_model(tmp_path / "absent") == (platform.processor() or None)
