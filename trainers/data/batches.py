"""Mini-batches cut from a tensor-resident split: shuffling, augmentation, normalisation, resizing.

Every operation is a tensor op on the whole batch, on the split's device, so the loader never
starves a GPU (no per-sample PIL transform).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from .splits import Split


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
        out_size: int | None,  # the model's input side, in pixels; None: the images' own
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
        if self.out_size is not None and x.shape[-1] != self.out_size:
            x = F.interpolate(x, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)
        return x.contiguous()
