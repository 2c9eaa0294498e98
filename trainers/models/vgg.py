"""VGG-16 with BatchNorm, in the compact form commonly used for 32x32 CIFAR images.

Simonyan & Zisserman 2015 ("Very Deep Convolutional Networks for Large-Scale Image
Recognition"), configuration D, plus BatchNorm after every convolution (Ioffe & Szegedy 2015).
After five 2x2 max-pools a 32x32 image is 1x1x512, so the three large fully connected layers
of the ImageNet model are replaced by a single Linear(512, num_classes).

Parameter count on CIFAR-10: 14,728,266.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model
from .resnet import init_weights

# Output channels of each 3x3 convolution; "M" is a 2x2 max-pool (configuration D).
VGG16_CONFIG: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    512, 512, 512, "M",
    512, 512, 512, "M",
)  # fmt: skip


def make_features(config: tuple[int | str, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_channels = 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            # Bias is kept on the convolutions, as in the usual CIFAR VGG; the
            # 14,728,266 figure counts it.
            layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU(inplace=True)]
            in_channels = item
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, config: tuple[int | str, ...], num_classes: int):
        super().__init__()
        self.features = make_features(config)
        widths = [c for c in config if c != "M"]
        # Global pooling is a no-op on 32x32 inputs (already 1x1) but keeps other sizes working.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@register_model("vgg16")
def vgg16(num_classes: int) -> nn.Module:
    """13 conv + BN layers, one linear classifier; 14,728,266 parameters on CIFAR-10."""
    return VGG(VGG16_CONFIG, num_classes)
