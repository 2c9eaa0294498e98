"""Data sets and tensor-resident batching.

Every data set is loaded once into uint8 image tensors (N, C, H, W) and int64 labels, held on
the training device; batches are cut from them by index and resized to the model's input size
(CIFAR to 224x224 for the ImageNet networks; a model of any size takes them as they are).

Names: cifar10, cifar100 (torchvision's on-disk format), digits (ships with scikit-learn, the
offline default), synthetic (random images of any shape, for benchmarks); their shapes and
summaries are in trainers/catalogue/datasets.py, known without loading anything. Batches are
normalised with the data set's mean and std, or ImageNet's for a pretrained network
(normalize.py). Adding one: docs/extending.md.
"""

from . import cifar, digits, synthetic  # noqa: F401  (each loader file registers on import)
from .batches import Batches
from .normalize import IMAGENET_MEAN, IMAGENET_STD, normalization
from .registry import load_dataset, register_dataset
from .splits import DataSet, Split, hold_out

__all__ = [
    "Batches",
    "DataSet",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Split",
    "hold_out",
    "load_dataset",
    "normalization",
    "register_dataset",
]
