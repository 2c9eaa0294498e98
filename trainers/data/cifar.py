"""CIFAR-10 and CIFAR-100 in torchvision's on-disk format (the paper's data sets, Section 5)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DataNotFoundError
from .registry import register_dataset
from .splits import DataSet, Split


def _torchvision_cifar(cls, folder: str, data_dir: Path, download: bool) -> tuple[Split, Split, int]:
    # torchvision checks every file's md5 even without download: a corrupt copy is caught here.
    try:
        parts = [cls(root=str(data_dir), train=train, download=download) for train in (True, False)]
    except RuntimeError as err:
        raise DataNotFoundError(
            f"{cls.__name__} not found or corrupted in {data_dir / folder} ({err}); "
            f"set download: true (needs network) or put the python-format archive's contents there"
        ) from None
    splits = [
        Split(torch.from_numpy(p.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(p.targets, dtype=torch.int64))
        for p in parts
    ]
    return splits[0], splits[1], len(parts[0].classes)


@register_dataset("cifar10")
def cifar10(data_dir: Path, download: bool = False) -> DataSet:
    import torchvision  # optional for the trainers, as in trainers/models/torchvision_nets.py

    train, test, classes = _torchvision_cifar(torchvision.datasets.CIFAR10, "cifar-10-batches-py", data_dir, download)
    return DataSet(train, test, classes, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


@register_dataset("cifar100")
def cifar100(data_dir: Path, download: bool = False) -> DataSet:
    import torchvision

    train, test, classes = _torchvision_cifar(torchvision.datasets.CIFAR100, "cifar-100-python", data_dir, download)
    return DataSet(train, test, classes, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
