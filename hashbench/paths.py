"""Locations of the declarative definitions and of the default data and run folders."""

import os
from pathlib import Path

#: Repository root; ``methods/`` and ``datasets/`` beside the package hold the definitions.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

METHODS_DIR = PROJECT_ROOT / "methods"
DATASETS_DIR = PROJECT_ROOT / "datasets"

#: Environment variable that names the data root.
DATA_ROOT_ENV = "HASHBENCH_DATA"


def default_data_root():
    """Return the data root: ``$HASHBENCH_DATA`` when set, else ``./data``."""
    return Path(os.environ.get(DATA_ROOT_ENV) or "data")
