"""A spec from YAML: size and encoding limits, the safe loader (safe_yaml.py), `--set a.b=value`
overrides, pydantic's errors rewritten as one `field.path: message` line each, the path as the
user wrote it, and the checks that build each model (checks.py)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from trainers.config import describe_errors

from ..errors import UserError
from ..redact import redact
from .checks import problems
from .limits import MAX_DEPTH, MAX_SPEC_BYTES
from .safe_yaml import SpecYAMLError, parse
from .schema import SweepSpec
from .sections import UNION_TAGS


def load_spec(path: Path, overrides: list[str] = ()) -> SweepSpec:
    """Read a YAML spec, apply `--set a.b=value` overrides, validate. Raises UserError."""
    raw = _read(path)
    for item in overrides:
        apply_override(raw, item)
    return validate_spec(raw)


def read_saved_spec(path: Path) -> SweepSpec:
    """A spec a sweep saved when it started (dump_spec): its fields validated, its models not built
    again (checks.py ran when it was first loaded), so `sweep status`, `sweep list sweeps` and the
    report read it without importing torch. Raises UserError."""
    return _fields(_read(path))


def _read(path: Path) -> dict:
    try:
        size = Path(path).stat().st_size
        if size > MAX_SPEC_BYTES:  # a spec is a page of YAML; refuse before parsing it
            raise UserError([f"{path}: {size} bytes, larger than a spec's {MAX_SPEC_BYTES} bytes"])
        raw = parse(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError([f"{path}: {err.strerror}"]) from None
    except UnicodeDecodeError:
        raise UserError([f"{path}: not UTF-8 text"]) from None
    except SpecYAMLError as err:
        raise UserError([f"{err.where(str(path))}: {err.message}"]) from None
    if not isinstance(raw, dict):
        raise UserError([f"{path}: expected a mapping of spec fields"])
    return raw


def apply_override(raw: dict, item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise UserError([f"--set {item}: expected key=value, e.g. search.trials_per_arm=2"])
    *parents, leaf = key.split(".")
    if len(parents) >= MAX_DEPTH:
        raise UserError([f"--set {item:.60}: a path of more than {MAX_DEPTH} fields; a spec needs a few levels"])
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError([f"--set {item}: {part} is not a mapping"])
    try:
        node[leaf] = parse(text)  # the file's loader: no aliases, no deep nesting, no key twice
    except SpecYAMLError as err:
        raise UserError([f"--set {item}: {err.message}"]) from None


def validate_spec(raw: dict) -> SweepSpec:
    """The spec, or a UserError with every problem: the fields' own first, then (once they are
    valid) what only building the trials shows, e.g. a model option no model can be built with."""
    spec = _fields(raw)
    found = problems(spec)
    if found:
        raise UserError(found)
    return spec


def _fields(raw: dict) -> SweepSpec:
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as err:
        raise UserError([_nest(line) for line in describe_errors(err)]) from None


def _nest(line: str) -> str:
    """pydantic reports a model-level error at its parent's path with the field in the message
    (`search.space.rho: low: must be > 0`); join the two into one path."""
    path, _, message = line.partition(": ")
    # the union's tag is no part of the path a user wrote
    path = ".".join(part for part in path.split(".") if part not in UNION_TAGS)
    inner, sep, rest = message.partition(": ")
    if sep and all(part.isidentifier() for part in inner.split(".")):
        return f"{path}.{inner}: {rest}"
    return f"{path}: {message}"


def dump_spec(spec: SweepSpec, redacted: bool = False) -> str:
    """The spec as YAML; with `redacted`, passwords in the tracking URIs become *** (for copies that
    others read: the MLflow parent run)."""
    data = spec.model_dump(mode="json")
    if redacted:
        data["tracking"] = {key: redact(value) if isinstance(value, str) else value for key, value in data["tracking"].items()}
    return yaml.safe_dump(data, sort_keys=False)
