"""The data-set registry: `load_dataset(name, data_dir)` for every data set a sweep can train on.

Each loader file binds its loader to a name of the catalogue (trainers/catalogue/datasets.py, where
the shape and summary are) with `@register_dataset(name)`; a loader whose options differ from its
shape function's, names or defaults, is refused at import, so the shape known without loading and
the data loaded cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from ..catalogue import DataShape, get_dataset_info
from .splits import DataSet

_LOADERS: dict[str, Callable[..., DataSet]] = {}


def _options(function: Callable, skip: tuple[str, ...] = ()) -> dict:
    """A function's keyword options and their defaults, less the parameters named in `skip`."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items() if name not in skip}


def register_dataset(name: str):
    """Decorator: bind `loader(data_dir, download=False, **options) -> DataSet` to catalogue entry `name`."""
    info = get_dataset_info(name)  # an unknown name raises ValueError listing the known ones

    def add(loader: Callable[..., DataSet]) -> Callable[..., DataSet]:
        if name in _LOADERS:
            raise ValueError(f"data set {name!r} is registered twice")
        shaped = {} if isinstance(info.shape, DataShape) else _options(info.shape)
        if _options(loader, ("data_dir", "download")) != shaped:
            raise ValueError(f"data set {name!r}: the loader's options differ from its catalogue shape's {shaped}")
        _LOADERS[name] = loader
        return loader

    return add


def load_dataset(name: str, data_dir: Path, download: bool = False, **options) -> DataSet:
    """Load data set `name` from `data_dir`; `options` go to its loader."""
    get_dataset_info(name)  # an unknown name raises ValueError listing the known ones
    return _LOADERS[name](Path(data_dir), download=download, **options)
