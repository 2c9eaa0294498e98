"""A TrainConfig made real: its data set, its model, its update rule. The one place that builds
them, for the training loop (trainers/train.py) and the memory estimate (trainers/memory/)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .data import DataSet, DataShape, get_dataset_info
from .errors import ConfigError
from .models import create_model
from .optim import create_optimizer


def dataset_options(cfg: TrainConfig) -> dict[str, Any]:
    """The loader's options for `cfg.dataset`, from the config field its registry entry names."""
    field = get_dataset_info(cfg.dataset).options_field
    return getattr(cfg, field).model_dump() if field else {}


def load_data(cfg: TrainConfig) -> DataSet:
    """The config's data set, in CPU memory. Raises DataNotFoundError when its files are missing."""
    return get_dataset_info(cfg.dataset).load(cfg.data_dir, download=cfg.download, **dataset_options(cfg))


def data_shape(cfg: TrainConfig) -> DataShape:
    """The shape of the config's data set, without loading it."""
    return get_dataset_info(cfg.dataset).shape_for(**dataset_options(cfg))


def build_model(cfg: TrainConfig, num_classes: int, *, pretrained: bool | None = None) -> nn.Module:
    """The config's network with a `num_classes`-way output, on the current default device.
    `pretrained` overrides `cfg.pretrained` (the memory estimate never reads weights). A model
    option its factory accepts but cannot build with is a ConfigError."""
    options = dict(cfg.model_options)
    if pretrained is False:
        options.pop("pretrained", None)  # ImageNet weights change no shape: never read them
    elif pretrained or cfg.pretrained:
        options["pretrained"] = True
    try:
        return create_model(cfg.model, num_classes, **options)
    except ValueError as err:
        raise ConfigError(f"model_options: {err}") from None


def build_optimizer(cfg: TrainConfig, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    """The config's update rule over `params` (docs/optimizers.md)."""
    return create_optimizer(
        cfg.optimizer,
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov,
        rho=cfg.rho,
        eta=cfg.eta,
    )
