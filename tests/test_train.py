"""The shared trainer: every rule learns, runs repeat exactly, resume is exact, divergence ends a run."""

import copy
import functools
import math

import pytest
import torch

from trainers.catalogue import list_optimizers
from trainers.config import TrainConfig
from trainers.errors import ConfigError
from trainers.train import fit

# Per-rule learning rates: the unit-gradient rules take steps of length lr whatever the loss,
# so their useful lr differs from SGD's (docs/optimizers.md).
LR = {"sgd": 0.05, "ugd": 0.5, "sam": 0.05, "asam": 0.05, "sam_gns": 0.5}


def digits_config(**overrides):
    base = dict(dataset="digits", model="small_cnn", epochs=3, batch_size=32, seed=0)
    return TrainConfig(**{**base, **overrides})


def curve(cfg, state=None):
    reports = []
    fit(cfg, lambda metrics, st: reports.append((metrics, copy.deepcopy(st))), state)
    return reports


MEASURED = {"epoch_time_s", "images_per_s", "peak_rss_mb", "peak_gpu_memory_mb"}  # the machine's, not the run's


def numbers(metrics):
    return {k: v for k, v in metrics.items() if k not in MEASURED}


@pytest.mark.parametrize("rule", list_optimizers())
def test_every_rule_trains_the_small_network_on_digits_above_90_percent(rule):
    final = fit(digits_config(optimizer=rule, lr=LR[rule], epochs=5))
    assert final["status"] == "finished" and final["epoch"] == 5
    assert final["test_acc"] > 90.0, final
    assert final["val_acc"] > 90.0, final


def test_reported_metrics_per_epoch():
    reports = curve(digits_config(optimizer="sam", lr=0.05, epochs=2))
    assert [m["epoch"] for m, _ in reports] == [1, 2]
    assert [m["status"] for m, _ in reports] == ["running", "finished"]
    for metrics, state in reports:
        assert set(metrics) == {
            "epoch",
            "status",
            "train_loss",
            "train_acc",
            "val_loss",
            "val_acc",
            "test_loss",
            "test_acc",
            "lr",
            "epoch_time_s",
            "images_per_s",
            "peak_rss_mb",  # on the CPU; peak_gpu_memory_mb on a card (tests/test_hardware.py)
        }
        assert 0 <= metrics["test_acc"] <= 100 and metrics["epoch_time_s"] > 0
        assert metrics["images_per_s"] > 0 and metrics["peak_rss_mb"] > 0
        assert state["epoch"] == metrics["epoch"]
    # cosine annealing over 2 epochs, stepped per epoch: lr, then lr / 2
    assert [m["lr"] for m, _ in reports] == [0.05, pytest.approx(0.025)]


@pytest.mark.parametrize("rule", ["sgd", "sam_gns", "asam"])
def test_resume_after_epoch_k_gives_the_same_curve(rule):
    cfg = digits_config(optimizer=rule, lr=LR[rule], epochs=3, augment=True)
    straight = curve(cfg)
    resumed = curve(cfg, state=straight[0][1])
    assert [m["epoch"] for m, _ in resumed] == [2, 3]
    for (a, _), (b, _) in zip(straight[1:], resumed):
        assert numbers(a) == numbers(b)
    for key, tensor in straight[-1][1]["model"].items():
        assert torch.equal(tensor, resumed[-1][1]["model"][key]), key


def test_resuming_a_finished_run_trains_nothing():
    cfg = digits_config(optimizer="sgd", lr=0.05, epochs=1)
    ((metrics, state),) = curve(cfg)
    assert curve(cfg, state=state) == []


def test_same_seed_same_curve_and_other_seed_other_curve():
    a = [numbers(m) for m, _ in curve(digits_config(optimizer="sam_gns", lr=0.5, epochs=2))]
    b = [numbers(m) for m, _ in curve(digits_config(optimizer="sam_gns", lr=0.5, epochs=2))]
    c = [numbers(m) for m, _ in curve(digits_config(optimizer="sam_gns", lr=0.5, epochs=2, seed=1))]
    assert a == b
    assert a != c


def test_non_finite_loss_ends_the_run_as_diverged():
    reports = curve(digits_config(optimizer="sgd", lr=1e30, momentum=0.0, weight_decay=0.0, epochs=4))
    last = reports[-1][0]
    assert last["status"] == "diverged"
    assert not math.isfinite(last["train_loss"])
    assert len(reports) < 4
    assert all(m["status"] == "running" for m, _ in reports[:-1])


def test_cifar_files_train_end_to_end(cifar_root):
    root, _ = cifar_root
    for kind in ("cifar10", "cifar100"):
        final = fit(
            TrainConfig(
                dataset=kind,
                data_dir=root,
                model="small_cnn",
                model_options={"width": 4},
                epochs=1,
                batch_size=25,
                val_fraction=0.2,
                augment=True,
            )
        )
        assert final["status"] == "finished" and 0 <= final["test_acc"] <= 100


def test_validation_split_too_large_is_a_config_error():
    with pytest.raises(ConfigError, match="val_fraction"):
        fit(digits_config(val_fraction=0.9999))


def test_bf16_autocast_and_channels_last_options_train():
    """The CUDA speed options take the same code path on the CPU (bfloat16 autocast works there)."""
    reports = curve(digits_config(optimizer="sam_gns", lr=0.5, epochs=2, bf16=True, channels_last=True))
    assert [m["status"] for m, _ in reports] == ["running", "finished"]
    assert all(math.isfinite(m["train_loss"]) for m, _ in reports)
    assert reports[-1][0]["train_loss"] < reports[0][0]["train_loss"]
    assert all(t.dtype == torch.float32 for t in reports[-1][1]["model"].values() if t.is_floating_point())


@pytest.mark.slow
def test_compiled_runs_train_and_their_checkpoints_load_without_compile(monkeypatch):
    """torch.compile wraps only the forward: weights, BN freezing and checkpoints stay the module's."""
    # Dynamo's capture and AOTAutograd's forward and backward graphs, as the default backend has
    # them, without Inductor generating and compiling C++ for the CPU (26 s of a 2-core machine
    # against 5): the code generated is no part of what is checked here
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    cfg = digits_config(optimizer="sam_gns", lr=0.5, epochs=2, compile=True, model_options={"width": 4})
    reports = curve(cfg)
    assert [m["status"] for m, _ in reports] == ["running", "finished"]
    state = reports[0][1]
    assert not any(key.startswith("_orig_mod") for key in state["model"])
    resumed = curve(cfg.model_copy(update={"compile": False}), state=state)
    assert [m["epoch"] for m, _ in resumed] == [2] and math.isfinite(resumed[0][0]["train_loss"])
