"""How much GPU memory one training trial needs: an estimate made before the trial starts.

`estimate_train_memory(cfg)` sizes a trial's fractional GPU share for the sweep's `gpu: auto`
(issue 6): small models pack several to a card, large ones get a card of their own. It allocates
no real memory for the model or a batch: the model is built on PyTorch's `meta` device (tensors
with shapes and dtypes but no storage), and one forward pass of a training batch runs there.

What is counted, in bytes (the fields of `MemoryEstimate`):
- `weights`: parameters and buffers (BatchNorm statistics), float32 as the trainer keeps them.
- `gradients`: one gradient per trainable parameter (`p.grad`, float32 also under bf16).
- `optimizer_state`: what the update rule keeps from step to step, found by running one step of
  the real rule on meta stand-ins of the parameters and summing the tensors it holds afterwards:
  the momentum buffer (momentum > 0), SAM's and SAM-GNS's copy of `w`, ASAM's copy of `w` and its
  `T = |w| + eta`; SGD with momentum 0 and UGD keep nothing.
- `activations`: the tensors autograd saves for the backward pass during one forward pass of one
  training batch (the batch itself and the labels included), each storage counted once, the
  parameters (which convolutions and linear layers save too) not at all.
- `evaluation`: the peak of what is alive at once during a no-grad forward pass of one
  `eval_batch_size` batch in eval mode. Evaluation runs while the weights, the last step's
  gradients and the optimizer state are held, but no training activations, so the trial needs the
  larger of `activations` and `evaluation`; at 224 px with small training batches the evaluation
  pass is the larger.
- `data`: the data set, held on the training device as uint8 images and int64 labels.
- `workspace`: an allowance for what the fields above do not see (see WORKSPACE_FRACTION).

`total` = weights + gradients + optimizer_state + max(activations, evaluation) + data + workspace.

Not counted: the CUDA context and the kernels of cuDNN and cuBLAS (about 0.3-0.5 GB per process,
more with cuDNN loaded; the caller adds it once per trial), `torch.compile`'s own buffers (a
compiled forward usually saves less than the eager one counted here), transient copies while the
trial starts (the training split is copied once when the validation split is held out, before
the model exists). Batches are taken at full size, capped at the data set's size.

Where the meta pass differs from a GPU run it takes the GPU's path: attention runs as a fused
kernel (PyTorch picks one on CUDA for these shapes; it saves the output and a log-sum-exp per
query, not the L x L matrix of the math path the meta device would take), and dropout saves a
one-byte mask as CUDA's fused dropout does. With `bf16`, autocast runs the forward in bfloat16:
every float32 tensor saved counts half its bytes and each parameter that is saved counts half its
bytes (autocast's bfloat16 copy of it, kept for the backward pass). That is a simple rule, not
autocast itself: what autocast keeps in float32 (layer norm, softmax, the loss, a ViT's float32
residual stream) is undercounted, so the rule fits convolutional networks better than
transformers.

A model that cannot run on the meta device (an op with no meta kernel, a forward that reads a
value with `.item()`) is built on the CPU instead, and its activations are measured with real
tensors at batch sizes 2 and 4 and extended linearly to the real batch size (activations grow
linearly with the batch; the two points also catch the part that does not).

It is an estimate: expect the peak that `torch.cuda.max_memory_allocated()` reports to land
within about a third of `total - workspace` (tests/test_memory.py checks it on a GPU), and read
the workspace as a margin, not a measurement.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .config import ConfigError, TrainConfig
from .data import data_shape
from .models import create_model, get_model_info
from .optim import create_optimizer

GIB = 2**30

# The workspace allowance, as a fraction of weights + gradients + optimizer state + the larger of
# activations and evaluation. It covers what no field sees, each part growing with the rest:
# (1) the backward pass's own temporaries, the gradients with respect to activations (a few
# feature maps of the current layer alive at once, small beside all the maps kept); (2) cuDNN's
# convolution workspace, allocated through PyTorch's caching allocator, which grows with the
# layers' sizes; (3) the caching allocator's rounding (blocks of 512 B, segments of 2 or 20 MiB)
# and fragmentation, which makes memory reserved exceed memory allocated. A fixed fraction is the
# simplest rule that grows with the model and the batch; a quarter is a margin, not a
# measurement: at 0.25 a trial whose real peak comes out 25% above `total - workspace` still fits.
WORKSPACE_FRACTION = 0.25

# Batch sizes of the CPU fallback's two measurements (BatchNorm needs more than one image).
_FALLBACK_BATCHES = (2, 4)


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory one training trial needs on its device, in bytes (see the module docstring)."""

    weights: int
    gradients: int
    optimizer_state: int
    activations: int  # saved for backward by one training batch's forward pass
    evaluation: int  # peak alive during one no-grad evaluation batch
    data: int  # the data set resident on the device
    workspace: int  # WORKSPACE_FRACTION of the rest: backward temporaries, cuDNN, fragmentation

    @property
    def total(self) -> int:
        """Bytes the trial needs at its peak, the CUDA context not included."""
        return (
            self.weights + self.gradients + self.optimizer_state + max(self.activations, self.evaluation)
            + self.data + self.workspace
        )

    @property
    def gib(self) -> float:
        """`total` in GiB."""
        return self.total / GIB

    def __str__(self) -> str:
        parts = ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name) / GIB:.2f}" for f in fields(self))
        return f"{self.gib:.2f} GiB ({parts} GiB; the larger of activations and evaluation counts)"


def estimate_train_memory(cfg: TrainConfig) -> MemoryEstimate:
    """Estimate the device memory a trial of `cfg` needs, without allocating it (module docstring)."""
    shape = data_shape(cfg.dataset, **(cfg.synthetic.model_dump() if cfg.dataset == "synthetic" else {}))
    side = get_model_info(cfg.model).input_size
    batch, eval_batch = min(cfg.batch_size, shape.images), min(cfg.eval_batch_size, shape.images)
    try:
        with torch.device("meta"):
            model = _build(cfg, shape.num_classes)
        with _gpu_kernels():
            activations = _saved_bytes(model, batch, side, cfg.bf16)
            evaluation = _eval_peak_bytes(model, eval_batch, side, cfg.bf16)
    except (NotImplementedError, RuntimeError):  # no meta kernel, or a forward that reads values
        with torch.random.fork_rng(devices=[]):  # initialising weights draws from the global RNG
            model = _build(cfg, shape.num_classes)
        activations = _linear_in_batch(lambda b: _saved_bytes(model, b, side, cfg.bf16), batch)
        evaluation = _linear_in_batch(lambda b: _eval_peak_bytes(model, b, side, cfg.bf16), eval_batch)

    params = list(model.parameters())
    weights = _distinct_bytes([*params, *model.buffers()])
    gradients = sum(p.nbytes for p in params if p.requires_grad)
    optimizer_state = _optimizer_state_bytes(cfg, params)
    data = shape.images * (shape.channels * shape.side**2 + 8)  # uint8 pixels, int64 label
    rest = weights + gradients + optimizer_state + max(activations, evaluation)
    return MemoryEstimate(
        weights=weights,
        gradients=gradients,
        optimizer_state=optimizer_state,
        activations=activations,
        evaluation=evaluation,
        data=data,
        workspace=round(WORKSPACE_FRACTION * rest),
    )


# -- the model and its forward passes ---------------------------------------------------------------


def _build(cfg: TrainConfig, num_classes: int) -> nn.Module:
    # ImageNet weights change no shape: never read them (no hub, no network) for an estimate
    options = {key: value for key, value in cfg.model_options.items() if key != "pretrained"}
    try:
        return create_model(cfg.model, num_classes, **options)
    except ValueError as err:
        raise ConfigError(f"model_options: {err}") from None


def _key(t: Tensor) -> int:
    """Identity of a tensor's storage: views of one storage share it (meta tensors too)."""
    return t.untyped_storage()._cdata


def _bytes(t: Tensor, bf16: bool) -> int:
    nbytes = t.untyped_storage().nbytes()
    return nbytes // 2 if bf16 and t.dtype == torch.float32 else nbytes


def _distinct_bytes(tensors) -> int:
    return sum({_key(t): t.untyped_storage().nbytes() for t in tensors}.values())


def _own_storages(model: nn.Module) -> set[int]:
    return {_key(t) for t in [*model.parameters(), *model.buffers()]}


def _inputs(batch: int, side: int, device: torch.device) -> tuple[Tensor, Tensor]:
    return torch.zeros(batch, 3, side, side, device=device), torch.zeros(batch, dtype=torch.int64, device=device)


def _saved_bytes(model: nn.Module, batch: int, side: int, bf16: bool) -> int:
    """Bytes of the distinct storages autograd saves in one training forward pass (with the loss)."""
    own = _own_storages(model)
    counted: dict[int, int] = {}
    held: list[Tensor] = []  # keeps every saved storage alive, so no key is reused while counting

    def pack(t: Tensor) -> Tensor:
        held.append(t)
        key = _key(t)
        if key not in counted:
            if key in own:  # a parameter: free in float32, a bfloat16 copy under autocast
                counted[key] = t.untyped_storage().nbytes() // 2 if bf16 and t.is_floating_point() else 0
            else:
                counted[key] = _bytes(t, bf16)
        return t

    model.train()
    x, y = _inputs(batch, side, _device_of(model))
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x).float(), y)
    return sum(counted.values())


def _eval_peak_bytes(model: nn.Module, batch: int, side: int, bf16: bool) -> int:
    """Peak bytes alive during one no-grad forward pass in eval mode (the batch included)."""
    model.eval()
    with torch.no_grad(), _LiveBytes(_own_storages(model), bf16) as live:
        x, y = _inputs(batch, side, _device_of(model))
        F.cross_entropy(model(x).float(), y, reduction="sum")
        del x, y
    return live.peak


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _linear_in_batch(measure: Callable[[int], int], batch: int) -> int:
    """measure(batch) extended linearly from two small batches (the CPU fallback)."""
    small, large = _FALLBACK_BATCHES
    at_small, at_large = measure(small), measure(large)
    per_image = (at_large - at_small) / (large - small)
    return max(0, round(at_small + per_image * (batch - small)))


class _LiveBytes(TorchDispatchMode):
    """Tracks the storages that ops create while alive, and the peak of their sum.

    Every tensor an op returns is watched with a finalizer; a storage is freed when the last
    tensor viewing it is, as in PyTorch's allocator. Storages in `ignore` (the model's own) and
    tensors made outside the block are not counted.
    """

    def __init__(self, ignore: set[int], bf16: bool):
        super().__init__()
        self.ignore, self.bf16 = ignore, bf16
        self.live: dict[int, list[int]] = {}  # storage -> [bytes, tensors alive that view it]
        self.now = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, Tensor):
                self._watch(t)
        return out

    def _watch(self, t: Tensor) -> None:
        key = _key(t)
        if key in self.ignore:
            return
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [_bytes(t, self.bf16), 0]
            self.now += entry[0]
            self.peak = max(self.peak, self.now)
        entry[1] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.now -= entry[0]
            del self.live[key]


@contextlib.contextmanager
def _gpu_kernels() -> Iterator[None]:
    """Within the block, attention and dropout on meta tensors take the kernels a CUDA run takes
    (the meta device's defaults keep more for the backward pass: the L x L attention matrix, a
    float32 dropout mask). They are swapped in `torch.nn.functional`, where modules and
    `F.multi_head_attention_forward` look them up; tensors on any other device, in any thread,
    still get the originals."""
    originals = {"scaled_dot_product_attention": F.scaled_dot_product_attention, "dropout": F.dropout}
    swapped = {"scaled_dot_product_attention": _fused_attention, "dropout": _fused_dropout}
    for name, function in swapped.items():
        setattr(F, name, functools.partial(function, originals[name]))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(F, name, function)


def _fused_attention(
    original, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False
):
    # with a mask, grouped heads or 3-d inputs the math path stays: an overestimate
    if query.device.type != "meta" or attn_mask is not None or enable_gqa or query.dim() != 4:
        return original(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    return torch.ops.aten._scaled_dot_product_efficient_attention(
        query, key, value, None, needs_grad, dropout_p, is_causal, scale=scale
    )[0]


def _fused_dropout(original, input, p=0.5, training=True, inplace=False):
    # CUDA's fused dropout keeps a one-byte mask; its in-place dropout a float one, as here
    if input.device.type != "meta" or not training or inplace or not 0 < p < 1:
        return original(input, p, training, inplace)
    return torch.native_dropout(input, p, True)[0]


# -- the update rule --------------------------------------------------------------------------------


def _optimizer_state_bytes(cfg: TrainConfig, params: list[Tensor]) -> int:
    """Bytes the update rule holds between steps, after one step on meta stand-ins of `params`."""
    stand_ins = [torch.empty_like(p, device="meta").requires_grad_(p.requires_grad) for p in params]
    trainable = [p for p in stand_ins if p.requires_grad]
    opt = create_optimizer(
        cfg.optimizer, stand_ins, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov, rho=cfg.rho, eta=cfg.eta,
    )

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        for p in trainable:
            p.grad = torch.empty_like(p)
        return torch.zeros((), device="meta")

    opt.step(closure)
    own = {_key(p) for p in stand_ins} | {_key(p.grad) for p in trainable if p.grad is not None}
    kept = [t for t in _tensors_in(vars(opt)) if _key(t) not in own]
    return _distinct_bytes(kept)


def _tensors_in(obj, seen: set[int] | None = None) -> Iterator[Tensor]:
    """Every tensor reachable from `obj` through dict values, lists, tuples and sets."""
    seen = set() if seen is None else seen
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (dict, list, tuple, set)) and id(obj) not in seen:
        seen.add(id(obj))
        for item in obj.values() if isinstance(obj, dict) else obj:
            yield from _tensors_in(item, seen)
