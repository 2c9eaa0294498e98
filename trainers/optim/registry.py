"""The update-rule registry: each rule of the catalogue (trainers/catalogue/rules.py: passes, the
hyperparameters it reads) bound to its class, and `create_optimizer` building one.

A loop asks the catalogue how many passes a rule takes and which hyperparameters it reads, and
never branches on a rule's name (docs/architecture.md, "Dependency directions").
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..catalogue import get_rule, list_optimizers
from .asam import ASAM
from .sam import SAM
from .sam_gns import SAMGNS
from .sgd import SGD
from .ugd import UGD

_CLASSES: dict[str, type[torch.optim.Optimizer]] = {"sgd": SGD, "ugd": UGD, "sam": SAM, "asam": ASAM, "sam_gns": SAMGNS}
if list(_CLASSES) != list_optimizers():  # one class per catalogue entry, in its order
    raise ValueError(f"update rules with a class {list(_CLASSES)} differ from the catalogue's {list_optimizers()}")


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
    return _CLASSES[name](params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, dampening=0, **extra)
