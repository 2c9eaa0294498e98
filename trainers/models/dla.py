"""Deep Layer Aggregation (DLA), the CIFAR version from the widely used "pytorch-cifar" collection.

Yu et al. 2018 ("Deep Layer Aggregation") merge features across depths with learned
aggregation nodes instead of only a final skip. This is the 32x32 variant: a three-conv
stem (16, 16, 32 channels, all stride 1), then four aggregation trees of residual
BasicBlocks (64, 128, 256, 512 channels; the last three halve the resolution), global
average pooling and a linear head.

A tree of level 1 is two blocks in series whose outputs a root node merges. A tree of
level L > 1 (hierarchical deep aggregation, Sec. 3.2 of the paper) chains subtrees of
levels L-1 .. 1, then two blocks, and its root merges every one of those outputs plus a
"previous root" block applied to the tree's input - L + 2 inputs in all.

Parameter count on CIFAR-10: 16,291,402.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model
from .resnet import BasicBlock, init_weights


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Root(nn.Module):
    """Aggregation node: concatenate its inputs along channels, then 1x1 conv-BN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.merge = _conv_bn_relu(in_channels, out_channels, 1)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.merge(torch.cat(xs, dim=1))


class Tree(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, level: int, stride: int = 1, block=BasicBlock):
        super().__init__()
        if level < 1:
            raise ValueError(f"tree level must be >= 1, got {level}")
        # Only the first unit on the input path sees in_channels and the stride.
        self.prev_root = block(in_channels, out_channels, stride) if level > 1 else None
        self.subtrees = nn.ModuleList(
            Tree(in_channels if i == 0 else out_channels, out_channels, sub_level, stride if i == 0 else 1, block)
            for i, sub_level in enumerate(range(level - 1, 0, -1))
        )
        first_in, first_stride = (out_channels, 1) if level > 1 else (in_channels, stride)
        self.left = block(first_in, out_channels, first_stride)
        self.right = block(out_channels, out_channels, 1)
        num_inputs = level + 2 if level > 1 else 2
        self.root = Root(num_inputs * out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.prev_root(x)] if self.prev_root is not None else []
        for subtree in self.subtrees:
            x = subtree(x)
            outputs.append(x)
        x = self.left(x)
        outputs.append(x)
        outputs.append(self.right(x))
        return self.root(outputs)


class DLA(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.stem = nn.Sequential(
            _conv_bn_relu(3, 16, 3),
            _conv_bn_relu(16, 16, 3),
            _conv_bn_relu(16, 32, 3),
        )
        self.trees = nn.Sequential(
            Tree(32, 64, level=1, stride=1),
            Tree(64, 128, level=2, stride=2),
            Tree(128, 256, level=2, stride=2),
            Tree(256, 512, level=1, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.trees(self.stem(x))), 1))


@register_model("dla")
def dla(num_classes: int) -> nn.Module:
    """Four aggregation trees (levels 1, 2, 2, 1); 16,291,402 parameters on CIFAR-10."""
    return DLA(num_classes)
