"""SweepSpec: what a sweep compares, how it searches, where it runs and logs. Loaded from YAML.

An arm is one (model, update rule) pair. Every arm gets the same trial budget and its own search
over the space (per-rule overrides allowed, e.g. a ten times larger rho range for ASAM), so the
comparison is fair. Errors name the field path, e.g.
`search.space.rho.low: must be > 0 for a log range`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from trainers.config import TrainConfig, describe_errors
from trainers.models import get_model_info
from trainers.optim import get_rule

from .. import defaults
from .arm import Arm
from .limits import MAX_CONFIRM_SEEDS, MAX_EPOCHS, MAX_GRID_POINTS, MAX_RETRIES, MAX_SEEDS
from .sections import Asha, Checkpoints, Choice, Dimension, Range, Resources, Search, Strict, Tracking

ARM_FIELDS = ("dataset", "model", "optimizer", "seed")  # set per arm or per trial, not in `train`


class SweepSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="sweep name: MLflow experiment, Ray run, studies")
    dataset: str = Field(description="data set registry key")
    models: list[str] = Field(min_length=1, description="model registry keys to compare")
    optimizers: list[str] = Field(min_length=1, description="update rules to compare")
    train: dict[str, Any] = Field(default_factory=dict, description="fixed TrainConfig fields for every trial")
    search: Search = Field(default_factory=lambda: Search(trials_per_arm=1), description="the search per arm")
    seeds: list[int] = Field(
        [0],
        min_length=1,
        max_length=MAX_SEEDS,
        description=f"training seeds: a grid runs each; optuna/random cycle through them (at most {MAX_SEEDS})",
    )
    confirm_seeds: int = Field(
        0,
        ge=0,
        le=MAX_CONFIRM_SEEDS,
        description=f"after the search, train each arm's best setting again with this many new seeds (at most {MAX_CONFIRM_SEEDS})",
    )
    scheduler: Asha | None = Field(None, description="optional early stopping (ASHA)")
    resources: Resources = Field(default_factory=Resources, description="what each trial asks of the cluster")
    tracking: Tracking = Field(default_factory=Tracking, description="where runs and studies are stored")
    checkpoints: Checkpoints = Field(default_factory=Checkpoints, description="where checkpoints go")
    retries: int = Field(
        1, ge=0, le=MAX_RETRIES, description=f"times a failed trial is retried from its last checkpoint (at most {MAX_RETRIES})"
    )
    max_concurrent: int = Field(0, ge=0, description="trials running at once (0: as many as resources allow)")

    @field_validator("models", "optimizers")
    @classmethod
    def _registered(cls, names: list[str], info: ValidationInfo) -> list[str]:
        lookup = {"models": get_model_info, "optimizers": get_rule}[info.field_name]
        for name in names:
            lookup(name)  # raises ValueError listing the registered names
        for name in names:
            if names.count(name) > 1:  # the same arm twice would split its budget between two studies of one name
                raise ValueError(f"{name} listed twice")
        return names

    @model_validator(mode="after")
    def _resources_of_known_models(self) -> SweepSpec:
        for model in self.resources.models:
            if model not in self.models:
                raise ValueError(f"resources.models.{model}: not among the spec's models ({', '.join(self.models)})")
        for model in self.models:
            wanted = self.resources.for_model(model)
            if wanted.gpu == 0 and (wanted.cards or wanted.min_gpu_memory_gb is not None):
                where = f"resources.models.{model}" if model in self.resources.models else "resources"
                raise ValueError(f"{where}.gpu: cards or min_gpu_memory_gb need a GPU share (a fraction or auto), not 0")
        return self

    @field_validator("train")
    @classmethod
    def _train_fields(cls, train: dict) -> dict:
        for key in train:
            if key in ARM_FIELDS:
                raise ValueError(f"{key}: set by the spec's {key}s/seeds, not in train")
        return train

    @model_validator(mode="after")
    def _fixed_or_searched(self) -> SweepSpec:
        searched = set(self.search.space).union(*self.search.overrides.values())
        for key in sorted(searched & set(self.train)):
            raise ValueError(f"train.{key}: also in the search space; keep one of the two")
        return self

    def resolved(self) -> SweepSpec:
        """The same spec with every local path absolute (data, checkpoints, SQLite files), so
        trials, whose working folder Ray changes, and a later `sweep resume` find them."""
        train = {**self.train, "data_dir": str(Path(self.train.get("data_dir", defaults.DATA)).resolve())}
        tracking = {key: defaults.absolute_sqlite(getattr(self.tracking, key)) for key in ("mlflow_uri", "optuna_storage")}
        checkpoints = {"path": self.checkpoints.path.resolve()}
        return self.model_copy(
            update={
                "train": train,
                "tracking": self.tracking.model_copy(update=tracking),
                "checkpoints": self.checkpoints.model_copy(update=checkpoints),
            }
        )

    def confirmation_seeds(self) -> list[int]:
        """Seeds of the confirmation trials: new ones, after those the search used."""
        return [max(self.seeds) + 1 + i for i in range(self.confirm_seeds)]

    def arms(self) -> list[Arm]:
        """Every (model, update rule) pair, in the spec's order."""
        return [Arm(model, rule) for model in self.models for rule in self.optimizers]

    @property
    def folder(self) -> Path:
        """The sweep's own folder: its saved spec, journal, and (without S3) Ray Tune's state."""
        return self.checkpoints.path / self.name

    def space_for(self, rule: str) -> dict[str, Dimension]:
        """The arm's dimensions: `space` with the rule's overrides, without the hyperparameters the
        rule does not read (SGD's rho would only waste its budget)."""
        unused = {"rho", "eta"} - set(get_rule(rule).uses)
        merged = {**self.search.space, **self.search.overrides.get(rule, {})}
        return {name: dim for name, dim in merged.items() if name not in unused}

    def train_config(self, model: str, rule: str, seed: int, point: dict[str, float]) -> TrainConfig:
        """The TrainConfig of one trial; its PyTorch threads default to the cores it holds."""
        threads = {"num_threads": max(1, math.ceil(self.resources.cpus))}
        return TrainConfig(**{**threads, **self.train, **point}, dataset=self.dataset, model=model, optimizer=rule, seed=seed)

    def corner(self, rule: str, which: str) -> dict[str, float]:
        """The `low` or `high` corner of the rule's space: every range's bound, every choice's end."""
        return {name: _corner(dim, which) for name, dim in self.space_for(rule).items()}

    def corner_config(self, model: str, rule: str, which: str) -> TrainConfig:
        """The TrainConfig of the arm's trial at one corner of its space, with the first seed."""
        return self.train_config(model, rule, self.seeds[0], self.corner(rule, which))

    @model_validator(mode="after")
    def _grid_within_limit(self) -> SweepSpec:
        if self.search.method != "grid":
            return self
        for rule in self.optimizers:
            sizes = [len(dim.choices) for dim in self.space_for(rule).values() if isinstance(dim, Choice)]
            points = math.prod(sizes) * len(self.seeds)
            if points > MAX_GRID_POINTS:
                factors = " x ".join(map(str, [*sizes, len(self.seeds)]))
                raise ValueError(
                    f"search.space: a grid of {points} trials per arm for {rule} (choices x seeds: {factors}); "
                    f"at most {MAX_GRID_POINTS}"
                )
        return self

    @model_validator(mode="after")
    def _trials_are_valid(self) -> SweepSpec:
        """Every arm's trials validate as TrainConfig (checked at the corners of its space)."""
        for model, rule in self.arms():
            for corner in ("low", "high"):
                try:
                    cfg = self.corner_config(model, rule, corner)
                except ValidationError as err:
                    lines = [_train_path(line, self.corner(rule, corner)) for line in describe_errors(err)]
                    raise ValueError("; ".join(lines) + f" (arm {Arm(model, rule)})") from None
        # epochs is a TrainConfig field, which knows no sweep; the same in every trial
        if cfg.epochs > MAX_EPOCHS:
            raise ValueError(f"train.epochs: must be <= {MAX_EPOCHS} in a sweep (got {cfg.epochs})")
        return self


def _corner(dim: Dimension, which: str) -> float:
    if isinstance(dim, Range):
        return getattr(dim, which)
    if isinstance(dim, Choice):
        return (min if which == "low" else max)(dim.choices)
    return dim


def _train_path(line: str, point: dict) -> str:
    field = line.split(":", 1)[0]
    return f"search.space.{line}" if field in point else f"train.{line}"
