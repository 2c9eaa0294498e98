"""UPANets (upanet16, upanet64) and resnet18_cpa: shapes for CIFAR-10/100 and pinned sizes."""

import pytest
import torch

from trainers.catalogue import get_model_info

# imported explicitly so the factories register whether or not models/__init__.py lists them
from trainers.models import create_model, resnet_cpa, upanet  # noqa: F401

# parameter counts with 10 classes, as documented in each factory's docstring; a change to a
# network's layers shows up here
CIFAR10_PARAMS = {
    "upanet16": 1_512_431,  # paper: ~1.51M
    "upanet64": 24_017_183,  # paper: ~23.59M (difference unexplained, see upanet64's docstring)
    "resnet18_cpa": 11_704_010,  # paper: ~11.71M
}
CIFAR100_PARAMS = {"upanet16": 1_557_161, "upanet64": 24_195_833, "resnet18_cpa": 11_750_180}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(CIFAR10_PARAMS))
@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_batch_maps_to_one_logit_per_class(name, num_classes):
    torch.manual_seed(0)
    model = create_model(name, num_classes).eval()
    assert get_model_info(name).input_size == 32
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", sorted(CIFAR10_PARAMS))
def test_parameter_counts_are_the_documented_ones(name):
    assert n_params(create_model(name, 10)) == CIFAR10_PARAMS[name]
    assert n_params(create_model(name, 100)) == CIFAR100_PARAMS[name]


def test_upanet16_and_resnet18_cpa_match_the_papers_sizes():
    for name in ("upanet16", "resnet18_cpa"):
        paper = get_model_info(name).paper_params_m * 1e6
        assert abs(CIFAR10_PARAMS[name] - paper) / paper < 0.01, name


def test_training_step_reaches_every_parameter():
    # one backward pass in train mode leaves no parameter outside the graph: every layer, SPA and
    # both CPA maps included, is on the path to the logits. (Only "reached", not "non-zero": a
    # bias right before a BatchNorm or a LayerNorm, like CPA's channel map or SPA's bias, gets a
    # gradient that is zero up to rounding, as in the authors' network.)
    torch.manual_seed(0)
    for name in ("upanet16", "resnet18_cpa"):
        model = create_model(name, 100).train()
        model(torch.randn(4, 3, 32, 32)).logsumexp(dim=1).sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, (name, missing)
