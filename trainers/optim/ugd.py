"""UGD, Unit Gradient Descent (the paper's Algorithm 2, eq. 3.9-3.10).

The SGD step receives `g / (‖g‖ + ε)`: the step length no longer scales with the loss, only
its direction does. Weight decay and momentum are the base SGD's, applied after the scaling.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._grads import params_with_grad, sgd_step_, unit_divisor


class UGD(torch.optim.SGD):
    """SGD on the unit gradient: `p.grad <- g / (‖g‖ + ε)` over all groups, then an SGD step."""

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        divisor = unit_divisor(params_with_grad(group)[1] for group in self.param_groups)  # Algorithm 2, step 3
        sgd_step_(self, divisor)  # Algorithm 2, step 4: SGD on g / (‖g‖ + ε), with its momentum and decay
        return loss
