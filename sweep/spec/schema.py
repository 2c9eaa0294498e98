"""SweepSpec: what a sweep compares, how it searches, where it runs and logs. Loaded from YAML.

An arm is one (model, update rule) pair. Every arm gets the same trial budget and its own search
over the space (per-rule overrides allowed, e.g. a ten times larger rho range for ASAM), so the
comparison is fair. Errors name the field path, e.g.
`search.space.rho.low: must be > 0 for a log range`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trainers.config import TrainConfig, describe_errors
from trainers.models import get_model_info
from trainers.optim import get_rule, list_optimizers

from .. import defaults
from ..errors import UserError
from ..redact import redact as redact_text
from .arm import Arm

SEARCHABLE = ("lr", "rho", "eta", "momentum", "weight_decay")  # TrainConfig fields a space may vary
ARM_FIELDS = ("dataset", "model", "optimizer", "seed")
MAX_SPEC_BYTES = 1_000_000  # set per arm or per trial, not in `train`


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Range(_Strict):
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


class Choice(_Strict):
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
_DIMENSION_TAGS = ("fixed", "range", "choice")


class Search(_Strict):
    method: Literal["optuna", "grid", "random"] = Field(
        "optuna", description="optuna: seeded TPE per arm; random: seeded random sampling; grid: every combination"
    )
    trials_per_arm: int | None = Field(
        None, ge=1, description="trials each arm runs (required for optuna/random; a grid runs all its points)"
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


class Asha(_Strict):
    """Early stopping by ASHA on val_acc; stopped trials count as pruned in their arm's study."""

    grace_period: int = Field(1, ge=1, description="epochs every trial runs before it may be stopped")
    reduction_factor: float = Field(3.0, gt=1, description="fraction 1/reduction_factor of trials promoted per rung")


def _gpu_share(value: Any) -> float | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError("must be a fraction of one GPU in [0, 1], or auto")
    return float(value)


GpuShare = Annotated[Union[float, Literal["auto"]], PlainValidator(_gpu_share)]


class ModelResources(_Strict):
    """One model's placement, replacing the spec-wide `resources` fields it sets."""

    cpus: float | None = Field(None, gt=0, description="CPU cores per trial of this model")
    gpu: GpuShare | None = Field(None, description="fraction of one GPU per trial, or auto (sized from its memory)")
    cards: list[str] | None = Field(None, min_length=1, description="card models allowed, e.g. ['TITAN RTX']")
    min_gpu_memory_gb: float | None = Field(None, gt=0, description="smallest card memory allowed, in GB (GiB)")


class Resources(_Strict):
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


class Tracking(_Strict):
    mlflow_uri: str = Field(
        default_factory=defaults.mlflow_uri,
        description=f"MLflow tracking URI: a SQLite file, or the server's URL on a cluster (default: {defaults.MLFLOW_URI_HELP})",
    )
    optuna_storage: str = Field(
        default_factory=defaults.optuna_storage,
        description=f"database URL of the Optuna studies, never MLflow's database (default: {defaults.OPTUNA_STORAGE_HELP})",
    )

    @model_validator(mode="after")
    def _separate_databases(self) -> Tracking:
        # MLflow and Optuna both keep an alembic_version table: one database cannot hold both.
        if self.mlflow_uri == self.optuna_storage:
            raise ValueError("optuna_storage: must not be MLflow's database (both use alembic_version)")
        return self


class Checkpoints(_Strict):
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


class SweepSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="sweep name: MLflow experiment, Ray run, studies")
    dataset: str = Field(description="data set registry key")
    models: list[str] = Field(min_length=1, description="model registry keys to compare")
    optimizers: list[str] = Field(min_length=1, description="update rules to compare")
    train: dict[str, Any] = Field(default_factory=dict, description="fixed TrainConfig fields for every trial")
    search: Search = Field(default_factory=lambda: Search(trials_per_arm=1), description="the search per arm")
    seeds: list[int] = Field([0], min_length=1, description="training seeds: a grid runs each; optuna/random cycle through them")
    confirm_seeds: int = Field(
        0, ge=0, description="after the search, train each arm's best setting again with this many new seeds"
    )
    scheduler: Asha | None = Field(None, description="optional early stopping (ASHA)")
    resources: Resources = Field(default_factory=Resources, description="what each trial asks of the cluster")
    tracking: Tracking = Field(default_factory=Tracking, description="where runs and studies are stored")
    checkpoints: Checkpoints = Field(default_factory=Checkpoints, description="where checkpoints go")
    retries: int = Field(1, ge=0, description="times a failed trial is retried from its last checkpoint")
    max_concurrent: int = Field(0, ge=0, description="trials running at once (0: as many as resources allow)")

    @field_validator("models", "optimizers")
    @classmethod
    def _registered(cls, names: list[str], info: ValidationInfo) -> list[str]:
        lookup = {"models": get_model_info, "optimizers": get_rule}[info.field_name]
        for name in names:
            lookup(name)  # raises ValueError listing the registered names
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

    @model_validator(mode="after")
    def _trials_are_valid(self) -> SweepSpec:
        """Every arm's trials validate as TrainConfig (checked at the corners of its space)."""
        for model, rule in self.arms():
            for corner in ("low", "high"):
                point = {name: _corner(dim, corner) for name, dim in self.space_for(rule).items()}
                try:
                    self.train_config(model, rule, self.seeds[0], point)
                except ValidationError as err:
                    lines = [_train_path(line, point) for line in describe_errors(err)]
                    raise ValueError("; ".join(lines) + f" (arm {Arm(model, rule)})") from None
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


def load_spec(path: Path, overrides: list[str] = ()) -> SweepSpec:
    """Read a YAML spec, apply `--set a.b=value` overrides, validate. Raises UserError."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_SPEC_BYTES:  # a spec is a page of YAML; refuse before parsing it
            raise UserError([f"{path}: {size} bytes, larger than a spec's {MAX_SPEC_BYTES} bytes"])
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError([f"{path}: {err.strerror}"]) from None
    except UnicodeDecodeError:
        raise UserError([f"{path}: not UTF-8 text"]) from None
    except yaml.YAMLError as err:
        raise UserError([f"{path}: not valid YAML ({str(err).splitlines()[0]})"]) from None
    if not isinstance(raw, dict):
        raise UserError([f"{path}: expected a mapping of spec fields"])
    for item in overrides:
        apply_override(raw, item)
    return validate_spec(raw)


def apply_override(raw: dict, item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise UserError([f"--set {item}: expected key=value, e.g. search.trials_per_arm=2"])
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError([f"--set {item}: {part} is not a mapping"])
    try:
        node[leaf] = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError([f"--set {item}: value is not valid YAML"]) from None


def validate_spec(raw: dict) -> SweepSpec:
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as err:
        raise UserError([_nest(line) for line in describe_errors(err)]) from None


def _nest(line: str) -> str:
    """pydantic reports a model-level error at its parent's path with the field in the message
    (`search.space.rho: low: must be > 0`); join the two into one path."""
    path, _, message = line.partition(": ")
    # the union's tag is no part of the path a user wrote
    path = ".".join(part for part in path.split(".") if part not in _DIMENSION_TAGS)
    inner, sep, rest = message.partition(": ")
    if sep and all(part.isidentifier() for part in inner.split(".")):
        return f"{path}.{inner}: {rest}"
    return f"{path}: {message}"


def dump_spec(spec: SweepSpec, redact: bool = False) -> str:
    """The spec as YAML; with `redact`, passwords in the tracking URIs become *** (for copies that
    others read: the MLflow parent run)."""
    data = spec.model_dump(mode="json")
    if redact:
        data["tracking"] = {key: redact_text(uri) for key, uri in data["tracking"].items()}
    return yaml.safe_dump(data, sort_keys=False)
