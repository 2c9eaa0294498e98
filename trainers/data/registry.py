"""The data-set registry: `load_dataset(name, data_dir)` for every data set a sweep can train on.

Each loader file registers its loader with `@register_dataset(...)`; the entry records the data
set's shape (known without loading it, for the memory estimate of `gpu: auto`) and, for a data set
shaped by options, the TrainConfig field that holds them, so no caller branches on a name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .splits import DataSet, DataShape


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    loader: Callable[..., DataSet]  # loader(data_dir, download=False, **options)
    shape: DataShape | Callable[..., DataShape]  # fixed, or computed from the loader's options
    summary: str
    options_field: str | None = None  # the TrainConfig field holding the loader's options

    def shape_for(self, **options) -> DataShape:
        """The shape `load(**options)` would give, the loader's own defaults filling the rest."""
        if isinstance(self.shape, DataShape):
            return self.shape
        bound = inspect.signature(self.loader).bind(None, **options)
        bound.apply_defaults()
        given = {key: value for key, value in bound.arguments.items() if key not in ("data_dir", "download")}
        return self.shape(**given)

    def load(self, data_dir: Path, download: bool = False, **options) -> DataSet:
        return self.loader(Path(data_dir), download=download, **options)


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, shape: DataShape | Callable[..., DataShape], summary: str, options_field: str | None = None):
    """Decorator: add `loader(data_dir, download=False, **options) -> DataSet` as `name`."""

    def add(loader: Callable[..., DataSet]) -> Callable[..., DataSet]:
        if name in _DATASETS:
            raise ValueError(f"data set {name!r} is registered twice")
        _DATASETS[name] = DatasetInfo(name, loader, shape, summary, options_field)
        return loader

    return add


def list_datasets() -> list[str]:
    """Registry keys of every data set, in registration order."""
    return list(_DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    """The registry entry for `name`; an unknown name raises ValueError listing the known ones."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(_DATASETS)}") from None


def load_dataset(name: str, data_dir: Path, download: bool = False, **options) -> DataSet:
    """Load data set `name` from `data_dir`; `options` go to its loader."""
    return get_dataset_info(name).load(data_dir, download=download, **options)


def data_shape(name: str, **options) -> DataShape:
    """The shape of data set `name` as `load_dataset(name, ..., **options)` would load it."""
    return get_dataset_info(name).shape_for(**options)
