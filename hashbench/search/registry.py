"""Registry of search backends by name.

A backend registers itself with ``@register_backend("name")`` in its own module under
``hashbench.search.backends``. The lookups below import every module of that package first, so
adding a backend never edits a central list.
"""

import importlib
import pkgutil

# backend name -> SearchIndex subclass
_BACKENDS = {}


def register_backend(name):
    """Class decorator that registers a ``SearchIndex`` subclass under ``name``."""

    def decorator(cls):
        if name in _BACKENDS and _BACKENDS[name] is not cls:
            raise ValueError(
                f"Search backend name {name!r} is registered twice: by "
                f"{_BACKENDS[name].__module__} and by {cls.__module__}. Rename one of them."
            )
        cls.name = name
        _BACKENDS[name] = cls
        return cls

    return decorator


def _import_backends():
    import hashbench.search.backends as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def list_backends():
    """Return the registered backend names, sorted, including unavailable ones."""
    _import_backends()
    return sorted(_BACKENDS)


def get_backend_class(name):
    """Return the ``SearchIndex`` subclass registered under ``name``.

    Raises
    ------
    ValueError
        If no backend has that name; the message lists the registered names.
    """
    _import_backends()
    if name not in _BACKENDS:
        raise ValueError(
            f"Unknown search backend {name!r}. Registered backends: {', '.join(sorted(_BACKENDS))}."
        )
    return _BACKENDS[name]


def make_index(name, **params):
    """Construct the backend ``name`` with keyword parameters (for example ``threads=1``).

    Raises
    ------
    ValueError
        If the name is unknown.
    ImportError
        If the backend needs a package that is not installed; the message names it and the install command.
    """
    cls = get_backend_class(name)
    reason = cls.unavailable_reason()
    if reason is not None:
        raise ImportError(f"Search backend {name!r} is unavailable: {reason}")
    return cls(**params)
