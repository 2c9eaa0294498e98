"""Which mean and std a run's batches are normalised with: the data set's own, or ImageNet's.

An ImageNet-pretrained network learnt its first layer on images normalised with ImageNet's
statistics; feeding it CIFAR normalised with CIFAR's own shifts every input it was trained on, so
fine-tuning starts from a network that sees slightly wrong colours. A network trained from scratch
has no such expectation and gets the data set's own statistics.
"""

from __future__ import annotations

from ..errors import ConfigError
from .splits import DataSet

# torchvision's IMAGENET1K_V1 transforms: per RGB channel, of images scaled to [0, 1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalization(data: DataSet, normalize: str, pretrained: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) for TrainConfig's `normalize` ('auto', 'dataset' or 'imagenet') and
    `pretrained`: 'auto' is ImageNet's for a pretrained network, else the data set's own.

    A grey data set is allowed: Batches repeats its channel to RGB before normalising, so each
    copy gets its ImageNet channel's statistics, as torchvision's Grayscale(3) then Normalize do.
    Any other channel count has no RGB to match ImageNet's three values (a ConfigError)."""
    if normalize == "dataset" or (normalize == "auto" and not pretrained):
        return data.mean, data.std
    channels = len(data.mean)
    if channels not in (1, 3):
        raise ConfigError(f"normalize: ImageNet's mean and std are for RGB (or grey) images, not {channels} channels")
    return IMAGENET_MEAN, IMAGENET_STD
