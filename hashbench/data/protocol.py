"""Versioned split protocols: query, database and training items stored as data.

A protocol file ``datasets/<dataset>/<protocol>.v<version>.json`` lists the item ids of the
queries, the database and the training set, with the seed and generator that produced them and
the SHA-256 split hash of the three id lists. Loading recomputes that hash and checks the counts,
so an edited file fails. A published file is never edited: a changed split is a new version in a
new file, and the dataset definition (``[protocols.<name>]`` in ``datasets/<dataset>.toml``)
names the current one together with the recipe that generates it.

Regenerate (or check) a protocol file with::

    python -m hashbench.data generate mirflickr25k [--data-root PATH] [--protocol NAME]

which writes the file named in the definition, reports it unchanged when the stored lists are
identical, and refuses to overwrite a published file with different lists.
"""

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hashbench.data.dataset import DatasetError, load_dataset, load_definition

logger = logging.getLogger(__name__)

#: The id lists of a protocol, in the order of the canonical serialisation.
SPLIT_LISTS = ("query", "database", "train")

_PROTOCOL_KEYS = (
    "protocol",
    "version",
    "dataset",
    "seed",
    "generator",
    "numpy_version",
    "counts",
    "split_hash",
    "query",
    "database",
    "train",
)

GENERATOR_DESCRIPTION = (
    "hashbench.data.protocol.generate_split: numpy.random.default_rng(seed).permutation over "
    "the dataset's item ids sorted ascending. The first n_query permuted ids are the queries, "
    "the next n_train the training set, and every non-query id is in the database. Each list "
    "is stored sorted ascending"
)


# --------------------------------------------------------------------------------------------
# Hashing and generation
# --------------------------------------------------------------------------------------------


def split_hash(query, database, train):
    """Compute the SHA-256 content hash of a split's three id lists.

    The canonical byte serialisation is three ASCII lines, each ended by ``\\n``::

        query:<ids>
        database:<ids>
        train:<ids>

    where ``<ids>`` are the ids in ascending order, written in decimal without sign or leading
    zeros and separated by ``,`` (an empty list gives an empty field). The hash is the
    lowercase hexadecimal SHA-256 of those bytes, so any language can reproduce it.

    Parameters
    ----------
    query, database, train : array-like of shape (n,), integer
        Item ids (not row indices) in any order, because they are sorted first.

    Returns
    -------
    str
        64 lowercase hexadecimal digits.
    """
    digest = hashlib.sha256()
    for name, ids in zip(SPLIT_LISTS, (query, database, train)):
        ids = np.sort(np.asarray(ids, dtype=np.int64))
        digest.update(f"{name}:{','.join(map(str, ids.tolist()))}\n".encode("ascii"))
    return digest.hexdigest()


def generate_split(ids, *, seed, n_query, n_train):
    """Draw queries and a training set from a dataset's item ids.

    Parameters
    ----------
    ids : array-like of shape (n_items,), integer
        All item ids of the dataset, unique, in any order.
    seed : int
        Seed of ``numpy.random.default_rng``.
    n_query : int
        Number of queries.
    n_train : int
        Number of training items, drawn from the non-query items.

    Returns
    -------
    dict of str to ndarray of shape (n,), dtype int64
        ``query`` (n_query ids), ``database`` (the n_items - n_query non-query ids) and
        ``train`` (n_train ids, a subset of the database), each sorted ascending.

    Raises
    ------
    ValueError
        If the ids are not unique or ``n_query + n_train`` exceeds the number of ids.
    """
    ids = np.sort(np.asarray(ids, dtype=np.int64))
    if ids.ndim != 1 or np.any(ids[1:] == ids[:-1]):
        raise ValueError("ids must be a 1-D array of unique item ids.")
    if n_query < 1 or n_train < 1 or n_query + n_train > len(ids):
        raise ValueError(
            f"n_query={n_query} and n_train={n_train} must be positive and together at most the "
            f"number of items, {len(ids)}."
        )

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    return {
        "query": np.sort(ids[order[:n_query]]),
        "database": np.sort(ids[order[n_query:]]),
        "train": np.sort(ids[order[n_query : n_query + n_train]]),
    }


def _pool_mask(dataset, subset, key, recipe_name):
    """Return the boolean mask of the items in the official ``subset``, or all items for None."""
    if subset is None:
        return np.ones(dataset.n_items, dtype=bool)
    if dataset.subsets is None:
        raise DatasetError(
            f"Protocol {recipe_name}: {key} = {subset!r}, but dataset {dataset.name!r} has no "
            "official train/test division. Remove the key from the recipe."
        )
    mask = dataset.subsets == subset
    if not mask.any():
        raise DatasetError(
            f"Protocol {recipe_name}: {key} = {subset!r} matches no item of dataset "
            f"{dataset.name!r}. Subsets found: {sorted(set(dataset.subsets.tolist()))}."
        )
    return mask


def _draw_per_label(rng, labels, pool, n_total, context):
    """Draw ``n_total / n_labels`` rows per label column from the rows in ``pool``.

    Label columns are visited in order. For multi-label data a row drawn for one label is not
    drawn again for a later one, so the count per label is the number drawn for it, and an item
    may carry several of the drawn labels.
    """
    n_labels = labels.shape[1]
    if n_total % n_labels:
        raise ValueError(f"{context}: {n_total} is not a multiple of the {n_labels} labels.")
    per_label = n_total // n_labels
    available = pool.copy()
    chosen = []
    for column in range(n_labels):
        candidates = np.flatnonzero(available & (labels[:, column] > 0))
        if len(candidates) < per_label:
            raise DatasetError(
                f"{context}: label column {column} has {len(candidates)} items left to draw from, "
                f"expected at least {per_label}."
            )
        picked = rng.choice(candidates, size=per_label, replace=False)
        available[picked] = False
        chosen.append(picked)
    return np.concatenate(chosen)


def _generate_random(dataset, recipe, name):
    return generate_split(dataset.ids, seed=recipe["seed"], n_query=recipe["n_query"], n_train=recipe["n_train"])


def _generate_per_label(dataset, recipe, name):
    rng = np.random.default_rng(recipe["seed"])
    query_pool = _pool_mask(dataset, recipe.get("query_from"), "query_from", name)
    train_pool = _pool_mask(dataset, recipe.get("train_from"), "train_from", name)
    query = _draw_per_label(rng, dataset.labels, query_pool, recipe["n_query"], f"Protocol {name} queries")
    is_query = np.zeros(dataset.n_items, dtype=bool)
    is_query[query] = True
    train = _draw_per_label(rng, dataset.labels, train_pool & ~is_query, recipe["n_train"], f"Protocol {name} training set")
    ids = dataset.ids
    return {"query": np.sort(ids[query]), "database": np.sort(ids[~is_query]), "train": np.sort(ids[train])}


def _generate_official(dataset, recipe, name):
    query_pool = _pool_mask(dataset, recipe.get("query_from", "test"), "query_from", name)
    train_pool = _pool_mask(dataset, recipe.get("train_from", "train"), "train_from", name)
    ids = dataset.ids
    return {"query": np.sort(ids[query_pool]), "database": np.sort(ids[train_pool]), "train": np.sort(ids[train_pool])}


def _generate_random_query_per_label_train(dataset, recipe, name):
    rng = np.random.default_rng(recipe["seed"])
    query_pool = _pool_mask(dataset, recipe.get("query_from", "test"), "query_from", name)
    train_pool = _pool_mask(dataset, recipe.get("train_from", "train"), "train_from", name)
    candidates = np.flatnonzero(query_pool)
    if recipe["n_query"] > len(candidates):
        raise DatasetError(f"Protocol {name}: n_query = {recipe['n_query']} exceeds the {len(candidates)} candidate queries.")
    query = rng.permutation(candidates)[: recipe["n_query"]]
    train = _draw_per_label(rng, dataset.labels, train_pool, recipe["n_train"], f"Protocol {name} training set")
    ids = dataset.ids
    return {"query": np.sort(ids[query]), "database": np.sort(ids[train_pool]), "train": np.sort(ids[train])}


#: Split generators that a recipe names with ``generator = "<name>"``: function and description.
GENERATORS = {
    "random": (_generate_random, GENERATOR_DESCRIPTION),
    "per-label": (
        _generate_per_label,
        "hashbench.data.protocol per-label: rng = numpy.random.default_rng(seed). For each label "
        "column in order, rng.choice draws n_query / n_labels queries without replacement from "
        "the rows of the query_from subset (all rows when unset) that carry the label and were "
        "not drawn yet; then the training set is drawn the same way, n_train / n_labels per "
        "label, from the train_from subset minus the queries. The database is every non-query "
        "item. Each list is stored sorted ascending",
    ),
    "official": (
        _generate_official,
        "hashbench.data.protocol official: the queries are the items of the query_from subset "
        "(default test), the database and the training set are the items of the train_from "
        "subset (default train). No randomness. Each list is stored sorted ascending",
    ),
    "random-query-per-label-train": (
        _generate_random_query_per_label_train,
        "hashbench.data.protocol random-query-per-label-train: rng = "
        "numpy.random.default_rng(seed). The queries are the first n_query rows of "
        "rng.permutation over the rows of the query_from subset (default test). The training "
        "set is drawn with rng.choice, n_train / n_labels per label column, from the train_from "
        "subset (default train). The database is the whole train_from subset, so query_from "
        "items that are not queries are in no list. Each list is stored sorted ascending",
    ),
}


def generate_lists(dataset, name, recipe):
    """Draw the id lists of protocol ``name`` of a loaded dataset from its recipe.

    Parameters
    ----------
    dataset : Dataset
    name : str
        Protocol name, used in messages.
    recipe : dict
        The ``[protocols.<name>]`` table of the definition.

    Returns
    -------
    lists : dict of str to ndarray of shape (n,), dtype int64
        ``query``, ``database`` and ``train`` ids, each sorted ascending.
    description : str
        How the lists were drawn, stored in the protocol file.

    Raises
    ------
    ValueError
        If the recipe names an unknown generator.
    DatasetError
        If the dataset cannot supply the requested counts.
    """
    generator = recipe.get("generator", "random")
    if generator not in GENERATORS:
        raise ValueError(
            f"Protocol {name}: unknown generator {generator!r} in {dataset.definition_path}. "
            f"Known generators: {', '.join(sorted(GENERATORS))}."
        )
    function, description = GENERATORS[generator]
    return function(dataset, recipe, name), description


# --------------------------------------------------------------------------------------------
# Protocol files
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Protocol:
    """The contents of one protocol file.

    Attributes
    ----------
    name : str
        Protocol name, for example ``"mirflickr25k-standard"``.
    version : int
        Version of the split. A changed split is a new version.
    dataset : str
        Registered dataset name.
    seed : int
        Seed the generator was called with.
    generator : str
        How the lists were drawn.
    numpy_version : str
        numpy version that generated the lists.
    query, database, train : ndarray of shape (n,), dtype int64
        Item ids, sorted ascending. Train is a subset of database, and query is disjoint from it.
    split_hash : str
        SHA-256 of the id lists, see ``split_hash``.
    path : pathlib.Path or None
        The file it was read from.
    """

    name: str
    version: int
    dataset: str
    seed: int
    generator: str
    numpy_version: str
    query: np.ndarray
    database: np.ndarray
    train: np.ndarray
    split_hash: str
    path: Path | None = None

    def to_json(self):
        """Serialise to the JSON text of a protocol file, one id list a line."""
        header = {
            "protocol": self.name,
            "version": self.version,
            "dataset": self.dataset,
            "seed": self.seed,
            "generator": self.generator,
            "numpy_version": self.numpy_version,
            "counts": {name: len(getattr(self, name)) for name in SPLIT_LISTS},
            "split_hash": self.split_hash,
        }
        lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in header.items()]
        for name in SPLIT_LISTS:
            ids = json.dumps(getattr(self, name).tolist(), separators=(",", ":"))
            lines.append(f"  {json.dumps(name)}: {ids}")
        return "{\n" + ",\n".join(lines) + "\n}\n"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def read_protocol(path):
    """Read a protocol file and verify its counts, list structure and split hash.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    Protocol

    Raises
    ------
    DatasetError
        If the file is missing or not valid JSON, has unknown or missing keys, a count that
        differs from its list, unsorted or overlapping lists, or a split hash that differs from
        the lists. The message names the file, the expected and the found value.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(
            f"Protocol file {path} does not exist. Published protocol files are part of the "
            "repository: restore it from version control."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"Protocol file {path} is not valid JSON: {error}.") from None

    if not isinstance(raw, dict):
        raise DatasetError(f"Protocol file {path}: expected a JSON object, found {type(raw).__name__}.")
    unknown = sorted(set(raw) - set(_PROTOCOL_KEYS))
    if unknown:
        raise DatasetError(f"Protocol file {path}: unknown key {unknown[0]!r}. Allowed keys: {list(_PROTOCOL_KEYS)}.")
    missing = [key for key in _PROTOCOL_KEYS if key not in raw]
    if missing:
        raise DatasetError(f"Protocol file {path}: missing key {missing[0]!r}.")
    for key in ("version", "seed"):
        if not _is_int(raw[key]):
            raise DatasetError(f"Protocol file {path}: {key!r} must be an integer, found {raw[key]!r}.")

    lists = {}
    for name in SPLIT_LISTS:
        values = raw[name]
        if not isinstance(values, list) or not all(_is_int(value) for value in values):
            raise DatasetError(f"Protocol file {path}: {name!r} must be a list of integer item ids.")
        ids = np.asarray(values, dtype=np.int64)
        if np.any(ids[1:] <= ids[:-1]):
            position = int(np.flatnonzero(ids[1:] <= ids[:-1])[0]) + 1
            raise DatasetError(
                f"Protocol file {path}: {name!r} must be sorted ascending without repeats, but "
                f"entry {position} ({ids[position]}) follows {ids[position - 1]}."
            )
        expected = raw["counts"].get(name) if isinstance(raw["counts"], dict) else None
        if expected != len(ids):
            raise DatasetError(
                f"Protocol file {path}: counts.{name} is {expected!r} but the {name!r} list has "
                f"{len(ids)} ids."
            )
        lists[name] = ids

    overlap = np.intersect1d(lists["query"], lists["database"])
    if len(overlap):
        raise DatasetError(
            f"Protocol file {path}: {len(overlap)} ids are both queries and database items "
            f"(first: {overlap[0]}), expected none."
        )
    outside = np.setdiff1d(lists["train"], lists["database"])
    if len(outside):
        raise DatasetError(
            f"Protocol file {path}: {len(outside)} training ids are not in the database "
            f"(first: {outside[0]}), but the training set must be a subset of the database."
        )

    found = split_hash(lists["query"], lists["database"], lists["train"])
    if found != raw["split_hash"]:
        raise DatasetError(
            f"Protocol file {path}: the id lists have split hash {found}, expected "
            f"{raw['split_hash']} as stored in the file. Published protocol files are never "
            "edited: restore it from version control, or publish the changed split as a new version."
        )
    return Protocol(
        name=raw["protocol"],
        version=raw["version"],
        dataset=raw["dataset"],
        seed=raw["seed"],
        generator=raw["generator"],
        numpy_version=raw["numpy_version"],
        split_hash=found,
        path=path,
        **lists,
    )


def write_protocol(protocol, path):
    """Write a protocol file atomically, never replacing a file with different lists.

    Parameters
    ----------
    protocol : Protocol
    path : path-like

    Returns
    -------
    bool
        True if the file was written, False if it already contained the same split hash.

    Raises
    ------
    DatasetError
        If ``path`` exists and contains a different split.
    """
    path = Path(path)
    if path.exists():
        existing = read_protocol(path)
        if existing.split_hash == protocol.split_hash:
            return False
        raise DatasetError(
            f"Protocol file {path} already exists with split hash {existing.split_hash}, but the "
            f"generated split has hash {protocol.split_hash}. Published protocol files are never "
            "edited: raise 'version' and point 'file' to a new file in the dataset definition."
        )

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(protocol.to_json())
        # mkstemp creates the file readable by its owner only, but a repository file is world-readable.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return True


def build_protocol(dataset, name, recipe):
    """Generate protocol ``name`` of a loaded dataset in memory from its recipe.

    Parameters
    ----------
    dataset : Dataset
    name : str
    recipe : dict
        The ``[protocols.<name>]`` table of the definition.

    Returns
    -------
    Protocol
        With ``path`` None.
    """
    lists, description = generate_lists(dataset, name, recipe)
    return Protocol(
        name=name,
        version=recipe["version"],
        dataset=dataset.name,
        seed=recipe["seed"],
        generator=description,
        numpy_version=np.__version__,
        split_hash=split_hash(lists["query"], lists["database"], lists["train"]),
        **lists,
    )


def generate_protocol_file(dataset_name, data_root=None, *, protocol=None, output=None, datasets_dir=None):
    """Generate a protocol from its recipe in the dataset definition and write it.

    Parameters
    ----------
    dataset_name : str
        Registered dataset name.
    data_root : path-like, optional
        Data root with the dataset's metadata. Images need not be present.
    protocol : str, optional
        Protocol name, by default the definition's ``standard_protocol``.
    output : path-like, optional
        Where to write, by default the ``file`` of the protocol's recipe.
    datasets_dir : path-like, optional
        Folder of definition files, by default ``datasets/`` in the repository.

    Returns
    -------
    protocol : Protocol
        The generated protocol.
    path : pathlib.Path
        The file.
    written : bool
        False if the file already contained the identical split.
    """
    dataset = load_dataset(dataset_name, data_root, datasets_dir=datasets_dir)
    name, recipe, default_path = _protocol_recipe(dataset, protocol)
    generated = build_protocol(dataset, name, recipe)
    path = Path(output) if output is not None else default_path
    written = write_protocol(generated, path)
    generated.path = path
    logger.info(
        "%s %s v%d (split hash %s) at %s",
        "Wrote" if written else "Unchanged:",
        name,
        generated.version,
        generated.split_hash,
        path,
    )
    return generated, path, written


# --------------------------------------------------------------------------------------------
# Splits of a loaded dataset
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Split:
    """Query, database and training rows of a dataset under one protocol version.

    Attributes
    ----------
    dataset : str
        Dataset name.
    protocol : str
        Protocol name.
    version : int
        Protocol version.
    seed : int
        Seed that generated the protocol.
    query, database, train : ndarray of shape (n,), dtype int64
        Sorted row indices into the dataset's arrays. Query and database are disjoint and the
        training rows are database rows.
    split_hash : str
        Split hash stored in the published protocol file, also when ``partial`` is True.
    partial : bool
        Whether the lists were restricted to the items whose images are present.
    partial_split_hash : str or None
        Split hash of the restricted id lists when ``partial``, else None.
    n_listed : int
        Items listed by the dataset.
    n_present : int
        Listed items whose image exists.
    protocol_file : pathlib.Path
        The protocol file.
    sample : dict or None
        When the split is a seeded sample of the protocol (see ``sample_split``): the seed, the
        sampled counts and the split hash of the sampled id lists; else None.
    """

    dataset: str
    protocol: str
    version: int
    seed: int
    query: np.ndarray
    database: np.ndarray
    train: np.ndarray
    split_hash: str
    partial: bool
    partial_split_hash: str | None
    n_listed: int
    n_present: int
    protocol_file: Path
    sample: dict | None = None

    def to_record(self):
        """Return the split's identity and counts as a JSON-serialisable dict for run records."""
        record = {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "version": self.version,
            "seed": self.seed,
            "split_hash": self.split_hash,
            "partial": self.partial,
            "n_query": len(self.query),
            "n_database": len(self.database),
            "n_train": len(self.train),
            "n_listed": self.n_listed,
            "n_present": self.n_present,
        }
        if self.partial:
            record["partial_split_hash"] = self.partial_split_hash
        if self.sample is not None:
            record["sample"] = dict(self.sample)
        return record


def sample_split(split, ids, *, n_query, n_database, seed):
    """Draw a seeded sample of a split's queries and database, for quick runs and tests.

    The training rows of the sample are the training rows that fall in the sampled database, so
    the sample keeps the protocol's structure (training inside the database, queries outside).

    Parameters
    ----------
    split : Split
        The protocol's split (possibly restricted to the images present).
    ids : ndarray of shape (n_items,), dtype int64
        The dataset's item ids, to hash the sampled lists.
    n_query, n_database : int
        Sample sizes, at most the split's counts.
    seed : int
        Seed of the sampling.

    Returns
    -------
    Split
        A copy with sampled rows and ``sample`` set.
    """
    for name, role, requested, available in (
        ("n_query", "queries", n_query, len(split.query)),
        ("n_database", "database items", n_database, len(split.database)),
    ):
        if isinstance(requested, bool) or not isinstance(requested, int) or not 1 <= requested <= available:
            raise ValueError(
                f"{name} (the number of sampled {role}, as in --sample QUERIES,DATABASE) must be an "
                f"integer between 1 and {available}, the split's count; got {requested!r}."
            )
    rng = np.random.default_rng(seed)
    query = np.sort(rng.choice(split.query, size=n_query, replace=False))
    database = np.sort(rng.choice(split.database, size=n_database, replace=False))
    train = np.intersect1d(split.train, database)
    if len(train) < 2:
        raise ValueError(
            f"The sampled database of {n_database} items contains {len(train)} training items; "
            "sample a larger database."
        )
    sample = {
        "seed": int(seed),
        "n_query": int(n_query),
        "n_database": int(n_database),
        "n_train": int(len(train)),
        "split_hash": split_hash(ids[query], ids[database], ids[train]),
    }
    return replace(split, query=query, database=database, train=train, sample=sample)


def _protocol_recipe(dataset, protocol):
    definition = dataset.definition
    name = definition["standard_protocol"] if protocol is None else protocol
    protocols = definition["protocols"]
    if name not in protocols:
        raise ValueError(
            f"Unknown protocol {name!r} for dataset {dataset.name!r}. Known protocols: "
            f"{', '.join(sorted(protocols))}."
        )
    recipe = protocols[name]
    return name, recipe, dataset.definition_path.parent / recipe["file"]


def _check_against_recipe(stored, name, recipe, dataset):
    expected = {
        "protocol": name,
        "dataset": dataset.name,
        "version": recipe["version"],
        "seed": recipe["seed"],
        "n_query": recipe["n_query"],
        "n_train": recipe["n_train"],
    }
    found = {
        "protocol": stored.name,
        "dataset": stored.dataset,
        "version": stored.version,
        "seed": stored.seed,
        "n_query": len(stored.query),
        "n_train": len(stored.train),
    }
    if "n_database" in recipe:
        expected["n_database"] = recipe["n_database"]
        found["n_database"] = len(stored.database)
    for key, value in expected.items():
        if found[key] != value:
            raise DatasetError(
                f"Protocol file {stored.path}: {key} is {found[key]!r}, expected {value!r} as "
                f"[protocols.{name}] in {dataset.definition_path} states. Point 'file' to the "
                "file of that version, or fix the recipe."
            )


def _rows_of_ids(dataset, ids, path, list_name):
    """Map item ids to sorted row indices of the dataset, rejecting ids the dataset lacks."""
    order = np.argsort(dataset.ids, kind="stable")
    sorted_ids = dataset.ids[order]
    positions = np.searchsorted(sorted_ids, ids)
    positions = np.minimum(positions, len(sorted_ids) - 1)
    unknown = ids[sorted_ids[positions] != ids]
    if len(unknown):
        raise DatasetError(
            f"Protocol file {path}: {len(unknown)} {list_name} ids are not listed by dataset "
            f"{dataset.name!r} (first: {unknown[0]}), so the protocol belongs to other metadata."
        )
    return np.sort(order[positions]).astype(np.int64)


def _read_or_generate(dataset, name, recipe, path):
    """Read the protocol file, or generate the split in memory when the recipe allows it.

    A recipe with ``generate_on_load = true`` belongs to a dataset whose item ids cannot be
    published without its data (NUS-WIDE). When its file is absent the split is generated from
    the seed and checked against the recipe's ``split_hash`` when the recipe pins one.
    """
    if path.exists() or not recipe.get("generate_on_load", False):
        return read_protocol(path)

    generated = build_protocol(dataset, name, recipe)
    generated.path = path
    pinned = recipe.get("split_hash")
    if pinned is None:
        logger.warning(
            "Protocol %s v%d has no stored file and no pinned split hash, so the generated split "
            "(split hash %s) is not checked. Run `python -m hashbench.data generate %s "
            "--protocol %s` to store it, and pin its split_hash in the definition",
            name, generated.version, generated.split_hash, dataset.name, name,
        )
    elif pinned != generated.split_hash:
        raise DatasetError(
            f"Protocol {name} v{generated.version} generated from {dataset.folder} has split hash "
            f"{generated.split_hash}, expected {pinned} (split_hash in [protocols.{name}] of "
            f"{dataset.definition_path}). The metadata files differ from the ones the protocol "
            "was published with: restore the original files."
        )
    return generated


def load_split(dataset, protocol=None, *, allow_partial=False):
    """Load the split of a dataset under a published protocol.

    Parameters
    ----------
    dataset : Dataset
        A dataset from ``load_dataset``.
    protocol : str, optional
        Protocol name, by default the definition's ``standard_protocol``.
    allow_partial : bool, default=False
        When some listed images are missing, restrict the query, database and training lists to
        the items whose images are present instead of raising. The split then differs from the
        published one and ``Split.partial`` is True.

    Returns
    -------
    Split

    Raises
    ------
    ValueError
        If the protocol name is unknown. The message lists the known protocols.
    DatasetError
        If the protocol file fails verification, does not match its recipe or the dataset, or
        some listed images are missing and ``allow_partial`` is False. With ``allow_partial``,
        if no query, database or training image is present.
    """
    name, recipe, path = _protocol_recipe(dataset, protocol)
    stored = _read_or_generate(dataset, name, recipe, path)
    _check_against_recipe(stored, name, recipe, dataset)

    rows = {list_name: _rows_of_ids(dataset, getattr(stored, list_name), path, list_name) for list_name in SPLIT_LISTS}
    n_covered = len(rows["query"]) + len(rows["database"])
    # A recipe with n_database may leave items out of both lists (CIBHash's CIFAR-10 setting).
    if "n_database" not in recipe and n_covered != dataset.n_items:
        raise DatasetError(
            f"Protocol file {path}: queries and database cover {n_covered:,} items, expected all "
            f"{dataset.n_items:,} items of dataset {dataset.name!r}."
        )

    n_present = dataset.n_present
    partial = n_present < dataset.n_items
    partial_hash = None
    if partial and not allow_partial:
        raise DatasetError(
            f"Found {n_present:,} of the {dataset.n_items:,} images listed by {dataset.name} in "
            f"the data root {dataset.folder.parent}. Protocol {name} v{stored.version} needs all "
            "of them. Pass --allow-partial (allow_partial=True) to run it on the present images "
            "only. The split then differs from the published one and is recorded as partial."
        )
    if partial:
        rows = {list_name: r[dataset.present[r]] for list_name, r in rows.items()}
        empty = [list_name for list_name in SPLIT_LISTS if len(rows[list_name]) == 0]
        if empty:
            raise DatasetError(
                f"None of the {empty[0]} images of protocol {name} is present in "
                f"{dataset.folder}. Found {n_present:,} of {dataset.n_items:,} listed images."
            )
        partial_hash = split_hash(*(dataset.ids[rows[list_name]] for list_name in SPLIT_LISTS))
        logger.info(
            "Protocol %s v%d restricted to the %d present images: %d of %d queries, %d of %d "
            "database items, %d of %d training items",
            name,
            stored.version,
            n_present,
            len(rows["query"]),
            len(stored.query),
            len(rows["database"]),
            len(stored.database),
            len(rows["train"]),
            len(stored.train),
        )

    return Split(
        dataset=dataset.name,
        protocol=name,
        version=stored.version,
        seed=stored.seed,
        query=rows["query"],
        database=rows["database"],
        train=rows["train"],
        split_hash=stored.split_hash,
        partial=partial,
        partial_split_hash=partial_hash,
        n_listed=dataset.n_items,
        n_present=n_present,
        protocol_file=path,
    )
