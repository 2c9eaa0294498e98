"""ResNet-18 and ResNet-50 in the form commonly used for 32x32 CIFAR images.

He et al. 2016 ("Deep Residual Learning for Image Recognition") designed these stacks for
224x224 ImageNet inputs, with a 7x7 stride-2 stem followed by a max-pool. On 32x32 images that
stem would shrink the feature map to 8x8 before the first residual stage, so the CIFAR variant
keeps the four ImageNet stages (64, 128, 256, 512 planes) but replaces the stem with a single
3x3 stride-1 convolution and drops the max-pool. The last stage then sees 4x4 maps.

Parameter counts on CIFAR-10: resnet18 11,173,962 and resnet50 23,520,842.

Reusable pieces for variants (e.g. a ResNet-18 with an attention block after a stage):
`BasicBlock`, `Bottleneck`, `make_stage(block, in_planes, planes, num_blocks, stride)`,
and `ResNet(block, layers, num_classes)`, whose stages are `layer1`..`layer4`
(widths in a model's `stage_planes`, output channels of stage i: `stage_planes[i] * block.expansion`).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


def _conv_bn(in_planes: int, out_planes: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    # Convolutions followed by BatchNorm carry no bias: BN's shift makes it redundant.
    conv = nn.Conv2d(in_planes, out_planes, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
    return [conv, nn.BatchNorm2d(out_planes)]


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    """Identity when shapes match, else a strided 1x1 projection (option B of He et al. 2016)."""
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(in_planes, out_planes, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.residual = nn.Sequential(
            *_conv_bn(in_planes, planes, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(planes, out_planes, 3),
        )
        self.shortcut = _shortcut(in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand by 4 (ResNet-50 and deeper); the stride sits on the 3x3."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.residual = nn.Sequential(
            *_conv_bn(in_planes, planes, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(planes, out_planes, 1),
        )
        self.shortcut = _shortcut(in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


def make_stage(block: type[nn.Module], in_planes: int, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
    """`num_blocks` blocks; only the first one changes resolution (stride) and width.

    The stage outputs `planes * block.expansion` channels.
    """
    blocks = [block(in_planes, planes, stride)]
    blocks += [block(planes * block.expansion, planes, 1) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


def init_weights(model: nn.Module) -> None:
    """He (kaiming) init for convolutions, BN as identity (weight 1, bias 0); Linear keeps PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet(nn.Module):
    """CIFAR ResNet: 3x3 stem, four stages (strides 1, 2, 2, 2), global average pool, linear head."""

    def __init__(self, block: type[nn.Module], layers: list[int] | tuple[int, ...], num_classes: int, width: int = 64):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet needs 4 stage depths, got {layers}")
        if width < 1:
            raise ValueError(f"ResNet width must be >= 1, got {width}")
        # `width` scales every stage (64 is the paper's network; smaller ones for CPU runs)
        self.stage_planes = tuple(width * 2**i for i in range(4))
        self.stem = nn.Sequential(*_conv_bn(3, width, 3), nn.ReLU(inplace=True))
        in_planes = width
        for i, (planes, depth, stride) in enumerate(zip(self.stage_planes, layers, (1, 2, 2, 2)), start=1):
            setattr(self, f"layer{i}", make_stage(block, in_planes, planes, depth, stride))
            in_planes = planes * block.expansion
        self.num_features = in_planes
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last-stage feature map, before pooling."""
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


@register_model("resnet18")
def resnet18(num_classes: int, width: int = 64) -> nn.Module:
    """BasicBlock x [2, 2, 2, 2]; 11,173,962 parameters on CIFAR-10 at width 64 (the paper's)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, width)


@register_model("resnet50")
def resnet50(num_classes: int) -> nn.Module:
    """Bottleneck x [3, 4, 6, 3]; 23,520,842 parameters on CIFAR-10."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)
