"""A TrainConfig made real: its data set, its model, its update rule. The one place that builds
them, for the training loop (trainers/train.py) and the memory estimate (trainers/memory/)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .config import TrainConfig
from .data import DataSet, load_dataset
from .errors import ConfigError
from .models import create_model
from .optim import create_optimizer


def load_data(cfg: TrainConfig) -> DataSet:
    """The config's data set, in CPU memory. Raises DataNotFoundError when its files are missing."""
    return load_dataset(cfg.dataset, cfg.data_dir, download=cfg.download, **cfg.dataset_options())


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
