"""The model registry: `create_model(name, num_classes)` for every network a sweep can train.

Each model file binds its factory `f(num_classes, **options) -> nn.Module` to a name of the
catalogue (trainers/catalogue/models.py: input size, summary, options) with
`@register_model(name)`; a factory whose keyword options differ from its entry's is refused at
import, so the options a config is checked against are the ones the factory takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from ..catalogue import get_model_info

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: bind `factory(num_classes, **options) -> nn.Module` to catalogue entry `name`."""
    declared = get_model_info(name).options  # an unknown name raises ValueError listing the known ones

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _FACTORIES:
            raise ValueError(f"model {name!r} is registered twice")
        taken = tuple(p for p in inspect.signature(factory).parameters if p != "num_classes")
        if taken != declared:
            raise ValueError(f"model {name!r}: its factory takes options {taken}, its catalogue entry {declared}")
        _FACTORIES[name] = factory
        return factory

    return add


def create_model(name: str, num_classes: int, **options) -> nn.Module:
    """Build model `name` with a `num_classes`-way output; `options` go to its factory."""
    get_model_info(name)  # an unknown name raises ValueError listing the known ones
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return _FACTORIES[name](num_classes, **options)
