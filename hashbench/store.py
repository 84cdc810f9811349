"""Run store: one folder per run holding its record and its codes, written atomically.

A run is one combination of method, dataset, protocol, code length, seed, parameters and
backbone, described by a :class:`RunKey`. Its folder below the runs folder is built from those
values, so a rerun with the same values lands in the same place::

    <dataset>/<protocol>/<method>/bits=<n_bits>/seed=<seed>/backbone=<backbone>,params=<hash>

``backbone`` is ``none`` for a run without one, and ``<hash>`` is the first 12 hex digits of the
SHA-256 of the canonical JSON of the parameters (keys sorted, no spaces, ASCII only), so
``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` share a folder. The readable parameters are in
``record.json``. The last component lists its ``name=value`` pairs in sorted name order.

A run folder contains two files:

``record.json``
    The run record, written with sorted keys and an indent of 2. Its fields:

    - ``method``, ``dataset``, ``protocol``, ``n_bits``, ``seed``, ``params``, ``backbone``: the
      key; :meth:`RunStore.write` fills them in from the :class:`RunKey`.
    - ``split``: dict describing the query/database split, with at least ``split_hash``.
    - ``environment``: dict from :func:`hashbench.environment.collect_environment`.
    - ``metrics``: flat dict of metric name to float (``map``, ``map@1000``,
      ``precision@500``, ...), the values that reports average over seeds.
    - ``curves``: nested dict of curves (precision-recall, precision@N, ...), stored but never
      averaged.
    - ``conventions``: dict of the metric conventions in force (tie handling, queries without a
      relevant item, ...). Reports average runs together only when these are equal.
    - ``timings``: flat dict of name to float with the unit in the name (``fit_s``,
      ``encode_ms_per_item``, ``search_ms_per_query``, ...).
    - ``created``: UTC time of the write in ISO 8601, set by :meth:`RunStore.write`.
    - ``hashbench_version``: version of the package that wrote the run, added by
      :meth:`RunStore.write` when the record lacks it.

``codes.npz``
    The arrays of the run (query codes, database codes, ids, ...) in numpy's ``.npz`` format,
    uncompressed, one member per name; read them with :func:`load_arrays`.

A write first fills a hidden sibling folder ``.<name>.tmp-<random>``, flushes every file to disk
and then renames that folder into place, so a reader sees either the whole run or nothing.
Readers skip hidden folders, and the next write to the same key removes the ones a killed process
left behind. Two processes writing the same key at the same moment are not supported.
"""

import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import hashbench
from hashbench.codes import validate_n_bits

logger = logging.getLogger(__name__)

RECORD_FILE = "record.json"
ARRAYS_FILE = "codes.npz"

#: Record fields that come from the run key, in key order.
KEY_FIELDS = ("method", "dataset", "protocol", "n_bits", "seed", "params", "backbone")

# Names that become folder names: no separators, no leading dot (hidden folders are temporary).
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Array names become members of codes.npz and attributes of the loaded NpzFile.
_ARRAY_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_PARAMS_HASH_LENGTH = 12


class RunExistsError(FileExistsError):
    """Raised when a write would replace a finished run without ``force=True``."""


# ---------------------------------------------------------------------------------------------
# JSON helpers


def _json_default(value):
    # numpy scalars are converted to their Python values; anything else is not JSON.
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _find_non_json(value, location):
    """Return ``(location, reason)`` of the first value that JSON cannot hold, else None."""
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                return f"{location}[{name!r}]", f"key of type {type(name).__name__}, not str"
            found = _find_non_json(item, f"{location}.{name}" if location else name)
            if found is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_non_json(item, f"{location}[{index}]")
            if found is not None:
                return found
        return None
    if value is None or isinstance(value, (str, bool, np.bool_, int, np.integer)):
        return None
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(value) else (location, f"non-finite float {value!r}")
    return location, f"value of type {type(value).__name__}"


def _check_json(value, *, label):
    """Raise TypeError naming the first entry of ``value`` that JSON cannot hold."""
    found = _find_non_json(value, "")
    if found is None:
        return
    location, reason = found
    # A NaN or infinity has a valid type but a value that strict JSON cannot hold.
    error = ValueError if reason.startswith("non-finite") else TypeError
    raise error(
        f"{label} must contain only JSON values (dict with str keys, list, str, finite "
        f"number, bool, None), but {location or 'the value itself'} is a {reason}. "
        "Convert it to one of those types."
    )


def _canonical_json(value, *, label):
    _check_json(value, label=label)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
        default=_json_default,
    )


def canonical_json(value):
    """Serialise a JSON value canonically: sorted keys, no spaces, ASCII only.

    Parameters
    ----------
    value : dict, list, str, int, float, bool or None
        The value; numpy scalars are converted to Python numbers. Note that ``1`` and ``1.0``
        serialise differently.

    Returns
    -------
    str
        The canonical JSON text.

    Raises
    ------
    TypeError
        If the value contains a type JSON cannot hold, named by its location.
    ValueError
        If the value contains a NaN or infinite float.
    """
    return _canonical_json(value, label="the value")


# ---------------------------------------------------------------------------------------------
# Run key


def _check_name(value, name):
    if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{name} must be a non-empty string of letters, digits, '.', '_' or '-' that starts "
            f"with a letter or digit, because it becomes a folder name; got {value!r}."
        )
    return value


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


@dataclass(frozen=True)
class RunKey:
    """The values that identify a run and name its folder.

    Parameters
    ----------
    method : str
        Registered method name, for example ``"dstdh"``.
    dataset : str
        Dataset name, for example ``"mirflickr25k"``.
    protocol : str
        Name of the query/database protocol, for example ``"mirflickr25k-standard"``.
    n_bits : int
        Code length in bits, a positive multiple of 8.
    seed : int
        Non-negative seed of the run.
    params : dict, default={}
        Method parameters as JSON values with str keys. The key stores a normalised copy
        (tuples become lists, numpy scalars become Python numbers).
    backbone : str or None, default=None
        Feature backbone, for example ``"efficientnet-lite0"``; ``None`` (or ``"none"``) for a
        run without one.

    Raises
    ------
    ValueError
        If a name contains characters that cannot be part of a folder name, ``n_bits`` is not a
        positive multiple of 8, ``seed`` is negative or a parameter is NaN or infinite.
    TypeError
        If ``params`` is not a dict of JSON values.
    """

    method: str
    dataset: str
    protocol: str
    n_bits: int
    seed: int
    params: dict = field(default_factory=dict)
    backbone: str | None = None

    def __post_init__(self):
        for name in ("method", "dataset", "protocol"):
            _check_name(getattr(self, name), name)
        if self.backbone == "none":
            object.__setattr__(self, "backbone", None)
        if self.backbone is not None:
            _check_name(self.backbone, "backbone")
        object.__setattr__(self, "n_bits", validate_n_bits(self.n_bits))
        object.__setattr__(self, "seed", _check_seed(self.seed))

        if not isinstance(self.params, dict):
            raise TypeError(
                f"params must be a dict of parameter name to JSON value, got "
                f"{type(self.params).__name__}."
            )
        params_text = _canonical_json(self.params, label="params")
        object.__setattr__(self, "params", json.loads(params_text))

    def __hash__(self):
        return hash((self.method, self.dataset, self.protocol, self.n_bits, self.seed,
                     self.params_hash, self.backbone))

    @property
    def params_hash(self):
        """First 12 hex digits of the SHA-256 of the canonical JSON of ``params``."""
        digest = hashlib.sha256(canonical_json(self.params).encode("ascii")).hexdigest()
        return digest[:_PARAMS_HASH_LENGTH]

    @property
    def relative_path(self):
        """Run folder relative to the runs folder, as a ``pathlib.Path``.

        The layout is
        ``<dataset>/<protocol>/<method>/bits=<n_bits>/seed=<seed>/backbone=<b>,params=<hash>``.
        """
        leaf = f"backbone={self.backbone or 'none'},params={self.params_hash}"
        return Path(self.dataset, self.protocol, self.method, f"bits={self.n_bits}",
                    f"seed={self.seed}", leaf)

    def as_record_fields(self):
        """Return the key as the record fields it fills, a dict keyed by ``KEY_FIELDS``."""
        return {name: getattr(self, name) for name in KEY_FIELDS}

    @classmethod
    def from_record(cls, record):
        """Build the key of a stored run from its record.

        Parameters
        ----------
        record : dict
            A run record with the ``KEY_FIELDS`` entries.

        Returns
        -------
        RunKey
        """
        missing = [name for name in KEY_FIELDS if name not in record]
        if missing:
            raise ValueError(
                f"the record lacks the key fields {', '.join(missing)}; a run record needs "
                f"{', '.join(KEY_FIELDS)}."
            )
        return cls(**{name: record[name] for name in KEY_FIELDS})


# ---------------------------------------------------------------------------------------------
# Writing


def _fsync_dir(path):
    # Directory entries (new files, renames) are durable only after the folder itself is synced.
    # Windows cannot open a folder this way, and there the step is skipped.
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _check_arrays(arrays):
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict of name to numpy array, got {type(arrays).__name__}.")
    for name, array in arrays.items():
        if not isinstance(name, str) or not _ARRAY_NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"array name {name!r} is invalid: use letters, digits and '_', starting with a "
                "letter or '_' (for example 'query_codes')."
            )
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"arrays[{name!r}] must be a numpy array, got {type(array).__name__}. "
                "Convert it with numpy.asarray first."
            )
        if array.dtype.hasobject:
            raise TypeError(
                f"arrays[{name!r}] has dtype {array.dtype}, which codes.npz cannot store without "
                "pickling; use a numeric, bool or fixed-width string dtype."
            )
    return arrays


def _write_arrays(path, arrays):
    # Same layout as numpy.savez (a stored zip of NAME.npy members). Writing the members directly
    # allows any valid name, including ones that clash with savez's own parameter names.
    with open(path, "wb") as handle:
        with zipfile.ZipFile(handle, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def _write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _complete_record(key, record):
    """Return a copy of ``record`` with the key fields, ``created`` and the version filled in."""
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict, got {type(record).__name__}.")
    completed = dict(record)

    for name, value in key.as_record_fields().items():
        if name not in completed:
            completed[name] = value
            continue
        record_value = completed[name]
        if name == "params" and isinstance(record_value, dict):
            record_value = json.loads(_canonical_json(record_value, label="record['params']"))
        if name == "backbone" and record_value == "none":
            record_value = None
        if record_value != value:
            raise ValueError(
                f"record[{name!r}] is {completed[name]!r} but the run key has {value!r}; "
                "leave the key fields out of the record or make them match the key."
            )
        completed[name] = value

    completed["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    completed.setdefault("hashbench_version", hashbench.__version__)
    return completed


class RunStore:
    """Folder of runs, one subfolder per :class:`RunKey`.

    Parameters
    ----------
    runs_dir : str or os.PathLike
        Root folder of the runs; it is created on the first write.
    """

    def __init__(self, runs_dir):
        self.runs_dir = Path(runs_dir)

    def __repr__(self):
        return f"RunStore({str(self.runs_dir)!r})"

    def path(self, key):
        """Return the folder of the run ``key``, whether or not it exists yet."""
        if not isinstance(key, RunKey):
            raise TypeError(f"key must be a RunKey, got {type(key).__name__}.")
        return self.runs_dir / key.relative_path

    def exists(self, key):
        """Return whether a finished run (a folder with ``record.json``) exists for ``key``."""
        return (self.path(key) / RECORD_FILE).is_file()

    def write(self, key, record, arrays, *, force=False):
        """Write a run atomically and return its folder.

        The record and arrays go into a hidden temporary folder beside the run folder. Every file
        and the folder are flushed to disk, and the folder is then renamed into place. With
        ``force=True`` an existing run is renamed aside, the new one is renamed in and the old one
        is deleted, so a reader never sees a half-written run.

        Parameters
        ----------
        key : RunKey
            Identity of the run; it decides the folder.
        record : dict
            JSON-serialisable run record (layout in the module docstring). The stored copy gets
            the key fields, ``created`` (replacing any given value) and, when missing,
            ``hashbench_version``. Key fields already in the record must match ``key``.
        arrays : dict of str to ndarray
            Arrays to keep with the run (query codes, database codes, ids, ...), saved in
            ``codes.npz``. Names use letters, digits and ``_``; object arrays are rejected.
        force : bool, default=False
            Replace a finished run with the same key instead of raising.

        Returns
        -------
        pathlib.Path
            The run folder.

        Raises
        ------
        RunExistsError
            If the run folder exists and ``force`` is False.
        TypeError, ValueError
            If the record or arrays cannot be stored; nothing is written then.
        """
        start = time.perf_counter()
        final = self.path(key)
        completed = _complete_record(key, record)
        _check_json(completed, label="record")
        record_text = json.dumps(
            completed, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False,
            default=_json_default,
        ) + "\n"
        arrays = _check_arrays(arrays)

        final.parent.mkdir(parents=True, exist_ok=True)
        self._clean_leftovers(final)
        if final.exists() and not force:
            raise _run_exists_error(final)

        staging = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            _write_arrays(staging / ARRAYS_FILE, arrays)
            _write_text(staging / RECORD_FILE, record_text)
            _fsync_dir(staging)
            self._move_into_place(staging, final, force=force)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

        logger.info(
            "Wrote run %s (%d arrays) in %.2f s",
            final, len(arrays), time.perf_counter() - start,
        )
        return final

    def _move_into_place(self, staging, final, *, force):
        parent = final.parent
        if not final.exists():
            try:
                os.rename(staging, final)
            except OSError as error:
                # Another process created the run between the check and the rename.
                if final.exists():
                    raise _run_exists_error(final) from error
                raise
            _fsync_dir(parent)
            return

        if not force:
            raise _run_exists_error(final)
        aside = parent / f".{final.name}.old-{uuid.uuid4().hex[:12]}"
        os.rename(final, aside)
        try:
            os.rename(staging, final)
        except BaseException:
            os.rename(aside, final)
            raise
        _fsync_dir(parent)
        shutil.rmtree(aside)
        logger.info("Replaced the run at %s", final)

    def _clean_leftovers(self, final):
        """Remove temporary folders of ``final`` that a killed write left behind.

        A run renamed aside by an interrupted forced write is moved back when the run folder is
        missing, so that interruption leaves the previous run in place.
        """
        parent = final.parent
        for staging in sorted(parent.glob(f".{final.name}.tmp-*")):
            logger.warning("Removing the unfinished write %s left by an interrupted process", staging)
            shutil.rmtree(staging, ignore_errors=True)

        set_aside = sorted(parent.glob(f".{final.name}.old-*"), key=lambda p: p.stat().st_mtime)
        if set_aside and not final.exists():
            restored = set_aside.pop()
            logger.warning("Restoring the run %s that an interrupted replacement set aside", final)
            os.rename(restored, final)
        for old in set_aside:
            logger.warning("Removing the replaced run %s left by an interrupted process", old)
            shutil.rmtree(old, ignore_errors=True)


def _run_exists_error(path):
    return RunExistsError(
        f"a run already exists at {path}; pass --force (force=True) to replace it."
    )


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class RunProblem:
    """A ``record.json`` that could not be read.

    Attributes
    ----------
    path : pathlib.Path
        The record file.
    reason : str
        What is wrong with it.
    """

    path: Path
    reason: str


@dataclass
class RunScan:
    """Result of :func:`scan_runs`.

    Attributes
    ----------
    records : list of dict
        Records that were read, sorted by run folder. Each has an extra ``run_path`` entry (the
        run folder as a str) that is not part of the stored file.
    problems : list of RunProblem
        Records that were skipped, with the reason.
    """

    records: list
    problems: list


def _read_record(record_path):
    """Return ``(record, None)`` or ``(None, reason)``."""
    try:
        text = record_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, f"cannot be read: {error}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"is not valid JSON: {error}"
    if not isinstance(record, dict):
        return None, f"contains a JSON {type(record).__name__}, not an object"
    missing = [name for name in KEY_FIELDS if name not in record]
    if missing:
        return None, f"lacks the key fields {', '.join(missing)}"
    return record, None


def scan_runs(runs_dir):
    """Read every finished run record below a folder.

    Hidden folders (temporary folders of writes in progress or interrupted) are skipped. A record
    that cannot be read or parsed, or that lacks key fields, is logged as a warning with its path
    and returned among the problems.

    Parameters
    ----------
    runs_dir : str or os.PathLike
        Root folder of the runs. A missing folder is treated as empty.

    Returns
    -------
    RunScan
        The records and the problems.

    Raises
    ------
    NotADirectoryError
        If ``runs_dir`` exists but is not a folder.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.exists():
        logger.info("No runs folder at %s", runs_dir)
        return RunScan(records=[], problems=[])
    if not runs_dir.is_dir():
        raise NotADirectoryError(
            f"the runs folder {runs_dir} is not a directory; pass the directory that contains the runs."
        )

    start = time.perf_counter()
    records, problems = [], []
    for folder, subfolders, files in os.walk(runs_dir):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        if RECORD_FILE not in files:
            continue
        record_path = Path(folder) / RECORD_FILE
        record, reason = _read_record(record_path)
        if record is None:
            logger.warning("Skipping the run record %s, which %s", record_path, reason)
            problems.append(RunProblem(path=record_path, reason=reason))
            continue
        record["run_path"] = folder
        records.append(record)

    logger.info(
        "Read %d run records under %s in %.2f s (%d skipped)",
        len(records), runs_dir, time.perf_counter() - start, len(problems),
    )
    return RunScan(records=records, problems=problems)


def iter_runs(runs_dir):
    """Return every readable run record below a folder.

    Shorthand for ``scan_runs(runs_dir).records``; use :func:`scan_runs` to also get the
    skipped records.

    Parameters
    ----------
    runs_dir : str or os.PathLike
        Root folder of the runs.

    Returns
    -------
    list of dict
        Records sorted by run folder, each with an extra ``run_path`` entry.
    """
    return scan_runs(runs_dir).records


def load_arrays(run_path):
    """Load the arrays of a run.

    Parameters
    ----------
    run_path : str or os.PathLike
        The run folder (``RunStore.path(key)`` or a record's ``run_path``).

    Returns
    -------
    dict of str to ndarray
        The arrays saved with the run, loaded into memory.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``codes.npz``.
    """
    arrays_path = Path(run_path) / ARRAYS_FILE
    if not arrays_path.is_file():
        raise FileNotFoundError(
            f"no {ARRAYS_FILE} in {run_path}; pass a run folder written by RunStore.write."
        )
    with np.load(arrays_path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
