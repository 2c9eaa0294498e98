"""What a sweep is: the SweepSpec schema, its YAML loading and `--set` overrides, and the Arm.

Imports trainers (TrainConfig, the registries and the build step, to check every arm's trials and
build each model on PyTorch's meta device) and pydantic, never ray, optuna or mlflow: a spec is
checked before anything starts.
"""

from .arm import Arm, searched
from .loading import apply_override, dump_spec, load_spec, validate_spec
from .schema import Checkpoints, Choice, Dimension, Range, Resources, Search, SweepSpec, Tracking

__all__ = [
    "Arm",
    "Checkpoints",
    "Choice",
    "Dimension",
    "Range",
    "Resources",
    "Search",
    "SweepSpec",
    "Tracking",
    "apply_override",
    "dump_spec",
    "load_spec",
    "searched",
    "validate_spec",
]
