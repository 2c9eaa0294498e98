"""The paper's update rules on one base optimizer, SGD (docs/optimizers.md); their names, passes
and hyperparameters are in trainers/catalogue/rules.py.

    opt = create_optimizer("sam_gns", model.parameters(), lr=0.1, rho=0.05)
    opt.step(closure)          # every rule; two-pass rules call the closure twice

Two-pass rules also expose `first_step()` / `second_step()` and a `perturbed` flag, and
`frozen_batchnorm_stats(model)` keeps BatchNorm statistics still during the second pass.
"""

from .asam import ASAM
from .batchnorm import frozen_batchnorm_stats
from .registry import create_optimizer
from .sam import SAM
from .sam_gns import SAMGNS
from .sgd import SGD
from .ugd import UGD

__all__ = [
    "ASAM",
    "SAM",
    "SAMGNS",
    "SGD",
    "UGD",
    "create_optimizer",
    "frozen_batchnorm_stats",
]
