"""The update rules: one entry per rule, with the flags a training loop and a sweep need.

A loop asks how many passes a rule takes and which hyperparameters it reads, and never branches on
a rule's name; the classes are bound to these names in trainers/optim/registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from .entries import Entries


@dataclass(frozen=True)
class RuleInfo:
    name: str
    passes: int  # forward + backward passes per step: 1, or 2 for sharpness-aware rules
    uses: tuple[str, ...]  # rule-specific hyperparameters it reads, beyond SGD's
    summary: str


_RULES = Entries(
    "update rule",
    (
        RuleInfo("sgd", 1, (), "SGD with momentum and coupled weight decay"),
        RuleInfo("ugd", 1, (), "SGD on g / ‖g‖ (paper, Algorithm 2)"),
        RuleInfo("sam", 2, ("rho",), "SAM (paper, Algorithm 1; Foret et al. 2020)"),
        RuleInfo("asam", 2, ("rho", "eta"), "adaptive SAM, T = |w| + eta (Kwon et al. 2021)"),
        RuleInfo("sam_gns", 2, ("rho",), "SAM with g* / ‖g*‖ (paper, Algorithm 3)"),
    ),
)


def list_optimizers() -> list[str]:
    """Names of every update rule, in the order the paper introduces them."""
    return list(_RULES)


def get_rule(name: str) -> RuleInfo:
    """The entry for `name`; an unknown name raises ValueError listing the known ones."""
    return _RULES[name]
