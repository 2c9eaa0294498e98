"""Random images of any shape, for benchmarks and memory tests (TrainConfig.synthetic)."""

from __future__ import annotations

from pathlib import Path

import torch

from .registry import register_dataset
from .splits import DataSet, Split


@register_dataset("synthetic")
def synthetic(
    data_dir: Path,
    download: bool = False,
    images: int = 1000,
    image_size: int = 32,
    channels: int = 3,
    num_classes: int = 10,
    seed: int = 0,
) -> DataSet:
    """Random uint8 images and labels (train and test of `images` each), for benchmarks."""
    gen = torch.Generator().manual_seed(seed)

    def split():
        return Split(
            torch.randint(0, 256, (images, channels, image_size, image_size), dtype=torch.uint8, generator=gen),
            torch.randint(0, num_classes, (images,), generator=gen),
        )

    return DataSet(split(), split(), num_classes, (0.5,) * channels, (0.29,) * channels)
