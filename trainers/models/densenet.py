"""DenseNet-121 (DenseNet-BC), in the form commonly used for 32x32 CIFAR images.

Huang et al. 2017 ("Densely Connected Convolutional Networks"): every layer in a dense block
receives the concatenation of all earlier feature maps in that block and adds `growth_rate`
new channels. The "BC" variant uses a 1x1 bottleneck (to 4 * growth_rate channels) before
each 3x3 convolution and halves the channel count at every transition (compression 0.5).

This keeps the ImageNet DenseNet-121 block sizes [6, 12, 24, 16] and growth rate 32, with a
single 3x3 stem of 2 * growth_rate channels and no max-pool (the CIFAR stem of Sec. 3 of the
paper); three transitions take 32x32 maps down to 4x4.

Parameter count on CIFAR-10: 6,956,298.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .registry import register_model
from .resnet import init_weights


def _bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    # Pre-activation ordering (BN-ReLU-conv), as in the paper's composite function H_l.
    return [
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
    ]


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (4k channels), BN-ReLU-3x3 conv (k channels); output appended to the input."""

    def __init__(self, in_channels: int, growth_rate: int):
        super().__init__()
        self.new_features = nn.Sequential(
            *_bn_relu_conv(in_channels, 4 * growth_rate, 1),
            *_bn_relu_conv(4 * growth_rate, growth_rate, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.new_features(x), x], dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv to compress channels, then 2x2 average pooling to halve the resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(*_bn_relu_conv(in_channels, out_channels, 1), nn.AvgPool2d(2))


class DenseNet(nn.Module):
    def __init__(
        self,
        block_sizes: tuple[int, ...],
        num_classes: int,
        growth_rate: int = 32,
        reduction: float = 0.5,
    ):
        super().__init__()
        channels = 2 * growth_rate
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1, bias=False)]
        for i, size in enumerate(block_sizes):
            for _ in range(size):
                layers.append(DenseLayer(channels, growth_rate))
                channels += growth_rate
            if i < len(block_sizes) - 1:  # no transition after the last block
                compressed = int(math.floor(channels * reduction))
                layers.append(Transition(channels, compressed))
                channels = compressed
        # The last block's output is not followed by a transition, so it still needs BN-ReLU.
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model("densenet121")
def densenet121(num_classes: int, growth_rate: int = 32) -> nn.Module:
    """Blocks [6, 12, 24, 16], growth rate 32, compression 0.5; 6,956,298 parameters on CIFAR-10."""
    return DenseNet((6, 12, 24, 16), num_classes, growth_rate=growth_rate)
