"""SGD, the base of every rule (docs/optimizers.md): torch.optim.SGD's arithmetic on the SGD step all
the rules share (`_grads.sgd_step_`, torch's fused kernel where the device has one), so
"x sgd" in the benchmarks compares passes, not kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._grads import sgd_step_


class SGD(torch.optim.SGD):
    """torch.optim.SGD on the shared step; subclasses say what the gradients are divided by."""

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
