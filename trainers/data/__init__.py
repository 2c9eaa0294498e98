"""Data sets and tensor-resident batching.

Every data set is loaded once into uint8 image tensors (N, C, H, W) and int64 labels, held on
the training device; batches are cut from them by index and resized to the model's input size
(8x8 digits to 32x32, CIFAR to 224x224 for the ImageNet networks).

Registry keys: cifar10, cifar100 (torchvision's on-disk format), digits (ships with scikit-learn,
the offline default), synthetic (random images of any shape, for benchmarks). Adding one:
docs/extending.md.
"""

from . import cifar, digits, synthetic  # noqa: F401  (each loader file registers on import)
from .batches import Batches
from .registry import DatasetInfo, data_shape, get_dataset_info, list_datasets, load_dataset, register_dataset
from .splits import DataSet, DataShape, Split, held_out, hold_out

__all__ = [
    "Batches",
    "DataSet",
    "DataShape",
    "DatasetInfo",
    "Split",
    "data_shape",
    "get_dataset_info",
    "held_out",
    "hold_out",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]
