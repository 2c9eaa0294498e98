"""ResNet-18 with a channel pixel attention (CPA) layer in every block: the paper's `Resnet18_CPA`.

"Update in Unit Gradient" (Tables 2-3) lists `Resnet18_CPA (~11.71M)` beside `Resnet18 (~11.17M)`
and says only that "CPA layers [are] adding in ResNet18", citing UPANets (Tseng et al. 2021,
arXiv:2103.08640). We could not find its code: there is no `Resnet18_CPA` / ResNet-with-CPA file
in the authors' repositories (github.com/hanktseng131415go: UPANets, PUGD) nor elsewhere in the
public code we could search. So this is a reconstruction, and it says where it chooses:

* The ResNet-18 is the usual CIFAR one (kuangliu/pytorch-cifar, which the authors' repositories
  acknowledge): 3x3 stem with 64 channels, no max-pool, [2, 2, 2, 2] basic blocks of 64-512
  channels, 1x1-conv projection shortcuts. With 10 classes it has 11,173,962 parameters, the
  paper's "Resnet18 (~11.17M)".
* Each basic block gets one CPA, embedded "after any CNNs" as the authors' comment on CPA puts it
  (`models/upanets.py` in their PUGD repository):
  a fully-connected map across the channels of every pixel of the block's input, BatchNorm'd,
  added to the output of the block's two convolutions, then a LayerNorm over (C, H, W) without
  affine weights. The block's ordinary shortcut is added after the LayerNorm and then the ReLU,
  the way a UPANets block adds its learned shortcut after CPA's LayerNorm. In the stride-2 blocks
  the input is average-pooled by 2 first, so the map runs at the output resolution.

That adds in*out + 3*out parameters per block (the map's weight and bias, BatchNorm's scale and
shift): 530,048 in all, so 11,704,010 with 10 classes, 0.05% under the paper's 11.71M. The
paper's ~0.54M over ResNet-18 is about one such layer per block; also giving the stride-2 blocks
UPANets' second, shortcut channel map would make it 11.88M, 1.4% over. Where the layer sits in the
block (before the shortcut is added), the LayerNorm and the pooling are our reading, not checked
against the authors' code: other placements with the same layers have the same count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model


class _ChannelPixelAttention(nn.Module):
    """out = LN(features + BN(W x)), W a channel-wise linear map at every pixel (a 1x1 conv).

    `x` is the block's input, pooled to the resolution of `features` when the block strides.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.mix = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=True)  # = Linear over channels
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        out = features + self.bn(self.mix(self.pool(x)))
        return F.layer_norm(out, out.shape[1:])  # over (C, H, W), no learned affine, as in UPANets


class _BasicBlockCPA(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, fused with the input by CPA, plus the ResNet shortcut, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.cpa = _ChannelPixelAttention(in_channels, out_channels, stride)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.cpa(x, self.convs(x)) + self.shortcut(x))


class ResNet18CPA(nn.Module):
    """CIFAR ResNet-18 (32x32 input, no stem down-sampling) built from CPA basic blocks."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        )
        blocks, channels = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [_BasicBlockCPA(channels, width, stride), _BasicBlockCPA(width, width, 1)]
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        return self.classifier(out.mean(dim=(2, 3)))  # global average pool (4x4 on CIFAR)


@register_model("resnet18_cpa")
def resnet18_cpa(num_classes: int) -> nn.Module:
    """The paper's `Resnet18_CPA`, reconstructed (see the module docstring for what is assumed).

    11,704,010 parameters with 10 classes (11,750,180 with 100); the paper gives ~11.71M.
    """
    return ResNet18CPA(num_classes)
