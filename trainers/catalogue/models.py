"""The models: one entry per network a sweep can train, with what the data path and a config need.

The entry records the input size the network expects, so the data path can resize batches to it
(CIFAR's 32x32 to 224x224 for the ImageNet networks) without branching on names; a network that
pools globally and is built for no one size has `input_size=None` and takes every data set at its
own size. `options` are the keyword options of its factory (trainers/models/), which
`register_model` checks against the factory's signature, so a misspelt option is refused when a
config is read, without building anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from .entries import Entries


@dataclass(frozen=True)
class ModelInfo:
    name: str
    input_size: int | None  # side of the square RGB input it is built for, in pixels; None: any
    summary: str
    options: tuple[str, ...] = ()  # keyword options of its factory, each with a default
    paper_params_m: float | None = None  # size on CIFAR-10 in the paper's Tables 2-3, millions
    pretrained: bool = False  # the factory accepts `pretrained=True` (ImageNet weights)


_CIFAR = (  # CIFAR versions of the paper's networks (Tables 2-3) and of the SAM paper's WideResNets
    ModelInfo("resnet18", 32, "ResNet-18, CIFAR version (3x3 stem, no max-pool)", ("width",), 11.17),
    ModelInfo("resnet50", 32, "ResNet-50, CIFAR version (3x3 stem, no max-pool)", (), 23.52),
    ModelInfo("densenet121", 32, "DenseNet-121 (BC, k=32), CIFAR version (3x3 stem)", ("growth_rate",), 6.95),
    ModelInfo("dla", 32, "Deep Layer Aggregation, CIFAR version (pytorch-cifar)", (), 16.29),
    ModelInfo("resnet18_cpa", 32, "CIFAR ResNet-18 with a UPANets channel-pixel-attention layer in each basic block", (), 11.71),
    ModelInfo("upanet16", 32, "UPANets, 16 base filters (the paper's UPA16): CPA blocks, dense stages, SPA head", (), 1.51),
    ModelInfo("upanet64", 32, "UPANets, 64 base filters (the paper's UPA64, CIFAR-100 only)", (), 23.59),
    ModelInfo("vgg16", 32, "VGG-16 with BatchNorm, CIFAR version (one linear head)", (), 14.728),
    ModelInfo("wrn16_8", 32, "WideResNet-16-8 (pre-activation, Zagoruyko & Komodakis 2016)", ("dropout",)),
    ModelInfo("wrn28_10", 32, "WideResNet-28-10 (pre-activation, Zagoruyko & Komodakis 2016)", ("dropout",)),
)
_SMALL = (ModelInfo("small_cnn", None, "3-stage CNN for CPU runs (width option, default 16)", ("width",)),)
# Table 4 of the paper: fine-tuned on CIFAR-10 with lr 0.01 (0.001 for ViT-B/16), 100 epochs.
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet101_2", "vit_b_16")
_TORCHVISION = tuple(
    ModelInfo(f"tv_{arch}", 224, f"torchvision {arch}, ImageNet layout (224x224)", ("pretrained",), pretrained=True)
    for arch in TORCHVISION_ARCHS
)
_MODELS = Entries("model", sorted((*_CIFAR, *_SMALL, *_TORCHVISION), key=lambda info: info.name))


def list_models() -> list[str]:
    """Names of every model, sorted."""
    return list(_MODELS)


def get_model_info(name: str) -> ModelInfo:
    """The entry for `name`; an unknown name raises ValueError listing the known ones."""
    return _MODELS[name]


def check_model_options(name: str, options: dict) -> None:
    """Raise ValueError when model `name`'s factory takes no option of one of these names, so a
    misspelt option is caught when the config is read, not when the run starts."""
    known = get_model_info(name).options
    unknown = next((key for key in options if key not in known), None)
    if unknown is not None:
        raise ValueError(f"model {name!r} takes options {list(known) or 'none'}; got an unexpected option {unknown!r}")
