"""scikit-learn's handwritten digits: the offline default (no download, no files)."""

from __future__ import annotations

from pathlib import Path

import torch

from .registry import register_dataset
from .splits import DataSet, DataShape, Split

IMAGES = 1797  # in scikit-learn's copy


def _test_images(test_fraction: float) -> int:
    return round(test_fraction * IMAGES)


def _shape(test_fraction: float) -> DataShape:
    return DataShape(IMAGES, 1, 8, 10, train_images=IMAGES - _test_images(test_fraction))


@register_dataset("digits", shape=_shape, summary="scikit-learn's 1,797 digits, 8 px grey, 10 classes (offline)")
def digits(data_dir: Path, download: bool = False, test_fraction: float = 0.2) -> DataSet:
    """scikit-learn's 1,797 8x8 digits (values 0-16), one channel; a fixed seeded test split
    (seed 0, independent of the run's seed) so every run is scored on the same images."""
    # imported here, not at the top: a worker that trains on CIFAR never pays scikit-learn's import
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_test = _test_images(test_fraction)
    test, train = order[:n_test], order[n_test:]
    scaled = images.float() / 255
    return DataSet(
        Split(images[train], labels[train]),
        Split(images[test], labels[test]),
        10,
        (scaled.mean().item(),),
        (scaled.std().item(),),
    )
