"""The memory estimate behind `gpu: auto`: what it counts, how it scales, that it allocates nothing,
and (on a GPU) that it lands near the peak a real training epoch reaches."""

import inspect
import resource

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainers.catalogue import ModelInfo, data_shape
from trainers.catalogue import models as catalogue_models
from trainers.config import TrainConfig
from trainers.data import load_dataset
from trainers.memory import (
    GIB,
    WORKSPACE_FRACTION,
    MemoryEstimate,
    estimate_train_memory,
)
from trainers.models import create_model, registry
from trainers.models.small import small_cnn


def estimate(**overrides) -> MemoryEstimate:
    return estimate_train_memory(TrainConfig(**overrides))


def counts(model: nn.Module) -> tuple[int, int]:
    """Parameter elements, and bytes of the buffers, of a model built for real."""
    return sum(p.numel() for p in model.parameters()), sum(b.nbytes for b in model.buffers())


def add_model(monkeypatch, name, factory, input_size=32):
    """Register a test-only model for the length of one test."""
    options = tuple(inspect.signature(factory).parameters)[1:]  # after num_classes
    monkeypatch.setitem(catalogue_models._MODELS, name, ModelInfo(name, input_size, "test model", options))
    monkeypatch.setitem(registry._FACTORIES, name, factory)


def test_small_cnn_on_digits_needs_far_less_than_resnet18_on_cifar():
    small = estimate(model="small_cnn", model_options={"width": 16}, batch_size=128, dataset="digits")
    large = estimate(model="resnet18", batch_size=128, dataset="cifar10")
    assert small.activations * 10 < large.activations
    assert small.total * 8 < large.total


def test_activations_grow_linearly_with_the_batch_and_evaluation_does_not_follow_it():
    at64 = estimate(model="resnet18", batch_size=64, dataset="cifar10")
    at128 = estimate(model="resnet18", batch_size=128, dataset="cifar10")
    assert at128.activations / at64.activations == pytest.approx(2.0, rel=0.01)
    assert at128.evaluation == at64.evaluation  # set by eval_batch_size alone
    assert (at128.weights, at128.gradients, at128.optimizer_state) == (at64.weights, at64.gradients, at64.optimizer_state)


@pytest.mark.parametrize("name, options", [("small_cnn", {"width": 16}), ("resnet18", {})])
def test_weights_and_gradients_are_exactly_four_bytes_per_parameter(name, options):
    n_params, buffer_bytes = counts(create_model(name, 10, **options))
    est = estimate(model=name, model_options=options, dataset="cifar10")
    assert est.weights == 4 * n_params + buffer_bytes  # float32 parameters, plus BN statistics
    assert est.gradients == 4 * n_params


@pytest.mark.parametrize(
    "rule, momentum, copies",
    [
        ("sgd", 0.0, 0),  # nothing kept between steps
        ("sgd", 0.9, 1),  # the momentum buffer
        ("ugd", 0.9, 1),  # the momentum buffer; g / ‖g‖ is scaled in place
        ("sam", 0.0, 1),  # the copy of w
        ("sam_gns", 0.9, 2),  # momentum and the copy of w
        ("asam", 0.9, 3),  # momentum, the copy of w and T = |w| + eta
    ],
)
def test_optimizer_state_is_what_each_rule_keeps_per_parameter(rule, momentum, copies):
    n_params, _ = counts(create_model("small_cnn", 10, width=16))
    est = estimate(model="small_cnn", model_options={"width": 16}, dataset="digits", optimizer=rule, momentum=momentum)
    assert est.optimizer_state == copies * 4 * n_params


def _mlp(num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4096), nn.ReLU(), nn.Linear(4096, num_classes))


def test_activations_count_each_saved_storage_once_and_no_parameter(monkeypatch):
    """One image through a 50 MB two-layer MLP: the linear layers save their weights too, yet
    activations are only what the forward made, each storage once (the flattened image is a view
    of the batch)."""
    add_model(monkeypatch, "mlp", _mlp)
    est = estimate(model="mlp", batch_size=1, dataset="cifar10")
    image, hidden, log_probs, label, total_weight = 3 * 32 * 32 * 4, 4096 * 4, 10 * 4, 8, 4
    assert est.activations == image + hidden + log_probs + label + total_weight
    assert est.weights > 1000 * est.activations
    # bf16: float32 tensors count half, and the second layer's weight (saved, as the hidden layer
    # needs a gradient) counts as autocast's bfloat16 copy; the first layer's is never saved
    bf16 = estimate(model="mlp", batch_size=1, dataset="cifar10", bf16=True)
    assert bf16.activations == (image + hidden + log_probs + total_weight) // 2 + label + 10 * 4096 * 2


def test_the_estimate_builds_nothing_for_real(monkeypatch):
    """ResNet-50 at 224 px and batch 256 would take about 0.1 GB of weights and 20 GB of
    activations on the CPU; the estimate must create every parameter and buffer on `meta`."""
    devices = []
    hooks = [
        nn.modules.module.register_module_parameter_registration_hook(lambda m, n, p: devices.append(p.device.type)),
        nn.modules.module.register_module_buffer_registration_hook(lambda m, n, b: devices.append(b.device.type)),
    ]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    try:
        est = estimate(model="tv_resnet50", batch_size=256, dataset="cifar10", pretrained=True)
    finally:
        for hook in hooks:
            hook.remove()
    assert devices and set(devices) == {"meta"}
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 300 * 1024
    assert est.activations > 10 * GIB  # and yet it measured the big pass


def test_resnet18_on_cifar_at_batch_128_is_in_a_band_counted_by_hand():
    """Independent count: CIFAR ResNet-18's 20 convolutions (stem, 16 in the blocks, 3 shortcut
    projections) output 614,400 values per image (64x32x32 for the stem and stage 1's 4 convs,
    5 maps of 128x16x16, 5 of 256x8x8, 5 of 512x4x4): 0.293 GiB at batch 128 in float32.
    Autograd keeps each conv output (BatchNorm's input) and each BN output (the in-place ReLU's
    result, which the next conv reads), plus the blocks' sums and ReLUs, max-free: between 1.5 and
    3 times the conv outputs, 0.44-0.88 GiB. (Higher figures seen in nvidia-smi add the CUDA
    context, cuDNN's kernels and the caching allocator's reserve.) Weights 11,173,962 x 4 B."""
    est = estimate(model="resnet18", batch_size=128, dataset="cifar10", optimizer="sgd", momentum=0.9)
    conv_outputs = 128 * 4 * (5 * 64 * 32 * 32 + 5 * 128 * 16 * 16 + 5 * 256 * 8 * 8 + 5 * 512 * 4 * 4)
    assert conv_outputs == pytest.approx(0.293 * GIB, rel=0.01)
    assert 1.5 * conv_outputs < est.activations < 3 * conv_outputs
    assert est.optimizer_state == est.gradients == pytest.approx(11_173_962 * 4, rel=1e-6)
    assert est.data == 60_000 * (3 * 32 * 32 + 8)
    assert 0.7 * GIB < est.total < 1.5 * GIB


def test_workspace_is_the_documented_fraction_and_total_adds_the_larger_pass():
    est = estimate(model="tv_resnet18", batch_size=32, eval_batch_size=500, dataset="cifar10")
    assert est.evaluation > est.activations  # 500 images at 224 px outweigh 32 kept for backward
    rest = est.weights + est.gradients + est.optimizer_state + est.evaluation
    assert est.workspace == round(WORKSPACE_FRACTION * rest)
    assert est.total == rest + est.data + est.workspace
    assert est.gib == est.total / GIB
    assert str(est).startswith(f"{est.gib:.2f} GiB (weights ") and "workspace" in str(est)


def test_evaluation_grows_with_the_eval_batch():
    at250 = estimate(model="tv_resnet18", batch_size=32, eval_batch_size=250, dataset="cifar10")
    at500 = estimate(model="tv_resnet18", batch_size=32, eval_batch_size=500, dataset="cifar10")
    assert at500.evaluation / at250.evaluation == pytest.approx(2.0, rel=0.01)
    # a no-grad pass holds a few feature maps at once, never all: 500 x 64 x 112 x 112 floats is one
    one_map = 500 * 64 * 112 * 112 * 4
    assert one_map < at500.evaluation < 4 * one_map


def test_bf16_halves_the_activations():
    fp32 = estimate(model="resnet18", batch_size=128, dataset="cifar10")
    bf16 = estimate(model="resnet18", batch_size=128, dataset="cifar10", bf16=True)
    assert 0.45 < bf16.activations / fp32.activations < 0.6  # half, plus bf16 copies of the weights
    assert (bf16.weights, bf16.gradients) == (fp32.weights, fp32.gradients)  # master weights stay fp32


class _ReadsAValue(nn.Module):
    """small_cnn whose forward reads a number: the meta device cannot run it."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.net = small_cnn(num_classes, width=8)
        self.register_buffer("gain", torch.ones(()))

    def forward(self, x):
        return self.net(x) * float(self.gain)


def test_a_model_the_meta_device_cannot_run_is_measured_on_the_cpu_and_scaled(monkeypatch):
    add_model(monkeypatch, "reads_a_value", _ReadsAValue)
    rng = torch.get_rng_state()
    fallback = estimate(model="reads_a_value", batch_size=100, dataset="cifar10")
    assert torch.equal(torch.get_rng_state(), rng)  # the CPU model's initialisation left no trace
    meta = estimate(model="small_cnn", model_options={"width": 8}, batch_size=100, dataset="cifar10")
    # real CPU tensors at batch 2 and 4, extended to 100, against the meta count at 100
    assert fallback.activations == pytest.approx(meta.activations, rel=0.01)
    assert fallback.weights == meta.weights + 4  # the buffer
    assert fallback.optimizer_state == meta.optimizer_state > 0


class _Attention(nn.Module):
    """1x1 patches of a 32x32 image as 1,024 tokens through one multi-head attention layer."""

    def __init__(self, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Conv2d(3, 64, 1)
        self.attention = nn.MultiheadAttention(64, 4, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        mixed, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return self.head(self.dropout(mixed).mean(1))


def test_attention_and_dropout_are_counted_as_a_gpu_runs_them(monkeypatch):
    add_model(monkeypatch, "attention", _Attention)
    original = F.scaled_dot_product_attention
    plain = estimate(model="attention", batch_size=4, dataset="cifar10")
    # the math path would keep 4 images x 4 heads x 1024 x 1024 float32 probabilities (64 MiB);
    # the fused kernel keeps q, k, v, the output and a log-sum-exp: a few MiB
    assert plain.activations < (4 * 4 * 1024 * 1024 * 4) / 4
    assert F.scaled_dot_product_attention is original  # swapped back
    # dropout on 4 x 1024 x 64 values keeps a one-byte mask (the meta device's own keeps a float32
    # one); its output feeds a mean, which keeps nothing
    dropped = estimate(model="attention", model_options={"dropout": 0.1}, batch_size=4, dataset="cifar10")
    assert dropped.activations - plain.activations == 4 * 1024 * 64


def test_data_shape_matches_the_loaded_data_sets(tmp_path, cifar_root):
    for name, options in [("digits", {}), ("synthetic", {"images": 12, "image_size": 16, "channels": 3, "num_classes": 5})]:
        data, shape = load_dataset(name, tmp_path, **options), data_shape(name, **options)
        assert shape.images == len(data.train) + len(data.test)
        assert shape.train_images == len(data.train)  # what `sweep validate` checks a batch against
        assert (shape.channels, shape.side, shape.side) == tuple(data.train.images.shape[1:])
        assert shape.num_classes == data.num_classes
    root, _ = cifar_root  # tiny files in CIFAR's format: classes and image shape are the real ones
    for name in ("cifar10", "cifar100"):
        data, shape = load_dataset(name, root), data_shape(name)
        assert (shape.num_classes, shape.channels, shape.side) == (data.num_classes, *data.train.images.shape[1:3])
    assert data_shape("cifar10").images == 60_000 and data_shape("cifar10").train_images == 50_000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "overrides",
    [
        {"model": "resnet18", "optimizer": "sgd", "batch_size": 128, "eval_batch_size": 128},
        {"model": "resnet18", "optimizer": "sam_gns", "batch_size": 128, "eval_batch_size": 128, "bf16": True},
        {"model": "tv_resnet18", "optimizer": "asam", "batch_size": 32, "eval_batch_size": 256},
    ],
)
def test_estimate_is_within_a_third_of_a_real_epochs_peak_on_the_gpu(overrides):
    from trainers.train import Run

    cfg = TrainConfig(dataset="digits", device="cuda", epochs=1, **overrides)
    est = estimate_train_memory(cfg)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    run = Run(cfg)
    run.train_epoch()
    for split in run.eval_batches:
        run.evaluate(split)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - baseline
    expected = est.total - est.workspace
    assert 0.65 * expected < peak < 1.35 * expected, f"peak {peak / GIB:.3f} GiB, estimate {est}"
