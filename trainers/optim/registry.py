"""The update-rule registry: one entry per rule, with the flags a training loop needs.

A loop asks the registry how many passes a rule takes and which hyperparameters it reads, and
never branches on a rule's name (docs/architecture.md, "Dependency directions").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .asam import ASAM
from .sam import SAM
from .sam_gns import SAMGNS
from .sgd import SGD
from .ugd import UGD


@dataclass(frozen=True)
class UpdateRule:
    name: str
    factory: Callable[..., torch.optim.Optimizer]
    passes: int  # forward + backward passes per step: 1, or 2 for sharpness-aware rules
    uses: tuple[str, ...]  # rule-specific hyperparameters it reads, beyond SGD's
    summary: str


_RULES: dict[str, UpdateRule] = {
    rule.name: rule
    for rule in (
        UpdateRule("sgd", SGD, 1, (), "SGD with momentum and coupled weight decay"),
        UpdateRule("ugd", UGD, 1, (), "SGD on g / ‖g‖ (paper, Algorithm 2)"),
        UpdateRule("sam", SAM, 2, ("rho",), "SAM (paper, Algorithm 1; Foret et al. 2020)"),
        UpdateRule("asam", ASAM, 2, ("rho", "eta"), "adaptive SAM, T = |w| + eta (Kwon et al. 2021)"),
        UpdateRule("sam_gns", SAMGNS, 2, ("rho",), "SAM with g* / ‖g*‖ (paper, Algorithm 3)"),
    )
}


def list_optimizers() -> list[str]:
    """Registry keys of every update rule, in the order the paper introduces them."""
    return list(_RULES)


def get_rule(name: str) -> UpdateRule:
    """The registry entry for `name`; an unknown name raises ValueError listing the known ones."""
    try:
        return _RULES[name]
    except KeyError:
        raise ValueError(f"unknown update rule {name!r}; known: {', '.join(_RULES)}") from None


def create_optimizer(
    name: str,
    params: Iterable,
    *,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    nesterov: bool = False,
    rho: float = 0.05,
    eta: float = 0.01,
) -> torch.optim.Optimizer:
    """Build rule `name` over `params` on SGD(lr, momentum, weight_decay, nesterov, dampening=0).

    `lr` is the step size, `rho` the climb radius of the two-pass rules, `eta` ASAM's offset in
    `T = |w| + eta`; a rule ignores the options it does not use (docs/optimizers.md, "Defaults and validation").
    """
    rule = get_rule(name)
    extra = {key: value for key, value in (("rho", rho), ("eta", eta)) if key in rule.uses}
    return rule.factory(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, dampening=0, **extra)
