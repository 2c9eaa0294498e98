"""Model registry and the networks it holds (import the model files so they register)."""

from . import densenet, dla, resnet, resnet_cpa, small, torchvision_nets, upanet, vgg, wide_resnet  # noqa: F401  (registers)
from .registry import ModelInfo, check_model_options, create_model, get_model_info, list_models, register_model

__all__ = ["ModelInfo", "check_model_options", "create_model", "get_model_info", "list_models", "register_model"]
