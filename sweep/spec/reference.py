"""The spec reference (docs/spec.md) and its JSON Schema (`sweep schema`), generated from the
pydantic models so neither can drift.

    python -m sweep.spec.reference > docs/spec.md

tests/test_spec.py checks that the file in docs/ is what this prints.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from trainers.catalogue import list_datasets, list_models, list_optimizers
from trainers.config import SyntheticData, TrainConfig

from . import limits
from .schema import ARM_FIELDS, SweepSpec
from .sections import (
    SEARCHABLE,
    Asha,
    Checkpoints,
    Choice,
    ConfirmCount,
    ConfirmSeeds,
    Dimension,
    GpuShare,
    ModelResources,
    Range,
    ReportOptions,
    Resources,
    Search,
    Tracking,
)

# each model's section, in reading order, with what it is
SECTIONS: list[tuple[type[BaseModel], str, str]] = [
    (SweepSpec, "The spec", "the top level of a spec file"),
    (Search, "search", "how each arm searches; every arm gets the same budget"),
    (Range, "A range", "a dimension of `search.space`, sampled uniformly (log-uniformly with `log: true`)"),
    (Choice, "A choice", "a dimension of `search.space` with a finite set of values (a grid's only kind)"),
    (ConfirmSeeds, "confirm_seeds: {min, max}", "confirmation seeds added one at a time until every comparison is decided"),
    (ReportOptions, "report", "how the report compares the rules"),
    (Asha, "scheduler", "early stopping by ASHA on `val_acc`, per arm"),
    (Resources, "resources", "what each trial asks of the cluster"),
    (ModelResources, "resources.models.MODEL", "one model's placement, replacing the fields above it sets"),
    (Tracking, "tracking", "where runs and studies are stored"),
    (Checkpoints, "checkpoints", "where the sweep's state and checkpoints go"),
    (TrainConfig, "train", "fixed training settings of every trial: any TrainConfig field but the arm's own"),
    (SyntheticData, "train.synthetic", "the shape of the `synthetic` data set"),
]
NAMED = {
    Dimension: "number, range or choices",
    GpuShare: "fraction in [0, 1], or auto",
    ConfirmCount: "integer, or [{min, max}](#confirm_seeds-min-max)",
}


def _type(annotation: Any) -> str:
    if annotation in NAMED:
        return NAMED[annotation]
    for model, title, _ in SECTIONS:
        if annotation is model:
            return f"[{title}](#{_anchor(title)})"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none" if arg is type(None) else _type(arg) for arg in args)
    if origin is typing.Literal:
        return " / ".join(f"`{arg}`" for arg in args)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"mapping of {_type(args[0])} to {_type(args[1])}"
    if origin is typing.Annotated:
        return _type(args[0])
    return {"str": "text", "float": "number", "int": "integer", "bool": "true / false", "Path": "path", "Any": "any"}.get(
        getattr(annotation, "__name__", str(annotation)), str(annotation)
    )


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is None:
        return f"`{json.dumps(field.default, default=str)}`"
    if field.default_factory.__module__.endswith("defaults"):  # read from the environment
        return "see description"
    value = field.default_factory()
    return "its section's defaults" if isinstance(value, BaseModel) else f"`{json.dumps(value, default=str)}`"


def _anchor(title: str) -> str:
    return "".join(ch for ch in title.lower().replace(" ", "-") if ch.isalnum() or ch in "-_")


def _table(model: type[BaseModel], skip: tuple[str, ...] = ()) -> str:
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name not in skip:
            meaning = (field.description or "").replace("|", "\\|")
            rows.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {meaning} |")
    return "\n".join(rows)


LIMITS = (
    f"Limits no real sweep reaches (sweep/spec/limits.py): `train.epochs` at most {limits.MAX_EPOCHS}, "
    f"`search.trials_per_arm` {limits.MAX_TRIALS_PER_ARM},\na grid's trials per arm {limits.MAX_GRID_POINTS}, "
    f"`seeds` {limits.MAX_SEEDS} entries, `confirm_seeds` {limits.MAX_CONFIRM_SEEDS}, `retries` {limits.MAX_RETRIES}; "
    f"the file {limits.MAX_SPEC_BYTES} bytes,\nnested at most {limits.MAX_DEPTH} deep, {limits.MAX_NODES} keys and values, "
    "no anchors or aliases, no key twice in one mapping.\n`train.batch_size` must fit in the training split "
    "(the data set's training images less the `val_fraction` held out),\nand every model must build with "
    "`train.model_options`."
)


def render() -> str:
    parts = [
        "# Spec reference",
        "Generated from the pydantic models by `python -m sweep.spec.reference > docs/spec.md`; do not edit by hand.\n"
        "A spec is one YAML file (see `search_spaces/`); `sweep validate SPEC` checks it and starts nothing, and\n"
        "`sweep run SPEC --set a.b=value` overrides any field by its dotted path. Unknown keys are refused.",
        LIMITS,
    ]
    for model, title, what in SECTIONS:
        skip = ARM_FIELDS if model is TrainConfig else ()
        note = f" (`{'`, `'.join(ARM_FIELDS)}` come from the spec's models, optimizers and seeds)" if skip else ""
        parts += [f"## {title}", f"{what[0].upper()}{what[1:]}{note}.", _table(model, skip)]
    return "\n\n".join(parts) + "\n"


def json_schema() -> dict[str, Any]:
    """SweepSpec's JSON Schema for editors, with what its free-form fields accept spelled out:
    `train` as the TrainConfig fields a spec may set, and the registry keys as the only names.
    It checks types and bounds; `sweep validate` checks the rest (e.g. that a model builds)."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **SweepSpec.model_json_schema()}
    train = TrainConfig.model_json_schema(ref_template="#/$defs/{model}")
    schema["$defs"].update(train.pop("$defs", {}))
    for name in ARM_FIELDS:
        train["properties"].pop(name)
    schema["$defs"]["Train"] = {**train, "title": "Train"}
    fields = schema["properties"]
    fields["train"] = {"$ref": "#/$defs/Train", "description": SweepSpec.model_fields["train"].description}
    fields["dataset"]["enum"] = list_datasets()
    fields["models"]["items"]["enum"] = list_models()
    fields["optimizers"]["items"]["enum"] = list_optimizers()
    search = schema["$defs"]["Search"]["properties"]
    search["space"]["propertyNames"] = {"enum": list(SEARCHABLE)}
    search["overrides"]["propertyNames"] = {"enum": list_optimizers()}
    search["overrides"]["additionalProperties"]["propertyNames"] = {"enum": list(SEARCHABLE)}
    return schema


if __name__ == "__main__":
    print(render(), end="")
