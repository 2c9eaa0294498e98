"""The data sets: one entry per data set, with its shape known without loading it.

The shape sizes a trial before it starts (the memory estimate, `sweep validate`'s batch check, the
report's count of test images); a data set shaped by its loader's options has a function of those
options, with the loader's own defaults, which `register_dataset` (trainers/data/registry.py)
checks against the loader's signature. The loaders themselves live in trainers/data/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .entries import Entries

DIGITS_IMAGES = 1797  # in scikit-learn's copy


@dataclass(frozen=True)
class DataShape:
    """What a data set holds, known without loading it (to size a trial before it starts)."""

    images: int  # training plus test images (what the memory estimate holds on the card)
    channels: int
    side: int  # of the square images, in pixels
    num_classes: int
    train_images: int  # of the training split, before the validation images are held out of it


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    shape: DataShape | Callable[..., DataShape]  # fixed, or a function of the loader's options
    summary: str
    options_field: str | None = None  # the TrainConfig field holding the loader's options

    def shape_for(self, **options) -> DataShape:
        """The shape the loader would give with `options`, its defaults filling the rest."""
        return self.shape if isinstance(self.shape, DataShape) else self.shape(**options)


def held_out(images: int, fraction: float) -> int:
    """How many of `images` training images the trainer holds out for validation (`val_fraction`)."""
    return round(fraction * images)


def digits_test_images(test_fraction: float) -> int:
    """The size of digits' fixed test split (trainers/data/digits.py)."""
    return round(test_fraction * DIGITS_IMAGES)


def _digits(test_fraction: float = 0.2) -> DataShape:
    return DataShape(DIGITS_IMAGES, 1, 8, 10, train_images=DIGITS_IMAGES - digits_test_images(test_fraction))


def _synthetic(images: int = 1000, image_size: int = 32, channels: int = 3, num_classes: int = 10, seed: int = 0) -> DataShape:
    return DataShape(2 * images, channels, image_size, num_classes, train_images=images)


_DATASETS = Entries(
    "data set",
    (
        DatasetInfo(
            "cifar10", DataShape(60000, 3, 32, 10, train_images=50000), "CIFAR-10: 50,000 + 10,000 images, 32 px, 10 classes"
        ),
        DatasetInfo(
            "cifar100", DataShape(60000, 3, 32, 100, train_images=50000), "CIFAR-100: 50,000 + 10,000 images, 32 px, 100 classes"
        ),
        DatasetInfo("digits", _digits, "scikit-learn's 1,797 digits, 8 px grey, 10 classes (offline)"),
        DatasetInfo("synthetic", _synthetic, "random images shaped by train.synthetic (benchmarks)", options_field="synthetic"),
    ),
)


def list_datasets() -> list[str]:
    """Names of every data set."""
    return list(_DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    """The entry for `name`; an unknown name raises ValueError listing the known ones."""
    return _DATASETS[name]


def data_shape(name: str, **options) -> DataShape:
    """The shape of data set `name` as its loader would give it with `options`."""
    return get_dataset_info(name).shape_for(**options)
