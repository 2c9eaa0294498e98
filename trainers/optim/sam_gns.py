"""SAM-GNS, SAM in gradient-norm space: the paper's method (Algorithm 3, eq. 4.3).

SAM's second-pass gradient `g*` is scaled to unit length before the SGD step:
`p.grad <- g* / (‖g*‖ + ε)`. With momentum 0 and weight decay 0 the update has norm `lr`.
"""

from __future__ import annotations

from ._grads import inverse_norm, scale_
from .sam import SAM


class SAMGNS(SAM):
    """SAM whose descent direction is the unit vector of `g*` (Algorithm 3, step 6)."""

    def _descent_direction_(self, groups) -> None:
        inv = inverse_norm(grads for _, grads in groups)  # one global ‖g*‖
        for _, grads in groups:
            scale_(grads, inv)
