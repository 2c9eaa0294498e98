"""UGD, Unit Gradient Descent (the paper's Algorithm 2, eq. 3.9-3.10).

The SGD step receives `g / (‖g‖ + ε)`: the step length no longer scales with the loss, only
its direction does. Weight decay and momentum are the base SGD's, applied after the scaling.
"""

from __future__ import annotations

from torch import Tensor

from ._grads import gradients_unit_divisor
from .sgd import SGD


class UGD(SGD):
    """SGD on the unit gradient: `g / (‖g‖ + ε)` over all groups (Algorithm 2, steps 3-4)."""

    def _divisor(self) -> Tensor:
        return gradients_unit_divisor(self)  # Algorithm 2, step 3
