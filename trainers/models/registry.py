"""The model registry: `create_model(name, num_classes)` for every network a sweep can train.

Each model file registers its factories with `@register_model(...)`; the entry records the input
size the network expects, so the data path can resize batches to it (CIFAR's 32x32 to 224x224 for
the ImageNet networks) without branching on names. A network that pools globally and is built for
no one size registers `input_size=None` and takes every data set at its own size.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelInfo:
    name: str
    factory: Callable[..., nn.Module]
    input_size: int | None  # side of the square RGB input it is built for, in pixels; None: any
    summary: str
    paper_params_m: float | None = None  # size on CIFAR-10 in the paper's Tables 2-3, millions
    pretrained: bool = False  # the factory accepts `pretrained=True` (ImageNet weights)


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str, *, input_size: int | None, summary: str, paper_params_m: float | None = None, pretrained: bool = False
):
    """Decorator: add `factory(num_classes, **options) -> nn.Module` to the registry as `name`."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = ModelInfo(name, factory, input_size, summary, paper_params_m, pretrained)
        return factory

    return add


def list_models() -> list[str]:
    """Registry keys of every model, sorted."""
    return sorted(_MODELS)


def get_model_info(name: str) -> ModelInfo:
    """The registry entry for `name`; an unknown name raises ValueError listing the known ones."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def create_model(name: str, num_classes: int, **options) -> nn.Module:
    """Build model `name` with a `num_classes`-way output; `options` go to its factory."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return get_model_info(name).factory(num_classes, **options)


def check_model_options(name: str, options: dict) -> None:
    """Raise ValueError when model `name`'s factory takes no option of one of these names, so a
    misspelt option is caught when the config is read, not when the run starts."""
    try:
        inspect.signature(get_model_info(name).factory).bind(1, **options)
    except TypeError as err:
        known = [p for p in inspect.signature(get_model_info(name).factory).parameters if p != "num_classes"]
        raise ValueError(f"model {name!r} takes options {known or 'none'}; {err}") from None
