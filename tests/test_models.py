"""The model registry: every model takes num_classes, the ImageNet networks load their weights."""

import pytest
import torch
import torchvision

from trainers.catalogue import get_model_info, list_models
from trainers.config import TrainConfig
from trainers.models import create_model, torchvision_nets

CIFAR_MODELS = [name for name in list_models() if get_model_info(name).input_size == 32]
IMAGENET_MODELS = [name for name in list_models() if get_model_info(name).input_size == 224]


def test_registry_holds_the_papers_networks():
    paper = {"resnet18", "resnet18_cpa", "resnet50", "vgg16", "dla", "upanet16", "upanet64", "densenet121"}
    sam_benchmarks = {"wrn16_8", "wrn28_10"}
    table4 = {f"tv_{a}" for a in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet101_2", "vit_b_16")}
    assert paper | sam_benchmarks | table4 | {"small_cnn"} <= set(list_models())
    assert all(get_model_info(name).pretrained for name in table4)


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="known: densenet121, dla"):
        create_model("resnet19", 10)
    with pytest.raises(ValueError, match="model"):
        TrainConfig(model="resnet19")


def _output_shape(name, classes, batch=2, size=None):
    size = get_model_info(name).input_size or size
    model = create_model(name, classes).eval()
    with torch.no_grad():
        return model(torch.randn(batch, 3, size, size)).shape


@pytest.mark.parametrize("name", ["small_cnn"])
@pytest.mark.parametrize("classes", [10, 100])
def test_small_network_output_shape(name, classes):
    assert get_model_info(name).input_size is None  # it takes each data set at its own size
    for size in (8, 32):  # digits, CIFAR
        assert _output_shape(name, classes, size=size) == (2, classes)


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGENET_MODELS)
def test_imagenet_networks_take_num_classes(name):
    for classes in (10, 100):
        assert _output_shape(name, classes, batch=1) == (1, classes)


def test_model_options_are_checked_when_the_config_is_read():
    assert TrainConfig(model="small_cnn", model_options={"width": 4}).model_options == {"width": 4}
    with pytest.raises(ValueError, match="model_options: model 'small_cnn' takes options \\['width'\\]"):
        TrainConfig(model="small_cnn", model_options={"depth": 3})
    with pytest.raises(ValueError, match="pretrained: model 'small_cnn' has no ImageNet weights"):
        TrainConfig(model="small_cnn", pretrained=True)


def test_pretrained_weights_load_from_the_hub_cache(tmp_path, monkeypatch):
    """The real loading path: weights in torch's hub cache are read, and the head is replaced."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    imagenet = create_model("tv_resnet18", 1000)
    weights = torchvision.models.get_model_weights("resnet18")["IMAGENET1K_V1"]
    path = torchvision_nets._weights_file(weights)
    path.parent.mkdir(parents=True)
    torch.save(imagenet.state_dict(), path)

    model = create_model("tv_resnet18", 10, pretrained=True)
    assert torch.equal(model.conv1.weight, imagenet.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet.layer4[1].bn2.running_var)
    assert model.fc.out_features == 10


def test_missing_pretrained_weights_name_the_file_and_folder(tmp_path, monkeypatch):
    """No network here: the download fails, and the message says what to put where."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, *args, **kwargs):
        raise OSError(f"<urlopen error [Errno -3] Temporary failure in name resolution> ({url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError) as err:
        create_model("tv_vit_b_16", 10, pretrained=True)
    message = str(err.value)
    assert "vit_b_16-c867db91.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
