"""UPANets (Tseng et al., "UPANets: Learning from the Universal Pixel Attention Networks",
arXiv:2103.08640, Entropy 24(9) 1243, 2022): the `UPA16` / `UPA64` rows of the paper's Tables 2-3.

Rebuilt from the authors' public code, github.com/hanktseng131415go/UPANets, file
`models/upanets.py` (the same file ships unchanged in their PUGD repository, the optimizer paper
that followed "Update in Unit Gradient"). Layer shapes, block counts and the order of operations
follow that file, so the parameter counts below equal what `UPANets(f, c, 1, 32)` from it gives;
the code itself is written afresh (no einops: channel-wise linear maps are 1x1 convolutions).

The pieces, in the UPANets paper's vocabulary (section numbers of the Entropy version):

* CPA, channel pixel attention (paper Sec. 3.1): one fully-connected map across the channels of
  every pixel, BatchNorm'd and added to the output of the block's convolutions, then a LayerNorm
  over (C, H, W) without affine weights. Blocks that change resolution or start a stage add a
  second channel map of the block's *input* after the LayerNorm (a learned shortcut), and the
  downsampling block average-pools by 2 at the very end (its convolutions run at full resolution).
* UPA block (Sec. 3.2-3.3): conv3x3 -> BN -> ReLU -> conv3x3 -> BN -> ReLU, widening to twice the
  block's output channels in between, followed by CPA. "Dense" blocks concatenate their input to
  their output, DenseNet style.
* A stage ("UPA layer module"): one block at the stage width P (the stride-2 one for stages 2-4),
  then 4 dense blocks of P/4 channels each, so every stage ends at 2P channels. (The authors' loop
  appends to the list it iterates over, which is what yields 1 + 4 blocks per stage; the Entropy
  paper's Appendix A likewise lists "UPA Block 0" followed by "UPA Block 1~4d".)
* SPA, spatial pixel attention (Sec. 3.4): a Linear(H*W -> 1) over each channel's flattened map, a
  learned pooling; the head adds it to global average pooling.
* Extreme connection (Sec. 3.5): the embedding and all four stages are pooled that way, each is
  LayerNorm'd, and the five vectors are concatenated (f + 2f + 4f + 8f + 16f = 31f channels) into
  BatchNorm1d -> Linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model


def _pixel_linear(in_channels: int, out_channels: int) -> nn.Conv2d:
    """The authors' `nn.Linear(in, out)` applied at every pixel, written as a 1x1 convolution.

    Same weights, bias and default initialisation (both use fan_in = in_channels), without the
    two layout transposes the channel-last Linear needs.
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=True)


def _layer_norm_all_but_batch(x: torch.Tensor) -> torch.Tensor:
    # UPANets normalises each sample over all of (C, H, W), with no learned scale or shift.
    return F.layer_norm(x, x.shape[1:])


class ChannelPixelAttention(nn.Module):
    """CPA: out = LN(features + BN(W x)) [+ BN(W' x)] [then avg-pool 2], x the block's input.

    `features` is what the block's convolutions made of `x`: same height and width as `x`,
    `out_channels` channels. `shortcut` adds the second channel map W' (used by the embedding and
    the first block of stage 1); `downsample` adds it too and halves the resolution.
    """

    def __init__(self, in_channels: int, out_channels: int, *, shortcut: bool = False, downsample: bool = False):
        super().__init__()
        self.mix = _pixel_linear(in_channels, out_channels)
        self.mix_bn = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if shortcut or downsample:
            self.shortcut = nn.Sequential(_pixel_linear(in_channels, out_channels), nn.BatchNorm2d(out_channels))
        self.pool = nn.AvgPool2d(2) if downsample else None

    def forward(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        out = _layer_norm_all_but_batch(features + self.mix_bn(self.mix(x)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # added after the LayerNorm, as in the authors' code
        if self.pool is not None:
            out = self.pool(out)
        return out


class UPABlock(nn.Module):
    """Two 3x3 convolutions (widened 2x in between) fused with their input by CPA.

    With `dense=True` the block's input is concatenated in front of its output, so the block adds
    `out_channels` channels to the running width instead of replacing it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dense: bool = False,
        shortcut: bool = False,
        downsample: bool = False,
    ):
        super().__init__()
        hidden = 2 * out_channels
        # stride 1 throughout: a downsampling block pools inside CPA, after the attention
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        self.cpa = ChannelPixelAttention(in_channels, out_channels, shortcut=shortcut, downsample=downsample)
        self.dense = dense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.cpa(x, self.convs(x))
        return torch.cat([x, out], dim=1) if self.dense else out


class SpatialPixelAttention(nn.Module):
    """SPA: one learned weight per pixel position (plus a bias), shared by all channels.

    Maps (B, C, H, W) to (B, C): a learnable alternative to global average pooling.
    """

    def __init__(self, side: int):
        super().__init__()
        self.side = side
        # Its bias shifts every channel equally and the head's LayerNorm removes that again; it is
        # kept so the parameter count stays the authors'.
        self.weigh = nn.Linear(side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.side, self.side):
            raise ValueError(f"SPA built for {self.side}x{self.side} maps, got {tuple(x.shape[-2:])}")
        return self.weigh(x.flatten(2)).squeeze(-1)


class UPANet(nn.Module):
    """UPANets with `filters` base channels (f): stages of width f, 2f, 4f, 8f at 32, 16, 8, 4 px.

    `dense_blocks` is the number of concatenating blocks per stage (4 in the authors' code,
    `UPANets(f, c, block=1)`); the stage width must be divisible by it.
    """

    def __init__(self, filters: int, num_classes: int, *, img_size: int = 32, dense_blocks: int = 4):
        super().__init__()
        if img_size % 8:
            raise ValueError(f"img_size must be divisible by 8 (three halvings), got {img_size}")
        if filters % dense_blocks:
            raise ValueError(f"filters ({filters}) must be divisible by dense_blocks ({dense_blocks})")
        f = filters
        # stem: two 3x3 convolutions (3 -> 2f -> f), fused with a CPA embedding of the raw pixels
        self.root = nn.Sequential(
            nn.Conv2d(3, 2 * f, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(2 * f),
            nn.ReLU(),
            nn.Conv2d(2 * f, f, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(f),
            nn.ReLU(),
        )
        self.embed = ChannelPixelAttention(3, f, shortcut=True)

        stages, width, stage_out = [], f, []
        for index, stage_width in enumerate((f, 2 * f, 4 * f, 8 * f)):
            stage, width = self._make_stage(width, stage_width, dense_blocks, downsample=index > 0)
            stages.append(stage)
            stage_out.append(width)
        self.stages = nn.ModuleList(stages)

        # extreme connection: pool the embedding and every stage output, at their own resolution
        sides = (img_size, img_size, img_size // 2, img_size // 4, img_size // 8)
        self.spa = nn.ModuleList(SpatialPixelAttention(side) for side in sides)
        head_width = f + sum(stage_out)  # 31 f
        self.head_bn = nn.BatchNorm1d(head_width)
        self.classifier = nn.Linear(head_width, num_classes)

    @staticmethod
    def _make_stage(in_channels: int, width: int, dense_blocks: int, *, downsample: bool) -> tuple[nn.Sequential, int]:
        # block 0 sets the stage width: stage 1 keeps the resolution but still gets CPA's learned
        # shortcut (the authors' `same=True`), later stages halve it (their `stride=2`)
        blocks = [UPABlock(in_channels, width, shortcut=not downsample, downsample=downsample)]
        channels, growth = width, width // dense_blocks
        for _ in range(dense_blocks):
            blocks.append(UPABlock(channels, growth, dense=True))
            channels += growth
        return nn.Sequential(*blocks), channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.embed(x, self.root(x))]
        for stage in self.stages:
            features.append(stage(features[-1]))
        pooled = []
        for feature, spa in zip(features, self.spa):
            # GAP + SPA, then LayerNorm over the channel vector, per the authors' head
            vector = feature.mean(dim=(2, 3)) + spa(feature)
            pooled.append(F.layer_norm(vector, vector.shape[1:]))
        # deepest first, as the authors concatenate them: [stage4, stage3, stage2, stage1, embedding]
        out = torch.cat(pooled[::-1], dim=1)
        return self.classifier(self.head_bn(out))


# Parameter counts (torch `numel` over `parameters()`, BatchNorm running statistics excluded),
# checked against the authors' `UPANets(f, c, 1, 32)` rebuilt layer for layer:
#   f=16: 1,512,431 (10 classes), 1,557,161 (100 classes)
#   f=64: 24,017,183 (10 classes), 24,195,833 (100 classes)


@register_model("upanet16")
def upanet16(num_classes: int) -> nn.Module:
    """UPANets-16, the authors' `UPANets(16, num_classes, 1, 32)`.

    1,512,431 parameters with 10 classes (1,557,161 with 100): the paper's "UPA16 (~1.51M)" in
    Tables 2-3 to the digits it gives, so this is very likely the network it trained.
    """
    return UPANet(16, num_classes)


@register_model("upanet64")
def upanet64(num_classes: int) -> nn.Module:
    """UPANets-64, the authors' `UPANets(64, num_classes, 1, 32)`.

    24,017,183 parameters with 10 classes and 24,195,833 with 100 (it appears only in the
    CIFAR-100 table), against the paper's "UPA64 (~23.59M)": 1.8% (2.6%) more. Where the
    0.43M comes from is unknown. The same code gives the paper's UPA16 figure exactly, so the
    counting method is not it, and no single change we tried reproduces both figures: without the
    learned shortcut in the stride-2 blocks UPA64 has 23.67M but UPA16 drops to 1.49M; 4/4/4/8 or
    8/8/8/8 dense blocks per stage give 23.74M / 23.65M (and 1.50M / 1.49M); a 1x-wide conv pair
    gives far less. The public copies of the authors' `models/upanets.py` we could read (UPANets
    commit 2366aa9, PUGD commit 597a601) hold the same network, so an earlier UPA64 cannot be
    checked.
    """
    return UPANet(64, num_classes)
