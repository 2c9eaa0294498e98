"""Input normalisation: ImageNet's mean and std for pretrained networks, the data set's own otherwise."""

import pytest
import torch
from pydantic import ValidationError

from trainers.config import TrainConfig
from trainers.data import IMAGENET_MEAN, IMAGENET_STD, DataSet, Split, normalization
from trainers.errors import ConfigError
from trainers.train import Run

OWN = ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))


def data_set(channels: int = 3) -> DataSet:
    images = torch.zeros(4, channels, 8, 8, dtype=torch.uint8)
    split = Split(images, torch.zeros(4, dtype=torch.int64))
    return DataSet(split, split, 10, OWN[0][:channels], OWN[1][:channels])


def chosen(**fields) -> tuple:
    # a tv_* config with pretrained: true is only read here, never built: no weights are fetched
    cfg = TrainConfig(dataset="synthetic", **fields)
    return normalization(data_set(), cfg.normalize, cfg.pretrained)


def test_auto_is_imagenet_for_a_pretrained_network_and_the_data_sets_own_otherwise():
    assert TrainConfig().normalize == "auto"
    assert chosen(model="tv_resnet18", pretrained=True) == (IMAGENET_MEAN, IMAGENET_STD)
    assert chosen(model="tv_resnet18") == OWN
    assert chosen(model="small_cnn") == OWN


def test_an_explicit_choice_wins_over_pretrained():
    assert chosen(model="tv_resnet18", pretrained=True, normalize="dataset") == OWN
    assert chosen(model="small_cnn", normalize="imagenet") == (IMAGENET_MEAN, IMAGENET_STD)


def test_unknown_choice_is_refused_by_validation():
    with pytest.raises(ValidationError, match="normalize"):
        TrainConfig(normalize="imagnet")


def test_grey_images_take_imagenet_stats_after_becoming_rgb_and_other_channel_counts_cannot():
    assert normalization(data_set(channels=1), "imagenet", False) == (IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(ConfigError, match="normalize: .* not 2 channels"):
        normalization(data_set(channels=2), "imagenet", False)


def run_of(channels: int, normalize: str) -> Run:
    synthetic = {"images": 40, "image_size": 32, "channels": channels}  # small_cnn takes them as they are
    cfg = TrainConfig(
        dataset="synthetic",
        synthetic=synthetic,
        model="small_cnn",
        model_options={"width": 4},
        normalize=normalize,
        device="cpu",
        epochs=1,
        eval_batch_size=40,
    )
    return Run(cfg)


@pytest.mark.parametrize(
    ("channels", "normalize", "mean", "std"),
    [
        (3, "imagenet", IMAGENET_MEAN, IMAGENET_STD),
        (3, "dataset", (0.5,) * 3, (0.29,) * 3),  # synthetic's own statistics
        (1, "imagenet", IMAGENET_MEAN, IMAGENET_STD),  # each RGB copy of the grey channel gets its own
    ],
)
def test_a_runs_batches_are_normalised_with_the_chosen_stats(channels, normalize, mean, std):
    run = run_of(channels, normalize)
    # one constant image per grey level: after normalisation channel c holds (level / 255 - mean_c) / std_c
    levels = torch.tensor([0, 51, 255], dtype=torch.uint8)
    images = levels.view(-1, 1, 1, 1).expand(-1, channels, 32, 32).contiguous()
    batches = run.eval_batches["test"]
    batches.split = Split(images, torch.zeros(len(levels), dtype=torch.int64))
    ((x, _),) = list(batches)
    assert x.shape == (3, 3, 32, 32)
    want = (levels.double().view(-1, 1) / 255 - torch.tensor(mean, dtype=torch.float64)) / torch.tensor(std, dtype=torch.float64)
    got = x.double().mean(dim=(2, 3))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert torch.all(x.double().std(dim=(2, 3)) < 1e-6)  # constant images stay constant
