"""Foreach helpers shared by the update rules: gather gradients, global norm, in-place scaling.

Every helper works on whole lists of tensors (`torch._foreach_*`), and none reads a value back to
the host, so a step never synchronises with the GPU (OPTIMIZERS.md, "Speed rules").
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

# ε of OPTIMIZERS.md: added to a norm, never inside the square root.
NORM_EPS = 1e-12


def params_with_grad(group: dict) -> tuple[list[Tensor], list[Tensor]]:
    """The parameters of one param group that have a gradient, and those gradients."""
    params = [p for p in group["params"] if p.grad is not None]
    return params, [p.grad for p in params]


def global_norm(tensor_lists: Iterable[list[Tensor]]) -> Tensor:
    """L2 norm over every tensor of every list, as one vector: one number per step (OPTIMIZERS.md)."""
    tensors = [t for tensors in tensor_lists for t in tensors]
    return torch.nn.utils.get_total_norm(tensors, norm_type=2.0)


def inverse_norm(tensor_lists: Iterable[list[Tensor]]) -> Tensor:
    """1 / (‖·‖ + ε) as a 0-d tensor, to scale with on the device instead of on the host."""
    return torch.reciprocal(global_norm(tensor_lists) + NORM_EPS)


def scale_(tensors: list[Tensor], factor: Tensor) -> None:
    """Multiply every tensor in place by a 0-d tensor (cast to the list's dtype and device)."""
    if tensors:
        torch._foreach_mul_(tensors, factor.to(dtype=tensors[0].dtype, device=tensors[0].device))
