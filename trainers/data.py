"""Data sets and tensor-resident batching.

Every data set is loaded once into uint8 image tensors (N, C, H, W) and int64 labels, held on
the training device. Batches are cut from them by index: shuffling is a permutation per epoch,
augmentation (random crop with padding, horizontal flip) and normalisation are tensor ops on the
whole batch, and each batch is resized to the model's input size (8x8 digits to 32x32, CIFAR to
224x224 for the ImageNet networks). No per-sample PIL transform, so the loader never starves a GPU.

Registry keys: cifar10, cifar100 (torchvision's on-disk format), digits (ships with scikit-learn,
the offline default), synthetic (random images of any shape, for benchmarks).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ConfigError


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


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not where the config says."""


_LOADERS: dict[str, Callable[..., DataSet]] = {}


def _register(name: str):
    def add(loader):
        _LOADERS[name] = loader
        return loader

    return add


def list_datasets() -> list[str]:
    return list(_LOADERS)


def load_dataset(name: str, data_dir: Path, download: bool = False, **options) -> DataSet:
    """Load data set `name`; unknown names raise ValueError listing the known ones."""
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(_LOADERS)}")
    return _LOADERS[name](Path(data_dir), download=download, **options)


@dataclass(frozen=True)
class DataShape:
    """What a data set holds, known without loading it (to size a trial before it starts)."""

    images: int  # training plus test images
    channels: int
    side: int  # of the square images, in pixels
    num_classes: int


# (images, channels, side, classes) of the fixed data sets; synthetic's shape is its options.
_SHAPES = {"cifar10": (60000, 3, 32, 10), "cifar100": (60000, 3, 32, 100), "digits": (1797, 1, 8, 10)}


def data_shape(name: str, **options) -> DataShape:
    """The shape of data set `name` as `load_dataset(name, ..., **options)` would load it."""
    if name == "synthetic":
        bound = inspect.signature(_synthetic).bind(None, **options)
        bound.apply_defaults()  # the loader's own defaults
        o = bound.arguments
        return DataShape(2 * o["images"], o["channels"], o["image_size"], o["num_classes"])
    if name not in _SHAPES:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(_LOADERS)}")
    return DataShape(*_SHAPES[name])


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


@_register("cifar10")
def _cifar10(data_dir: Path, download: bool = False) -> DataSet:
    import torchvision

    train, test, classes = _torchvision_cifar(torchvision.datasets.CIFAR10, "cifar-10-batches-py", data_dir, download)
    return DataSet(train, test, classes, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


@_register("cifar100")
def _cifar100(data_dir: Path, download: bool = False) -> DataSet:
    import torchvision

    train, test, classes = _torchvision_cifar(torchvision.datasets.CIFAR100, "cifar-100-python", data_dir, download)
    return DataSet(train, test, classes, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


@_register("digits")
def _digits(data_dir: Path, download: bool = False, test_fraction: float = 0.2) -> DataSet:
    """scikit-learn's 1,797 8x8 digits (values 0-16), one channel; a fixed seeded test split
    (seed 0, independent of the run's seed) so every run is scored on the same images."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_test = round(test_fraction * len(labels))
    test, train = order[:n_test], order[n_test:]
    scaled = images.float() / 255
    return DataSet(
        Split(images[train], labels[train]), Split(images[test], labels[test]), 10, (scaled.mean().item(),), (scaled.std().item(),)
    )


@_register("synthetic")
def _synthetic(
    data_dir: Path, download: bool = False, images: int = 1000, image_size: int = 32, channels: int = 3, num_classes: int = 10, seed: int = 0
) -> DataSet:
    """Random uint8 images and labels (train and test of `images` each), for benchmarks."""
    gen = torch.Generator().manual_seed(seed)

    def split():
        return Split(
            torch.randint(0, 256, (images, channels, image_size, image_size), dtype=torch.uint8, generator=gen),
            torch.randint(0, num_classes, (images,), generator=gen),
        )

    return DataSet(split(), split(), num_classes, (0.5,) * channels, (0.29,) * channels)


def hold_out(split: Split, fraction: float, seed: int = 0) -> tuple[Split, Split | None]:
    """Split `fraction` of the training images off as a validation split. The permutation depends
    on `seed` only (not on the run's seed), so every trial of a sweep holds out the same images."""
    n_val = round(fraction * len(split))
    if n_val == 0:
        return split, None
    if n_val >= len(split):
        raise ConfigError(f"val_fraction: {fraction} leaves no training images out of {len(split)}")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).to(split.labels.device)
    val, train = order[:n_val], order[n_val:]
    return Split(split.images[train], split.labels[train]), Split(split.images[val], split.labels[val])


class Batches:
    """Mini-batches of a Split as normalised float tensors on the split's device.

    `generator` (a CPU torch.Generator) drives shuffling and augmentation; its state is part of
    a checkpoint, so a resumed run draws the same batches as one never interrupted.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        out_size: int,
        shuffle: bool = False,
        augment: bool = False,
        generator: torch.Generator | None = None,
    ):
        if (shuffle or augment) and generator is None:
            raise ValueError("shuffling or augmenting needs a generator")
        self.split, self.batch_size, self.out_size = split, batch_size, out_size
        self.shuffle, self.augment, self.generator = shuffle, augment, generator
        # x / 255 then (x - mean) / std, folded into one multiply-add per pixel; a one-channel
        # mean and std broadcast over the three channels a grey image is expanded to
        mean_t = torch.tensor(mean, device=split.images.device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, device=split.images.device).view(1, -1, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = -mean_t / std_t

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, device = len(self.split), self.split.labels.device
        order = torch.randperm(n, generator=self.generator).to(device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size] if order is not None else slice(start, start + self.batch_size)
            images, labels = self.split.images[index], self.split.labels[index]
            if self.augment:
                images = self._crop_and_flip(images)
            yield self._to_model_input(images), labels

    def _crop_and_flip(self, images: Tensor) -> Tensor:
        """Random crop with zero padding (4 px at 32 px, scaled with the image) and horizontal flip,
        each image drawing its own offsets, in one gather for the whole batch."""
        b, _, h, w = images.shape
        pad = max(1, round(4 * h / 32))
        padded = F.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=self.generator).to(images.device)
        dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=self.generator).to(images.device)
        flip = torch.rand(b, generator=self.generator).lt(0.5).to(images.device)
        rows = dy + torch.arange(h, device=images.device)  # (b, h)
        cols = torch.arange(w, device=images.device)
        cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx  # (b, w), flipped where drawn
        # one gather over the flattened padded planes: index (row * padded width + col)
        flat = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(b, 1, h * w)
        out = padded.flatten(2).gather(2, flat.expand(-1, images.shape[1], -1))
        return out.view(b, images.shape[1], h, w)

    def _to_model_input(self, images: Tensor) -> Tensor:
        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey digits to the RGB input every model takes
        x = x * self._scale + self._shift
        if x.shape[-1] != self.out_size:
            x = F.interpolate(x, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)
        return x.contiguous()
