"""The networks: CIFAR versions of the paper's models, torchvision's ImageNet ones, a small CNN.

Their names, input sizes and options are in trainers/catalogue/models.py (`list_models`,
`get_model_info`), known without importing torch; `create_model` builds one.
"""

from . import densenet, dla, resnet, resnet_cpa, small, torchvision_nets, upanet, vgg, wide_resnet  # noqa: F401  (registers)
from .registry import create_model, register_model

__all__ = ["create_model", "register_model"]
