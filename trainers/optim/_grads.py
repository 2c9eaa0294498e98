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


def sgd_step_(optimizer: torch.optim.SGD) -> None:
    """The SGD step of torch.optim.SGD (coupled weight decay, momentum with dampening 0, optional
    Nesterov), on the gradients now in `p.grad`, with foreach kernels and no allocation after the
    first step: weight decay is added to the stored gradient in place (issue 8). The momentum
    buffers live in `optimizer.state[p]["momentum_buffer"]`, as torch.optim.SGD keeps them, so
    checkpoints of either load into the other.
    """
    for group in optimizer.param_groups:
        params, grads = params_with_grad(group)
        if not params:
            continue
        lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
        if decay != 0:
            torch._foreach_add_(grads, params, alpha=decay)  # g + wd * w, in the gradient's storage
        step = grads
        if momentum != 0:
            state = optimizer.state
            going = [i for i, p in enumerate(params) if state[p].get("momentum_buffer") is not None]
            for i in set(range(len(params))) - set(going):  # first step: the buffer starts as g
                state[params[i]]["momentum_buffer"] = torch.clone(grads[i]).detach()
            bufs = [state[p]["momentum_buffer"] for p in params]
            if going:  # buf = momentum * buf + g (dampening 0)
                torch._foreach_mul_([bufs[i] for i in going], momentum)
                torch._foreach_add_([bufs[i] for i in going], [grads[i] for i in going])
            if group["nesterov"]:
                torch._foreach_add_(grads, bufs, alpha=momentum)  # g + momentum * buf
            else:
                step = bufs
        torch._foreach_add_(params, step, alpha=-lr)
