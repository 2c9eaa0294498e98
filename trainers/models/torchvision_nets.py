"""The fine-tuning networks of the paper's Table 4: torchvision's ImageNet architectures at 224x224.

Registered as `tv_<torchvision name>` so they never shadow the CIFAR versions (`resnet18` here is
the 32x32 CIFAR network of Tables 2-3). With `pretrained=True` they start from torchvision's
IMAGENET1K_V1 weights (the ones torchvision's `pretrained=True` meant when the paper was written)
and get a fresh `num_classes`-way head. Weights are read from torch's hub cache; where the cache
lacks them and cannot download them (no network), the error names the file and the folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..catalogue.models import TORCHVISION_ARCHS
from .registry import register_model

# torchvision is imported where a network is built, so the CIFAR models (and benchmarks/gpu.py)
# work on a machine that has PyTorch alone.


def _weights_file(weights) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def _imagenet_weights(arch: str) -> dict[str, torch.Tensor]:
    import torchvision

    weights = torchvision.models.get_model_weights(arch)["IMAGENET1K_V1"]
    path = _weights_file(weights)
    try:
        # Reads the cached file when it exists; otherwise downloads it into the same folder.
        return weights.get_state_dict(progress=False, check_hash=True)
    except OSError as err:  # URLError and friends: no network, or the download broke off
        raise RuntimeError(
            f"ImageNet weights for {arch} are not in {path.parent} and could not be downloaded ({err}); "
            f"put {path.name} (from {weights.url}) in {path.parent}, or set TORCH_HOME"
        ) from None


def _replace_head(model: nn.Module, num_classes: int) -> None:
    """Swap the 1000-way ImageNet classifier for a new `num_classes`-way one."""
    import torchvision

    if isinstance(model, torchvision.models.VisionTransformer):
        model.heads.head = nn.Linear(model.heads.head.in_features, num_classes)
    else:
        model.fc = nn.Linear(model.fc.in_features, num_classes)


def _builder(arch: str):
    def build(num_classes: int, pretrained: bool = False) -> nn.Module:
        import torchvision

        if not pretrained:
            return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
        model = torchvision.models.get_model(arch, weights=None)
        model.load_state_dict(_imagenet_weights(arch))
        _replace_head(model, num_classes)
        return model

    build.__name__ = f"tv_{arch}"
    build.__doc__ = f"torchvision {arch} at 224x224; `pretrained=True` loads IMAGENET1K_V1 weights."
    return build


for _arch in TORCHVISION_ARCHS:  # Table 4 of the paper
    register_model(f"tv_{_arch}")(_builder(_arch))
