"""Description of the software and hardware a run used, for its record.

The description names no host and no user. It contains versions, the platform string, the CPU
model and thread counts, so records can be shared as they are.
"""

import importlib.metadata
import os
import platform
from pathlib import Path

#: Distributions whose versions every run records.
DEFAULT_PACKAGES = ("hashbench", "numpy", "scipy", "torch", "torchvision", "pandas")

_CPUINFO_PATH = Path("/proc/cpuinfo")

# Fields of /proc/cpuinfo that name the CPU model. x86 kernels use "model name", and ARM kernels
# use "Hardware" or "Processor" depending on the version.
_CPUINFO_MODEL_FIELDS = ("model name", "Hardware", "Processor", "cpu model")


def read_cpu_model(cpuinfo_path=_CPUINFO_PATH):
    """Return the CPU model name, or None when it cannot be found.

    Parameters
    ----------
    cpuinfo_path : str or os.PathLike, default="/proc/cpuinfo"
        File in the Linux ``/proc/cpuinfo`` format. When it is missing or names no model,
        ``platform.processor()`` is used instead.

    Returns
    -------
    str or None
        For example ``"Intel(R) Xeon(R) CPU @ 2.20GHz"``.
    """
    try:
        text = Path(cpuinfo_path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""

    fields = {}
    for line in text.splitlines():
        name, separator, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if separator and value and name not in fields:
            fields[name] = value
    for name in _CPUINFO_MODEL_FIELDS:
        if name in fields:
            return fields[name]

    return platform.processor() or None


def package_versions(names=DEFAULT_PACKAGES):
    """Return the installed version of each distribution, None for one that is not installed.

    Parameters
    ----------
    names : iterable of str, default=DEFAULT_PACKAGES
        Distribution names as pip lists them.

    Returns
    -------
    dict of str to (str or None)
    """
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _usable_cpu_count():
    # CPUs this process may run on, which a container or taskset can make fewer than cpu_count.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def _torch_details():
    try:
        import torch
    except ImportError:
        return {"torch_num_threads": None, "cuda_devices": []}

    cuda_devices = []
    if torch.cuda.is_available():
        cuda_devices = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    return {"torch_num_threads": torch.get_num_threads(), "cuda_devices": cuda_devices}


def collect_environment(packages=DEFAULT_PACKAGES):
    """Describe the interpreter, platform, CPU and library versions of this process.

    Importing torch takes a second or two the first time; the function imports it only to read
    its thread count and CUDA devices.

    Parameters
    ----------
    packages : iterable of str, default=DEFAULT_PACKAGES
        Distributions whose versions are recorded.

    Returns
    -------
    dict
        JSON-serialisable description with the keys

        - ``python``: version, for example ``"3.11.9"``;
        - ``python_implementation``: for example ``"CPython"``;
        - ``platform``: ``platform.platform()``, for example
          ``"Linux-6.1.0-x86_64-with-glibc2.36"``;
        - ``machine``: architecture, for example ``"x86_64"``;
        - ``cpu_model``: str or None, see :func:`read_cpu_model`;
        - ``cpu_count``: logical CPUs of the machine;
        - ``cpu_count_usable``: logical CPUs this process may use;
        - ``torch_num_threads``: ``torch.get_num_threads()``, None without torch;
        - ``cuda_devices``: names of the visible CUDA devices, empty without any;
        - ``packages``: dict of distribution name to version or None.
    """
    environment = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": read_cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_count_usable": _usable_cpu_count(),
    }
    environment.update(_torch_details())
    environment["packages"] = package_versions(packages)
    return environment
