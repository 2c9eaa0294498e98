"""The sections of a sweep spec: the search space and its budget, early stopping, resources per
trial, and where runs, studies and checkpoints are kept. Every field's description gives its unit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PlainValidator, Tag, field_validator, model_validator

from trainers.catalogue import list_optimizers

from .. import defaults
from .limits import MAX_CONFIRM_SEEDS, MAX_GRID_POINTS, MAX_TRIALS_PER_ARM

SEARCHABLE = ("lr", "rho", "eta", "momentum", "weight_decay")  # TrainConfig fields a space may vary


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Range(Strict):
    """A continuous range, sampled uniformly (or log-uniformly with `log: true`)."""

    low: float = Field(description="lower bound, in the field's unit")
    high: float = Field(description="upper bound, in the field's unit")
    log: bool = Field(False, description="sample log-uniformly (needs low > 0)")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.log and self.low <= 0:
            raise ValueError("low: must be > 0 for a log range")
        if self.high <= self.low:
            raise ValueError(f"high: must be > low ({self.low})")
        return self


class Choice(Strict):
    """A finite set of values (the only kind a grid may use, with fixed values)."""

    choices: list[float] = Field(min_length=1, description="the values, in the field's unit")


def _dimension_kind(value: Any) -> str:
    if isinstance(value, (Choice, Range)):
        return type(value).__name__.lower()
    if isinstance(value, dict):
        return "choice" if "choices" in value else "range"
    return "fixed"


# A plain number is a fixed value, a mapping with `choices` a Choice, any other mapping a Range.
Dimension = Annotated[
    Union[Annotated[float, Tag("fixed")], Annotated[Range, Tag("range")], Annotated[Choice, Tag("choice")]],
    Discriminator(_dimension_kind),
]
UNION_TAGS = ("fixed", "range", "choice", "count", "adaptive")  # not part of a path a user wrote


class Search(Strict):
    method: Literal["optuna", "grid", "random"] = Field(
        "optuna", description="optuna: seeded TPE per arm; random: seeded random sampling; grid: every combination"
    )
    trials_per_arm: int | None = Field(
        None,
        ge=1,
        le=MAX_TRIALS_PER_ARM,
        description=f"trials each arm runs, at most {MAX_TRIALS_PER_ARM} (required for optuna/random; "
        f"a grid runs all its points, at most {MAX_GRID_POINTS})",
    )
    space: dict[str, Dimension] = Field(default_factory=dict, description="lr, rho, ... : range, choices or fixed value")
    overrides: dict[str, dict[str, Dimension]] = Field(
        default_factory=dict, description="per update rule, dimensions replacing those of `space`"
    )
    seed: int = Field(0, ge=0, description="seed of the samplers (each arm's sampler is seeded from it)")

    @field_validator("space")
    @classmethod
    def _searchable(cls, space: dict) -> dict:
        for name in space:
            if name not in SEARCHABLE:
                raise ValueError(f"{name}: not searchable; use one of {', '.join(SEARCHABLE)}")
        return space

    @field_validator("overrides")
    @classmethod
    def _known_rules(cls, overrides: dict) -> dict:
        for rule, space in overrides.items():
            if rule not in list_optimizers():
                raise ValueError(f"{rule}: unknown update rule; known: {', '.join(list_optimizers())}")
            cls._searchable(space)
        return overrides

    @model_validator(mode="after")
    def _budget(self) -> Search:
        if self.method != "grid" and self.trials_per_arm is None:
            raise ValueError(f"trials_per_arm: required for method {self.method}")
        if self.method == "grid":
            for where, space in [("space", self.space), *((f"overrides.{r}", s) for r, s in self.overrides.items())]:
                for name, dim in space.items():
                    if isinstance(dim, Range):
                        raise ValueError(f"{where}.{name}: a grid needs choices or a fixed value, not a range")
        return self


class ConfirmSeeds(Strict):
    """Adaptive confirmation: each arm's chosen setting is trained on `min` new seeds, then one more
    seed at a time for every arm of a model while a comparison of that model is undecided, up to
    `max`. The error rate is split over the planned looks (sweep/compare/stats.py)."""

    min: int = Field(ge=2, le=MAX_CONFIRM_SEEDS, description="new seeds every arm's chosen setting trains on first")
    max: int = Field(ge=2, le=MAX_CONFIRM_SEEDS, description=f"most new seeds per arm (at most {MAX_CONFIRM_SEEDS})")

    @model_validator(mode="after")
    def _ordered(self) -> ConfirmSeeds:
        if self.max < self.min:
            raise ValueError(f"max: must be >= min ({self.min})")
        return self


def _count_kind(value: Any) -> str:
    return "adaptive" if isinstance(value, (dict, ConfirmSeeds)) else "count"


# A plain count of new seeds, or {min, max} for seeds added until the comparisons are decided.
ConfirmCount = Annotated[
    Union[Annotated[int, Field(ge=0, le=MAX_CONFIRM_SEEDS), Tag("count")], Annotated[ConfirmSeeds, Tag("adaptive")]],
    Discriminator(_count_kind),
]


class ReportOptions(Strict):
    """How the report compares the rules (sweep/compare/stats.py)."""

    against: str = Field("sam_gns", description="the update rule every other rule of a model is compared with")
    margin: float = Field(0.5, gt=0, le=100, description="points of test accuracy (%) within which two rules count as equivalent")

    @field_validator("against")
    @classmethod
    def _known_rule(cls, rule: str) -> str:
        if rule not in list_optimizers():
            raise ValueError(f"{rule}: unknown update rule; known: {', '.join(list_optimizers())}")
        return rule


class Asha(Strict):
    """Early stopping by ASHA on val_acc, each arm's trials compared only with its own; stopped
    trials count as pruned in their arm's study; confirmation trials are never stopped."""

    grace_period: int = Field(1, ge=1, description="epochs every trial runs before it may be stopped")
    reduction_factor: float = Field(3.0, gt=1, description="fraction 1/reduction_factor of trials promoted per rung")


def _gpu_share(value: Any) -> float | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError("must be a fraction of one GPU in [0, 1], or auto")
    return float(value)


# what editors check against (`sweep schema`); _gpu_share is what the spec is checked with
GpuShareInput = Union[Annotated[float, Field(ge=0, le=1)], Literal["auto"]]
GpuShare = Annotated[Union[float, Literal["auto"]], PlainValidator(_gpu_share, json_schema_input_type=GpuShareInput)]


class ModelResources(Strict):
    """One model's placement, replacing the spec-wide `resources` fields it sets."""

    cpus: float | None = Field(None, gt=0, description="CPU cores per trial of this model")
    gpu: GpuShare | None = Field(None, description="fraction of one GPU per trial, or auto (sized from its memory)")
    cards: list[str] | None = Field(None, min_length=1, description="card models allowed, e.g. ['TITAN RTX']")
    min_gpu_memory_gb: float | None = Field(None, gt=0, description="smallest card memory allowed, in GB (GiB)")


class Resources(Strict):
    cpus: float = Field(1.0, gt=0, description="CPU cores per trial (also its PyTorch thread count, rounded up)")
    gpu: GpuShare = Field(
        0.0, description="fraction of one GPU per trial (0.25 puts four trials on a card; 0 trains on CPUs), or auto"
    )
    cards: list[str] | None = Field(None, min_length=1, description="card models the trials may use (any when unset)")
    min_gpu_memory_gb: float | None = Field(None, gt=0, description="smallest card memory the trials may use, in GB (GiB)")
    models: dict[str, ModelResources] = Field(default_factory=dict, description="per model, fields replacing those above")

    def for_model(self, model: str) -> ModelResources:
        """The effective placement fields of one model's trials."""
        own = self.models.get(model, ModelResources())
        base = {key: getattr(self, key) for key in ModelResources.model_fields}
        return ModelResources(**{**base, **own.model_dump(exclude_none=True)})


class Tracking(Strict):
    mlflow_uri: str = Field(
        default_factory=defaults.mlflow_uri,
        description=f"MLflow tracking URI: a SQLite file, or the server's URL on a cluster (default: {defaults.MLFLOW_URI_HELP})",
    )
    optuna_storage: str = Field(
        default_factory=defaults.optuna_storage,
        description=f"database URL of the Optuna studies, never MLflow's database (default: {defaults.OPTUNA_STORAGE_HELP})",
    )
    system_metrics_every_s: float = Field(
        default=5.0,
        ge=0,
        description="seconds between samples of each node's CPU, memory and GPU use, logged by MLflow's system-metrics "
        "monitor to one run per Ray node under the sweep's parent run; 0 turns it off",
    )

    @model_validator(mode="after")
    def _separate_databases(self) -> Tracking:
        # MLflow and Optuna both keep an alembic_version table: one database cannot hold both.
        if self.mlflow_uri == self.optuna_storage:
            raise ValueError("optuna_storage: must not be MLflow's database (both use alembic_version)")
        return self


class Checkpoints(Strict):
    path: Path = Field(
        default_factory=defaults.checkpoints,
        description="folder of the sweep's own state, and of Ray Tune's results and checkpoints unless `storage` is set; "
        f"on a cluster, a folder every node mounts at the same path (default: {defaults.CHECKPOINTS_HELP})",
    )
    storage: str | None = Field(
        default_factory=defaults.checkpoint_storage,
        pattern=r"^s3://[^/]+",
        description="S3-compatible s3://BUCKET/PREFIX for Ray Tune's results and checkpoints instead of `path` "
        f"(credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; default: ${defaults.CHECKPOINT_STORAGE_ENV})",
    )
    endpoint: str | None = Field(
        default_factory=defaults.s3_endpoint,
        pattern=r"^https?://",
        description=f"URL of an S3-compatible server, e.g. http://nas.lab:9000 (default: ${defaults.S3_ENDPOINT_ENV}, else AWS)",
    )
    every: int = Field(1, ge=1, description="checkpoint every this many epochs")
    every_s: float = Field(
        0.0,
        ge=0,
        description="and at most once per this many seconds of a trial's training (0: no limit); the last epoch "
        "always checkpoints, and a retried or resumed trial repeats at most this much. For sweeps of short epochs: "
        "each checkpoint makes Ray Tune save the whole experiment's state (docs/platform.md)",
    )
