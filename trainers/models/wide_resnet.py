"""Wide residual networks, WRN-d-k (Zagoruyko & Komodakis 2016, "Wide Residual Networks").

A CIFAR ResNet of three stages whose widths 16, 32, 64 are multiplied by k, built from
pre-activation basic blocks (He et al. 2016, "Identity Mappings in Deep Residual Networks"):
BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3. Depth d counts the stem conv, two convs per block
and the classifier, d = 6n + 4 with n blocks per stage (the 1x1 shortcut convs are not
counted). WRN-16-8 and WRN-28-10 are the CIFAR benchmarks of the SAM paper
(Foret et al. 2021, Table 1).

Parameter counts: wrn16_8 10,961,370 (CIFAR-10), 11,007,540 (CIFAR-100);
wrn28_10 36,479,194 (CIFAR-10), 36,536,884 (CIFAR-100).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model
from .resnet import init_weights


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class WideBasicBlock(nn.Module):
    """Pre-activation block; dropout sits between the two convolutions (Sec. 2.4 of the WRN paper)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        self.pre_act = nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU(inplace=True))
        self.residual = nn.Sequential(
            _conv3x3(in_planes, planes, stride),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            _conv3x3(planes, planes),
        )
        # A 1x1 projection only where the shape changes; it reads the pre-activated input,
        # as the residual branch does.
        self.projection = (
            nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False) if stride != 1 or in_planes != planes else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.pre_act(x)
        shortcut = x if self.projection is None else self.projection(activated)
        return self.residual(activated) + shortcut


class WideResNet(nn.Module):
    def __init__(self, depth: int, width: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = (16 * width, 32 * width, 64 * width)
        self.stem = _conv3x3(3, 16)
        blocks: list[nn.Module] = []
        in_planes = 16
        for planes, stride in zip(widths, (1, 2, 2)):
            for i in range(n):
                blocks.append(WideBasicBlock(in_planes, planes, stride if i == 0 else 1, dropout))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        # Pre-activation blocks end on a conv, so the head needs its own BN-ReLU.
        self.head = nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(in_planes, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.head(self.blocks(self.stem(x))), 1))


@register_model("wrn16_8")
def wrn16_8(num_classes: int, dropout: float = 0.0) -> nn.Module:
    """n = 2 blocks per stage, widths 128/256/512; 10,961,370 parameters on CIFAR-10."""
    return WideResNet(16, 8, num_classes, dropout)


@register_model("wrn28_10")
def wrn28_10(num_classes: int, dropout: float = 0.0) -> nn.Module:
    """n = 4 blocks per stage, widths 160/320/640; 36,479,194 parameters on CIFAR-10."""
    return WideResNet(28, 10, num_classes, dropout)
