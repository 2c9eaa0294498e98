"""CIFAR networks: sizes match the paper's figures, and every one maps 32x32 images to class logits."""

import pytest
import torch

import trainers.models.densenet
import trainers.models.dla
import trainers.models.resnet
import trainers.models.vgg
import trainers.models.wide_resnet  # noqa: F401
from trainers.catalogue import get_model_info
from trainers.models import create_model

# Exact counts on CIFAR-10 (10 classes) from these implementations.
CIFAR10_PARAMS = {
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    "vgg16": 14_728_266,
    "dla": 16_291_386,
    "densenet121": 6_956_298,
    "wrn16_8": 10_961_370,
    "wrn28_10": 36_479_194,
}
WITH_PAPER_FIGURE = ["resnet18", "resnet50", "vgg16", "dla", "densenet121"]


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", WITH_PAPER_FIGURE)
def test_size_on_cifar10_matches_the_paper(name):
    info = get_model_info(name)
    assert info.input_size == 32
    count = num_params(create_model(name, 10))
    assert count == pytest.approx(info.paper_params_m * 1e6, rel=0.01)
    assert count == CIFAR10_PARAMS[name]


@pytest.mark.parametrize("name", ["wrn16_8", "wrn28_10"])
def test_wide_resnet_sizes(name):
    assert get_model_info(name).paper_params_m is None
    assert num_params(create_model(name, 10)) == CIFAR10_PARAMS[name]


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("name", sorted(CIFAR10_PARAMS))
def test_maps_a_cifar_batch_to_logits(name, num_classes):
    torch.manual_seed(0)
    model = create_model(name, num_classes).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()


def test_wide_resnet_dropout_option_is_used():
    model = create_model("wrn16_8", 100, dropout=0.3)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in model.modules())
