"""scikit-learn's handwritten digits: the offline default (no download, no files of ours).

The images are read straight from the CSV that scikit-learn ships (`sklearn/datasets/data/digits.csv.gz`,
what `sklearn.datasets.load_digits` parses), without importing scikit-learn: its import took 0.8-1.7 s
of every fresh worker's first trial (benchmarks/RESULTS.md, "Short-trial sweep"). The parsed
array is kept for the life of the process (115 KB), so a reused worker's next trial does not read it again.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..catalogue.datasets import digits_test_images
from ..errors import DataNotFoundError
from .registry import register_dataset
from .splits import DataSet, Split

CSV = ("datasets", "data", "digits.csv.gz")  # inside the sklearn package


@functools.cache
def _read() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 images (N, 1, 8, 8) scaled from 0-16 to 0-255, and int64
    labels: `load_digits().images` and `.target` (tests/test_data.py compares them), read-only."""
    package = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if package is None or not package.submodule_search_locations:
        raise DataNotFoundError("the digits data set ships with scikit-learn, which is not installed")
    with gzip.open(Path(package.submodule_search_locations[0], *CSV)) as csv:
        table = np.loadtxt(csv, delimiter=",")  # 64 pixel values (0-16), then the label
    images = np.round(table[:, :-1].reshape(-1, 1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


@register_dataset("digits")
def digits(data_dir: Path, download: bool = False, test_fraction: float = 0.2) -> DataSet:
    """scikit-learn's 1,797 8x8 digits (values 0-16), one channel; a fixed seeded test split
    (seed 0, independent of the run's seed) so every run is scored on the same images."""
    array_images, array_labels = _read()
    images, labels = torch.tensor(array_images), torch.tensor(array_labels)  # copies: a run may not alter the cache
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_test = digits_test_images(test_fraction)
    test, train = order[:n_test], order[n_test:]
    scaled = images.float() / 255
    return DataSet(
        Split(images[train], labels[train]),
        Split(images[test], labels[test]),
        10,
        (scaled.mean().item(),),
        (scaled.std().item(),),
    )
