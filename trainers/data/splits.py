"""A data set in memory: uint8 image tensors and int64 labels, and the held-out validation split."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..catalogue.datasets import held_out
from ..errors import ConfigError


@dataclass
class Split:
    images: Tensor  # uint8, (N, C, H, W)
    labels: Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class DataSet:
    train: Split
    test: Split
    num_classes: int
    mean: tuple[float, ...]  # per channel, of images scaled to [0, 1]
    std: tuple[float, ...]


def hold_out(split: Split, fraction: float, seed: int = 0) -> tuple[Split, Split | None]:
    """Split `fraction` of the training images off as a validation split. The permutation depends
    on `seed` only (not on the run's seed), so every trial of a sweep holds out the same images."""
    n_val = held_out(len(split), fraction)
    if n_val == 0:
        return split, None
    if n_val >= len(split):
        raise ConfigError(f"val_fraction: {fraction} leaves no training images out of {len(split)}")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).to(split.labels.device)
    val, train = order[:n_val], order[n_val:]
    return Split(split.images[train], split.labels[train]), Split(split.images[val], split.labels[val])
