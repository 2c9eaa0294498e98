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

from trainers.catalogue import get_model_info, get_rule
from trainers.config import TrainConfig, describe_errors

from .. import defaults
from .arm import Arm
from .limits import MAX_CONFIRM_SEEDS, MAX_EPOCHS, MAX_GRID_POINTS, MAX_RETRIES, MAX_SEEDS
from .sections import (
    Asha,
    Checkpoints,
    Choice,
    ConfirmCount,
    ConfirmSeeds,
    Dimension,
    Range,
    ReportOptions,
    Resources,
    Search,
    Strict,
    Tracking,
)

ARM_FIELDS = ("dataset", "model", "optimizer", "seed")  # set per arm or per trial, not in `train`


class SweepSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="sweep name: MLflow experiment, Ray run, studies")
    dataset: str = Field(description="data set registry key")
    models: list[str] = Field(min_length=1, description="model registry keys to compare")
    optimizers: list[str] = Field(min_length=1, description="update rules to compare")
    train: dict[str, Any] = Field(default_factory=dict, description="fixed TrainConfig fields for every trial")
    train_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="per model, TrainConfig fields replacing those of `train` (e.g. the paper's lr 0.001 for ViT-B/16)",
    )
    search: Search = Field(default_factory=lambda: Search(trials_per_arm=1), description="the search per arm")
    seeds: list[int] = Field(
        [0],
        min_length=1,
        max_length=MAX_SEEDS,
        description=f"training seeds: a grid runs each; optuna/random cycle through them (at most {MAX_SEEDS})",
    )
    confirm_seeds: ConfirmCount = Field(
        0,
        description="after the search, train each arm's chosen setting again with this many new seeds "
        f"(at most {MAX_CONFIRM_SEEDS}), or {{min, max}}: new seeds added until every comparison is decided",
    )
    report: ReportOptions = Field(default_factory=ReportOptions, description="how the report compares the rules")
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
    def _overrides_of_known_models(self) -> SweepSpec:
        for model, fields in self.train_overrides.items():
            if model not in self.models:
                raise ValueError(f"train_overrides.{model}: not among the spec's models ({', '.join(self.models)})")
            for key in fields:
                if key in ARM_FIELDS:
                    raise ValueError(f"train_overrides.{model}.{key}: set by the spec's {key}s/seeds, not in train")
        return self

    @model_validator(mode="after")
    def _fixed_or_searched(self) -> SweepSpec:
        searched = set(self.search.space).union(*self.search.overrides.values())
        for where, fields in [("train", self.train), *((f"train_overrides.{m}", f) for m, f in self.train_overrides.items())]:
            for key in sorted(searched & set(fields)):
                raise ValueError(f"{where}.{key}: also in the search space; keep one of the two")
        return self

    @model_validator(mode="after")
    def _comparisons(self) -> SweepSpec:
        if isinstance(self.confirm_seeds, ConfirmSeeds) and self.report.against not in self.optimizers:
            raise ValueError(
                f"confirm_seeds: adding seeds until the comparisons are decided needs report.against "
                f"({self.report.against}) among the optimizers"
            )
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

    @property
    def confirm_range(self) -> tuple[int, int]:
        """(fewest, most) confirmation seeds per arm: equal unless seeds are added adaptively."""
        if isinstance(self.confirm_seeds, ConfirmSeeds):
            return self.confirm_seeds.min, self.confirm_seeds.max
        return self.confirm_seeds, self.confirm_seeds

    @property
    def looks(self) -> int:
        """How often the comparisons may be looked at to decide on another seed: once per seed
        count from min to max (1 for a fixed count), over which the error rate is split."""
        low, high = self.confirm_range
        return high - low + 1

    def confirmation_seeds(self) -> list[int]:
        """Seeds of the confirmation trials, in the order they are used: new ones, after every
        seed any arm's search used."""
        first = max(max(self.search_seeds(rule)) for rule in self.optimizers) + 1
        return [first + i for i in range(self.confirm_range[1])]

    def grid_points(self, rule: str) -> int:
        """Settings in the rule's grid: its choices multiplied (1 when every value is fixed)."""
        return math.prod(len(dim.choices) for dim in self.space_for(rule).values() if isinstance(dim, Choice))

    def search_seeds(self, rule: str) -> list[int]:
        """The seeds the rule's search trains with. A grid gives every arm the same budget: a rule
        with fewer points repeats them over more seeds, new ones after `seeds`."""
        if self.search.method != "grid":
            return list(self.seeds)
        budget = max(self.grid_points(r) for r in self.optimizers) * len(self.seeds)
        repeats = budget // self.grid_points(rule)
        return [*self.seeds, *(max(self.seeds) + 1 + i for i in range(repeats - len(self.seeds)))]

    def search_budget(self, rule: str) -> int:
        """Search trials of one arm: the grid's size, or `trials_per_arm` (the same for every arm);
        its confirmation trials come on top (sweep/spec/budget.py: `planned_trials`)."""
        return (
            self.grid_points(rule) * len(self.search_seeds(rule)) if self.search.method == "grid" else self.search.trials_per_arm
        )

    def setting(self, rule: str, values: dict[str, Any]) -> dict[str, float]:
        """What tells one setting of the rule's arm from another: the values of its space's
        dimensions (searched or fixed there), read from a trial's point or TrainConfig."""
        return {name: float(values[name]) for name in self.space_for(rule)}

    def settings_count(self, rule: str) -> float:
        """How many settings an arm of this rule can try (infinite with a range)."""
        dims = self.space_for(rule).values()
        return math.inf if any(isinstance(dim, Range) for dim in dims) else self.grid_points(rule)

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
        fixed = {**threads, **self.train, **self.train_overrides.get(model, {}), **point}
        return TrainConfig(**fixed, dataset=self.dataset, model=model, optimizer=rule, seed=seed)

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
        # every arm the same budget: the largest grid's trials, the others repeating their points
        # over more seeds, which needs their point counts to divide it
        largest = max(self.optimizers, key=self.grid_points)
        budget = self.grid_points(largest) * len(self.seeds)
        for rule in self.optimizers:
            if budget % self.grid_points(rule):
                raise ValueError(
                    f"search.space: grid arms get equal budgets ({largest}: {self.grid_points(largest)} points x "
                    f"{len(self.seeds)} seeds = {budget} trials), but {rule}'s {self.grid_points(rule)} points do not divide "
                    f"{budget}; choose choices whose counts divide each other"
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
                    point, fields = self.corner(rule, corner), self.train_overrides.get(model, {})
                    lines = [_train_path(line, point, fields, model) for line in describe_errors(err)]
                    raise ValueError("; ".join(lines) + f" (arm {Arm(model, rule)})") from None
            # epochs is a TrainConfig field, which knows no sweep
            if cfg.epochs > MAX_EPOCHS:
                where = f"train_overrides.{model}" if "epochs" in self.train_overrides.get(model, {}) else "train"
                raise ValueError(f"{where}.epochs: must be <= {MAX_EPOCHS} in a sweep (got {cfg.epochs})")
        return self

    @model_validator(mode="after")
    def _objective_where_needed(self) -> SweepSpec:
        """Without a validation split (val_fraction 0, the paper's protocol) nothing can be chosen
        or stopped on val_acc: an arm must have one setting, and there is no early stopping."""
        for model, rule in self.arms():
            if self.train_config(model, rule, self.seeds[0], self.corner(rule, "low")).val_fraction > 0:
                continue
            where = f"train_overrides.{model}" if "val_fraction" in self.train_overrides.get(model, {}) else "train"
            if self.scheduler is not None:
                raise ValueError(f"scheduler: ASHA stops trials on val_acc, which {where}.val_fraction 0 does not measure")
            if self.settings_count(rule) > 1:
                raise ValueError(
                    f"{where}.val_fraction: 0 leaves no val_acc to choose among the settings of arm {Arm(model, rule)}; "
                    "fix its search space to one setting, or hold out a validation split"
                )
        return self


def _corner(dim: Dimension, which: str) -> float:
    if isinstance(dim, Range):
        return getattr(dim, which)
    if isinstance(dim, Choice):
        return (min if which == "low" else max)(dim.choices)
    return dim


def _train_path(line: str, point: dict, model_fields: dict, model: str) -> str:
    field = line.split(":", 1)[0]
    if field in point:
        return f"search.space.{line}"
    return f"train_overrides.{model}.{line}" if field.split(".")[0] in model_fields else f"train.{line}"
