"""Data sets and tensor-resident batching.

Every data set is loaded once into uint8 image tensors (N, C, H, W) and int64 labels, held on
the training device; batches are cut from them by index and resized to the model's input size
(CIFAR to 224x224 for the ImageNet networks; a model of any size takes them as they are).

Registry keys: cifar10, cifar100 (torchvision's on-disk format), digits (ships with scikit-learn,
the offline default), synthetic (random images of any shape, for benchmarks). Batches are
normalised with the data set's mean and std, or ImageNet's for a pretrained network
(normalize.py). Adding one: docs/extending.md.
"""

from . import cifar, digits, synthetic  # noqa: F401  (each loader file registers on import)
from .batches import Batches
from .normalize import IMAGENET_MEAN, IMAGENET_STD, normalization
from .registry import DatasetInfo, data_shape, get_dataset_info, list_datasets, load_dataset, register_dataset
from .splits import DataSet, DataShape, Split, held_out, hold_out

__all__ = [
    "Batches",
    "DataSet",
    "DataShape",
    "DatasetInfo",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Split",
    "data_shape",
    "get_dataset_info",
    "held_out",
    "hold_out",
    "list_datasets",
    "load_dataset",
    "normalization",
    "register_dataset",
]
