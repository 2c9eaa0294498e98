"""What a sweep is: the SweepSpec schema, its YAML loading and `--set` overrides, and the Arm.

Imports trainers (TrainConfig and the catalogue, to check every arm's trials; the build step, to
build each model on PyTorch's meta device when a spec is first loaded) and pydantic, never ray,
optuna or mlflow: a spec is checked before anything starts. A saved spec is read without torch.
"""

from .arm import Arm, searched
from .loading import apply_override, dump_spec, load_spec, read_saved_spec, validate_spec
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
    "read_saved_spec",
    "searched",
    "validate_spec",
]
