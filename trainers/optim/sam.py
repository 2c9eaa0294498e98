"""SAM (the paper's Algorithm 1, Foret et al. 2020) and the two-pass machinery it shares.

One step climbs from `w` to `w + e` along the first-pass gradient, takes the gradient `g*` there,
goes back to `w` exactly (from a copy, not by subtracting `e`), and hands `g*` to the base SGD
step. Subclasses change only the climb (`_perturbation_`, ASAM) or what `g*` becomes before the
SGD step (`_divisor`, SAM-GNS; SAM keeps it as it is, Algorithm 1, step 6).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._grads import inverse_norm, params_with_grad, scale_, sgd_step_
from .sgd import SGD


class SAM(SGD):
    """Sharpness-aware SGD: `p.grad <- ∇L(w + e)`, `e = ρ g / (‖g‖ + ε)`, then an SGD step.

    `rho` (radius of the climb, in parameter-space L2 units) lives in each param group, beside
    `lr`, so schedulers and checkpoints see it.
    """

    def __init__(self, params, lr: float, rho: float = 0.05, **sgd_options):
        if not rho >= 0.0:
            raise ValueError(f"rho must be >= 0, got {rho!r}")
        super().__init__(params, lr=lr, **sgd_options)
        for group in self.param_groups:
            group.setdefault("rho", rho)
        self.defaults.setdefault("rho", rho)
        # Copies of `w` taken by first_step(), reused from step to step (one per parameter).
        # They are scratch space, not state: state_dict() holds only the momentum buffers.
        self._saved: dict[Tensor, Tensor] = {}
        self._climbed: list[tuple[list[Tensor], list[Tensor]]] | None = None

    @property
    def perturbed(self) -> bool:
        """True between first_step() and second_step(): the parameters are at `w + e`.

        A closure reads it to freeze BatchNorm statistics in the second pass
        (see `frozen_batchnorm_stats`).
        """
        return self._climbed is not None

    def _copy_of(self, params: list[Tensor]) -> list[Tensor]:
        copies = []
        for p in params:
            saved = self._saved.get(p)
            if saved is None or saved.shape != p.shape or saved.dtype != p.dtype or saved.device != p.device:
                saved = self._saved[p] = torch.empty_like(p, memory_format=torch.preserve_format)
            copies.append(saved)
        return copies

    def _perturbation_(self, groups: list[tuple[dict, list[Tensor], list[Tensor]]]) -> None:
        """Turn each group's gradient `g` into its share of `e`, in place (Algorithm 1, step 3)."""
        inv = inverse_norm(grads for _, _, grads in groups)
        for group, _, grads in groups:
            scale_(grads, inv * group["rho"])

    @torch.no_grad()
    def first_step(self) -> None:
        """Move from `w` to `w + e` using the gradients now in `p.grad`, then clear them."""
        if self._climbed is not None:
            raise RuntimeError("first_step() called twice without second_step() in between")
        groups = [(group, *params_with_grad(group)) for group in self.param_groups]
        climbed = []
        for _, params, _ in groups:
            saved = self._copy_of(params)
            torch._foreach_copy_(saved, params)  # remember w exactly
            climbed.append((params, saved))
        self._perturbation_(groups)
        for _, params, e in groups:
            if params:
                torch._foreach_add_(params, e)  # climb to w + e
        self._climbed = climbed
        self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def second_step(self) -> None:
        """Return to `w` and take the SGD step with the gradients `g*` computed at `w + e`."""
        if self._climbed is None:
            raise RuntimeError("second_step() called without first_step()")
        climbed, self._climbed = self._climbed, None
        for params, saved in climbed:
            if params:
                torch._foreach_copy_(params, saved)  # back to w
        # A parameter without a gradient in either pass is skipped: it was not moved to w + e,
        # so a gradient it got in the second pass is not a sharpness-aware one.
        moved = {p for params, _ in climbed for p in params}
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p not in moved:
                    p.grad = None
        sgd_step_(self, self._divisor())  # weight decay and momentum after the rule's own scaling

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None):
        """One complete update; `closure` zeroes the gradients, runs forward and backward, and
        returns the loss. It is called at `w`, then at `w + e`; the loss at `w` is returned."""
        if closure is None:
            raise ValueError(f"{type(self).__name__}.step needs a closure: it evaluates the loss twice")
        closure = torch.enable_grad()(closure)
        loss = closure()
        self.first_step()
        closure()
        self.second_step()
        return loss
