"""Datasets, their loaders and versioned split protocols.

Load a dataset and its standard split::

    from hashbench.data import load_dataset, load_split

    dataset = load_dataset("mirflickr25k", data_root)
    split = load_split(dataset, allow_partial=True)
    train_tags = dataset.tags[split.train]
"""

from hashbench.data.dataset import (
    Dataset,
    DatasetError,
    dataset_status,
    list_datasets,
    load_dataset,
    register_dataset,
)
from hashbench.data.protocol import Split, load_split, sample_split

__all__ = [
    "Dataset",
    "DatasetError",
    "Split",
    "dataset_status",
    "list_datasets",
    "load_dataset",
    "load_split",
    "sample_split",
    "register_dataset",
]
