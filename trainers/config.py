"""TrainConfig: every knob of one training run, in one place, with its unit.

The paper's settings are the defaults (Section 5.1: lr 0.1, momentum 0.9, weight decay 5e-4,
nesterov off, rho 0.05, batch 100, cosine annealing, no augmentation). A config is validated
once, where it enters (a Ray trial's dict, a YAML file, command-line flags); unknown keys and
physically impossible values are rejected with the field's name and the value given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .catalogue import DataShape, check_model_options, data_shape, get_dataset_info, get_model_info, get_rule

# The registries (.data, .models, .optim) import torch; the validators import them when they run,
# so the fields, defaults and descriptions read without it (`sweep train --help`, `sweep schema`).


class SyntheticData(BaseModel):
    """Shape of the `synthetic` data set (random images, for benchmarks)."""

    model_config = ConfigDict(extra="forbid")

    images: int = Field(1000, ge=1, description="images in each of the train and test splits")
    image_size: int = Field(32, ge=4, description="side of the square images, in pixels")
    channels: int = Field(3, ge=1, description="colour channels per image")
    num_classes: int = Field(10, ge=2, description="number of label classes")


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True, frozen=False)

    # what is trained, on what
    dataset: str = Field("cifar10", description="data set registry key (`sweep list datasets`)")
    model: str = Field("resnet18", description="model registry key (`sweep list models`)")
    model_options: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword options of the model's factory, e.g. {width: 8}"
    )
    pretrained: bool = Field(False, description="start from ImageNet weights (tv_* models only)")
    optimizer: str = Field("sam_gns", description="update rule registry key: sgd, ugd, sam, asam or sam_gns")

    # base SGD (the paper's Section 5.1)
    lr: float = Field(0.1, gt=0, description="initial learning rate, in parameter units per unit gradient")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum coefficient, dimensionless, in [0, 1)")
    weight_decay: float = Field(5e-4, ge=0, description="coupled L2 weight decay coefficient, per step")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0)")

    # two-pass rules
    rho: float = Field(0.05, ge=0, description="radius of the sharpness climb, L2 norm in parameter units (sam, asam, sam_gns)")
    eta: float = Field(0.01, ge=0, description="ASAM's offset in T = |w| + eta, in parameter units (asam)")

    # schedule
    batch_size: int = Field(100, ge=1, description="training mini-batch size, in images")
    epochs: int = Field(200, ge=1, description="training length, in passes over the training split")
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="learning-rate schedule over the run: cosine annealing to 0, or constant"
    )
    augment: bool = Field(False, description="random crop (padding 4 px) and horizontal flip; the paper uses none")
    normalize: Literal["auto", "dataset", "imagenet"] = Field(
        "auto",
        description="mean and std the inputs are normalised with: dataset (its own), imagenet (ImageNet's), "
        "or auto: ImageNet's mean and std for pretrained: true, else the data set's own",
    )
    val_fraction: float = Field(
        0.1, ge=0, lt=1, description="fraction of the training set held out for val_* metrics (0 turns it off)"
    )
    eval_batch_size: int = Field(500, ge=1, description="batch size for validation and test passes, in images")
    synthetic: SyntheticData = Field(default_factory=SyntheticData, description="shape of the synthetic data set")

    # reproducibility and placement
    seed: int = Field(0, ge=0, description="seed of initialisation, shuffling and augmentation")
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'")
    num_threads: int | None = Field(None, ge=1, description="CPU threads for PyTorch ops (None: PyTorch's default)")
    channels_last: bool = Field(False, description="channels-last memory format (a speed option on CUDA)")
    bf16: bool = Field(False, description="bfloat16 autocast for forward and backward (a speed option on CUDA)")
    compile: bool = Field(False, description="torch.compile the model's forward (a speed option; compiles for minutes first)")
    data_dir: Path = Field(Path("data"), description="folder holding the data sets' files")
    download: bool = Field(False, description="download CIFAR into data_dir when missing (needs network)")

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, name: str) -> str:
        get_rule(name)  # raises ValueError listing the known rules
        return name

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        get_dataset_info(name)  # raises ValueError listing the known data sets
        return name

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        get_model_info(name)  # raises ValueError listing the known models
        return name

    @field_validator("device")
    @classmethod
    def _device_name(cls, device: str) -> str:
        kind, _, index = device.partition(":")
        if kind not in ("auto", "cpu", "cuda") or (index and (kind != "cuda" or not index.isdigit())):
            raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
        return device

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> TrainConfig:
        if self.nesterov and self.momentum == 0:
            raise ValueError(f"nesterov: needs momentum > 0 (got momentum {self.momentum!r})")
        return self

    @model_validator(mode="after")
    def _model_takes_options(self) -> TrainConfig:
        try:
            check_model_options(self.model, self.model_options)
        except ValueError as err:
            raise ValueError(f"model_options: {err}") from None
        return self

    @model_validator(mode="after")
    def _pretrained_weights_exist(self) -> TrainConfig:
        if self.pretrained and not get_model_info(self.model).pretrained:
            raise ValueError(f"pretrained: model {self.model!r} has no ImageNet weights (tv_* models have)")
        return self

    def dataset_options(self) -> dict[str, Any]:
        """The loader's options for `dataset`, from the field its catalogue entry names."""
        field = get_dataset_info(self.dataset).options_field
        return getattr(self, field).model_dump() if field else {}

    def data_shape(self) -> DataShape:
        """The shape of the config's data set, known without loading it."""
        return data_shape(self.dataset, **self.dataset_options())


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, `field.path: message (got value)`, for command-line users."""
    lines = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        if not problem["loc"]:  # a check across fields names its fields in its message
            lines.append(message)
            continue
        where = ".".join(str(part) for part in problem["loc"])
        # a check on a whole mapping names the offending key itself; echo only plain values
        shown = problem["type"] != "missing" and not isinstance(problem["input"], dict)
        got = f" (got {_shown(problem['input'])})" if shown else ""
        lines.append(f"{where}: {message}{got}")
    return lines


def _shown(value: Any, width: int = 80) -> str:
    """The value as given, cut short: a list of a million seeds is one line, not a page."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
