"""Registry of hashing methods and their declarative definitions.

A method registers itself with ``@register_method("name")`` in its own module under
``hashbench.methods``; importing that package imports every module in it, so adding a method
never edits a central list. Its defaults live in ``methods/<name>.toml``::

    description = "One line for listings"

    [defaults]          # constructor keyword arguments
    n_iter = 50

    [presets.mirflickr25k]   # per-dataset values that replace defaults
    n_iter = 30

    [sweeps]            # grids for parameter studies
    n_iter = [10, 50]
"""

import importlib
import pkgutil
import tomllib
from dataclasses import dataclass, field

from hashbench.paths import METHODS_DIR

# method name -> Hasher subclass
_METHODS = {}


def register_method(name):
    """Class decorator that registers a ``Hasher`` subclass under ``name``."""

    def decorator(cls):
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(
                f"Method name {name!r} is registered twice: by {_METHODS[name].__module__} "
                f"and by {cls.__module__}. Rename one of them."
            )
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorator


def _import_methods():
    import hashbench.methods as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def list_methods():
    """Return the registered method names, sorted."""
    _import_methods()
    return sorted(_METHODS)


def get_method_class(name):
    """Return the ``Hasher`` subclass registered under ``name``."""
    _import_methods()
    if name not in _METHODS:
        raise ValueError(
            f"Unknown method {name!r}. Registered methods: {', '.join(sorted(_METHODS))}. "
            "Run `hashbench methods` to list them."
        )
    return _METHODS[name]


@dataclass
class MethodDefinition:
    """The contents of ``methods/<name>.toml``."""

    name: str
    description: str
    defaults: dict
    presets: dict = field(default_factory=dict)
    sweeps: dict = field(default_factory=dict)
    path: object = None


def load_method_definition(name, *, methods_dir=None):
    """Read and validate ``methods/<name>.toml`` against the method's constructor."""
    cls = get_method_class(name)
    path = (methods_dir or METHODS_DIR) / f"{name}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"Method {name!r} has no definition file: {path} does not exist.")
    with open(path, "rb") as handle:
        try:
            raw = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path} is not valid TOML: {error}") from None

    allowed_top = {"description", "defaults", "presets", "sweeps"}
    unknown = set(raw) - allowed_top
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)}; allowed: {sorted(allowed_top)}.")
    params = set(cls.get_param_names()) - {"n_bits", "seed"}

    def check_keys(table, where):
        bad = set(table) - params
        if bad:
            raise ValueError(
                f"{path}: unknown parameter(s) {sorted(bad)} in [{where}]; "
                f"{cls.__name__} accepts {sorted(params)}."
            )

    defaults = raw.get("defaults", {})
    check_keys(defaults, "defaults")
    presets = raw.get("presets", {})
    for dataset, table in presets.items():
        check_keys(table, f"presets.{dataset}")
    sweeps = raw.get("sweeps", {})
    check_keys(sweeps, "sweeps")
    return MethodDefinition(
        name=name,
        description=raw.get("description", cls.description),
        defaults=defaults,
        presets=presets,
        sweeps=sweeps,
        path=path,
    )


def parse_override(text):
    """Parse one ``key=value`` override; the value is read as a TOML value, else as a string."""
    if "=" not in text:
        raise ValueError(f"Invalid override {text!r}: expected key=value, for example --set n_iter=20.")
    key, value = text.split("=", 1)
    key = key.strip()
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key, parsed


def resolve_params(name, dataset, overrides=None):
    """Merge defaults, the dataset preset and overrides into constructor keyword arguments.

    Parameters
    ----------
    name : str
        Registered method name.
    dataset : str
        Dataset name, which selects ``[presets.<dataset>]``.
    overrides : dict, optional
        Values that replace both (from ``--set key=value``).

    Returns
    -------
    dict
        Keyword arguments for the method's constructor, without ``n_bits`` and ``seed``.
    """
    definition = load_method_definition(name)
    params = dict(definition.defaults)
    params.update(definition.presets.get(dataset, {}))
    overrides = overrides or {}
    cls = get_method_class(name)
    allowed = set(cls.get_param_names()) - {"n_bits", "seed"}
    for key, value in overrides.items():
        if key not in allowed:
            raise ValueError(
                f"Unknown parameter {key!r} for method {name!r}. Valid parameters: "
                f"{', '.join(sorted(allowed))}."
            )
        if key in params:
            _check_override_type(name, key, value, params[key])
        params[key] = value
    return params


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number"}


def _check_override_type(method, key, value, default):
    """Reject an override whose type cannot stand in for the default's, before any work starts.

    Ranges are checked by the method itself when it fits.
    """
    expected = type(default)
    if expected is bool:
        accepted = isinstance(value, bool)
    elif expected is int:
        accepted = isinstance(value, int) and not isinstance(value, bool)
    elif expected is float:
        accepted = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        return
    if not accepted:
        raise ValueError(
            f"Parameter {key!r} of method {method!r} takes {_TYPE_NAMES[expected]} (default "
            f"{default!r}), got {value!r}. Pass for example --set {key}={default!r}."
        )


def make_hasher(name, *, n_bits, seed, dataset, overrides=None):
    """Construct a method with its resolved parameters."""
    params = resolve_params(name, dataset, overrides)
    return get_method_class(name)(n_bits=n_bits, seed=seed, **params)
