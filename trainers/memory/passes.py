"""The forward passes of the memory estimate, on PyTorch's meta device: what autograd saves in a
training pass, the peak alive in an evaluation pass, and the GPU kernels the meta device lacks
(trainers/memory/estimate.py says what each number means and how it is used)."""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

# Batch sizes of the CPU fallback's two measurements (BatchNorm needs more than one image).
FALLBACK_BATCHES = (2, 4)


def storage_key(t: Tensor) -> int:
    """Identity of a tensor's storage: views of one storage share it (meta tensors too)."""
    return t.untyped_storage()._cdata


def saved_nbytes(t: Tensor, bf16: bool) -> int:
    nbytes = t.untyped_storage().nbytes()
    return nbytes // 2 if bf16 and t.dtype == torch.float32 else nbytes


def distinct_bytes(tensors) -> int:
    return sum({storage_key(t): t.untyped_storage().nbytes() for t in tensors}.values())


def own_storages(model: nn.Module) -> set[int]:
    return {storage_key(t) for t in [*model.parameters(), *model.buffers()]}


def _inputs(batch: int, side: int, device: torch.device) -> tuple[Tensor, Tensor]:
    return torch.zeros(batch, 3, side, side, device=device), torch.zeros(batch, dtype=torch.int64, device=device)


def saved_bytes(model: nn.Module, batch: int, side: int, bf16: bool) -> int:
    """Bytes of the distinct storages autograd saves in one training forward pass (with the loss)."""
    own = own_storages(model)
    counted: dict[int, int] = {}
    held: list[Tensor] = []  # keeps every saved storage alive, so no key is reused while counting

    def pack(t: Tensor) -> Tensor:
        held.append(t)
        key = storage_key(t)
        if key not in counted:
            if key in own:  # a parameter: free in float32, a bfloat16 copy under autocast
                counted[key] = t.untyped_storage().nbytes() // 2 if bf16 and t.is_floating_point() else 0
            else:
                counted[key] = saved_nbytes(t, bf16)
        return t

    model.train()
    x, y = _inputs(batch, side, _device_of(model))
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x).float(), y)
    return sum(counted.values())


def eval_peak_bytes(model: nn.Module, batch: int, side: int, bf16: bool) -> int:
    """Peak bytes alive during one no-grad forward pass in eval mode (the batch included)."""
    model.eval()
    with torch.no_grad(), _LiveBytes(own_storages(model), bf16) as live:
        x, y = _inputs(batch, side, _device_of(model))
        F.cross_entropy(model(x).float(), y, reduction="sum")
        del x, y
    return live.peak


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def linear_in_batch(measure: Callable[[int], int], batch: int) -> int:
    """measure(batch) extended linearly from two small batches (the CPU fallback)."""
    small, large = FALLBACK_BATCHES
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
        key = storage_key(t)
        if key in self.ignore:
            return
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [saved_nbytes(t, self.bf16), 0]
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
def gpu_kernels() -> Iterator[None]:
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


def _fused_attention(original, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
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
