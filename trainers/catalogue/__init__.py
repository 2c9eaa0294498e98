"""What trainers/ can build, known without PyTorch: every update rule, model and data set by name,
with the capability flags and options a config is checked against.

The registries in optim/, models/ and data/ bind a factory to each entry here, and refuse at import
one that disagrees with its entry (an unknown name, other options). Only the standard library is
imported, so a spec is validated, a saved sweep's status read, its report drawn and the registries
listed without importing torch (docs/architecture.md, "Dependency directions").
"""

from .datasets import DatasetInfo, DataShape, data_shape, get_dataset_info, held_out, list_datasets
from .models import ModelInfo, check_model_options, get_model_info, list_models
from .rules import RuleInfo, get_rule, list_optimizers

__all__ = [
    "DataShape",
    "DatasetInfo",
    "ModelInfo",
    "RuleInfo",
    "check_model_options",
    "data_shape",
    "get_dataset_info",
    "get_model_info",
    "get_rule",
    "held_out",
    "list_datasets",
    "list_models",
    "list_optimizers",
]
