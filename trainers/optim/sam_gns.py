"""SAM-GNS, SAM in gradient-norm space: the paper's method (Algorithm 3, eq. 4.3).

SAM's second-pass gradient `g*` is scaled to unit length before the SGD step: the step takes
`g* / (‖g*‖ + ε)` (divided inside torch's fused SGD kernel). With momentum 0 and weight decay 0
the update has norm `lr`.
"""

from __future__ import annotations

from torch import Tensor

from ._grads import gradients_unit_divisor
from .sam import SAM


class SAMGNS(SAM):
    """SAM whose descent direction is the unit vector of `g*` (Algorithm 3, step 6)."""

    def _divisor(self) -> Tensor:
        return gradients_unit_divisor(self)  # ‖g*‖ + ε, Algorithm 3, step 6
