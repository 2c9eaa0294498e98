"""SGD, the base of every rule (docs/optimizers.md): torch.optim.SGD's arithmetic on the SGD step all
the rules share (`_grads.sgd_step_`, torch's fused kernel where the device has one), so
"x sgd" in the benchmarks compares passes, not kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._grads import sgd_step_


def _eager(method: Callable) -> Callable:
    """torch.optim.Optimizer's `method` without its `torch._disable_dynamo` wrapper. The wrapper
    only keeps Dynamo from tracing into the method, and imports torch._dynamo on its first call
    (1.1-4 s, once per process: a fresh Ray worker paid it before its first trial's first epoch;
    docs/platform.md). This project compiles the model's forward alone (TrainConfig.compile),
    never a call of the optimizer, so the plain method does the same work."""
    return getattr(method, "__wrapped__", method)


class SGD(torch.optim.SGD):
    """torch.optim.SGD on the shared step; subclasses say what the gradients are divided by."""

    add_param_group = _eager(torch.optim.Optimizer.add_param_group)
    zero_grad = _eager(torch.optim.Optimizer.zero_grad)
    state_dict = _eager(torch.optim.Optimizer.state_dict)
    load_state_dict = _eager(torch.optim.Optimizer.load_state_dict)

    def _divisor(self) -> Tensor | None:
        """A 0-d tensor the gradients now in `p.grad` are divided by in the step (none for SGD)."""
        return None

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sgd_step_(self, self._divisor())
        return loss
