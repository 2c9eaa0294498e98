"""Foreach helpers shared by the update rules: gather gradients, global norm, in-place scaling.

Every helper works on whole lists of tensors (`torch._foreach_*`), and none reads a value back to
the host, so a step never synchronises with the GPU (docs/optimizers.md, "How the code realises it").
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor
from torch.optim.sgd import sgd as torch_sgd  # torch.optim.SGD's functional form
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

# ε of docs/optimizers.md: added to a norm, never inside the square root.
NORM_EPS = 1e-12
# Devices with torch's fused SGD kernel (torch.optim picks from the same list).
FUSED_DEVICES = frozenset(_get_fused_kernels_supported_devices())


def params_with_grad(group: dict) -> tuple[list[Tensor], list[Tensor]]:
    """The parameters of one param group that have a gradient, and those gradients."""
    params = [p for p in group["params"] if p.grad is not None]
    return params, [p.grad for p in params]


def global_norm(tensor_lists: Iterable[list[Tensor]]) -> Tensor:
    """L2 norm over every tensor of every list, as one vector: one number per step (docs/optimizers.md)."""
    tensors = [t for tensors in tensor_lists for t in tensors]
    return torch.nn.utils.get_total_norm(tensors, norm_type=2.0)


def inverse_norm(tensor_lists: Iterable[list[Tensor]]) -> Tensor:
    """1 / (‖·‖ + ε) as a 0-d tensor, to scale with on the device instead of on the host."""
    return torch.reciprocal(unit_divisor(tensor_lists))


def unit_divisor(tensor_lists: Iterable[list[Tensor]]) -> Tensor:
    """‖·‖ + ε as a 0-d tensor: what a gradient is divided by to have unit length."""
    return global_norm(tensor_lists) + NORM_EPS


def gradients_unit_divisor(optimizer: torch.optim.Optimizer) -> Tensor:
    """‖g‖ + ε over the gradients now in `p.grad` of every param group: one global norm."""
    return unit_divisor(params_with_grad(group)[1] for group in optimizer.param_groups)


def scale_(tensors: list[Tensor], factor: Tensor) -> None:
    """Multiply every tensor in place by a 0-d tensor (cast to the list's dtype and device)."""
    if tensors:
        torch._foreach_mul_(tensors, factor.to(dtype=tensors[0].dtype, device=tensors[0].device))


def sgd_step_(optimizer: torch.optim.SGD, divisor: Tensor | None = None) -> None:
    """torch.optim.SGD's step (coupled weight decay, momentum, optional Nesterov) on the gradients
    now in `p.grad`, each first divided by the 0-d tensor `divisor` when given, in torch's fused
    SGD kernel where the device has one: one pass over each parameter, its gradient and its
    momentum buffer, no allocation after the first step, no host synchronisation (benchmarks/update_cost.py; the
    division is the kernel's gradient unscaling, so `g / (‖g‖ + ε)` is not a pass of its own).
    The momentum buffers live in `optimizer.state[p]["momentum_buffer"]`, as torch.optim.SGD keeps
    them, so checkpoints of either load into the other.
    """
    for group in optimizer.param_groups:
        params, grads = params_with_grad(group)
        if not params:
            continue
        fused = params[0].device.type in FUSED_DEVICES
        in_kernel = divisor if fused and divisor is not None and divisor.dtype == torch.float32 else None
        if divisor is not None and in_kernel is None:
            # the kernel takes its divisor in float32 only; the meta device (trainers/memory/)
            # has no fused kernel and takes torch's foreach step
            torch._foreach_div_(grads, divisor)
        momentum = group["momentum"]
        bufs = [optimizer.state[p].get("momentum_buffer") for p in params] if momentum != 0 else []
        if fused and any(b is None for b in bufs) and any(b is not None for b in bufs):
            # The fused kernel starts every buffer on the same step. A parameter whose first
            # gradient comes later starts from zero: momentum * 0 + g = g, torch's first buffer.
            bufs = [torch.zeros_like(p, memory_format=torch.preserve_format) if b is None else b for p, b in zip(params, bufs)]
        torch_sgd(
            params,
            grads,
            bufs,
            fused=fused,
            foreach=not fused,
            grad_scale=in_kernel,
            weight_decay=group["weight_decay"],
            momentum=momentum,
            lr=group["lr"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
        )
        for p, buf in zip(params, bufs):  # torch fills in the buffers it created
            optimizer.state[p]["momentum_buffer"] = buf
