"""ASAM, adaptive SAM (Kwon et al. 2021), the paper's third comparison rule.

The climb is scaled elementwise by `T = |w| + η`: `e = ρ T² ⊙ g / (‖T ⊙ g‖ + ε)`, so its useful
`rho` is about ten times SAM's (0.5 on CIFAR-10, 1.0 on CIFAR-100 in the ASAM authors' scripts).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._grads import inverse_norm, scale_
from .sam import SAM


class ASAM(SAM):
    """SAM whose perturbation is adapted to the parameter scale; `eta` (dimensionless) lives in
    each param group beside `rho`."""

    def __init__(self, params, lr: float, rho: float = 0.05, eta: float = 0.01, **sgd_options):
        if not eta >= 0.0:
            raise ValueError(f"eta must be >= 0, got {eta!r}")
        super().__init__(params, lr=lr, rho=rho, **sgd_options)
        for group in self.param_groups:
            group.setdefault("eta", eta)
        self.defaults.setdefault("eta", eta)
        self._scales: dict[Tensor, Tensor] = {}

    def _scale_of(self, params: list[Tensor], eta: float) -> list[Tensor]:
        """T = |w| + η for each parameter, in buffers reused from step to step."""
        scales = []
        for p in params:
            t = self._scales.get(p)
            if t is None or t.shape != p.shape or t.dtype != p.dtype or t.device != p.device:
                t = self._scales[p] = torch.empty_like(p, memory_format=torch.preserve_format)
            scales.append(t)
        if scales:
            torch._foreach_copy_(scales, params)
            torch._foreach_abs_(scales)
            torch._foreach_add_(scales, eta)
        return scales

    def _perturbation_(self, groups) -> None:
        scales = [self._scale_of(params, group["eta"]) for group, params, _ in groups]
        for (_, _, grads), t in zip(groups, scales):
            if grads:
                torch._foreach_mul_(grads, t)  # T ⊙ g
        inv = inverse_norm(grads for _, _, grads in groups)  # 1 / (‖T ⊙ g‖ + ε)
        for (group, _, grads), t in zip(groups, scales):
            if grads:
                torch._foreach_mul_(grads, t)  # T² ⊙ g
                scale_(grads, inv * group["rho"])
