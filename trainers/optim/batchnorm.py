"""Freeze BatchNorm running statistics for the second pass of a two-pass rule.

The second forward pass at `w + e` must not move the running mean and variance (docs/optimizers.md,
step 3), but it must still normalise with the batch's own statistics, so the model stays in
train mode. Switching `track_running_stats` off for the pass does exactly that: a BatchNorm in
train mode then uses batch statistics and neither updates its running buffers nor counts the
batch in `num_batches_tracked`. (Setting momentum to 0, the other common way, still counts the
batch, and `0 * NaN` from a diverging batch would poison the running buffers.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextlib.contextmanager
def frozen_batchnorm_stats(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block, BatchNorm layers of `model` normalise with batch statistics but leave
    their running statistics untouched. `enabled=False` makes it a no-op, so a closure can write
    `with frozen_batchnorm_stats(model, optimizer.perturbed):`."""
    frozen = []
    if enabled:
        for module in model.modules():
            if isinstance(module, _BatchNorm) and module.track_running_stats:
                module.track_running_stats = False
                frozen.append(module)
    try:
        yield
    finally:
        for module in frozen:
            module.track_running_stats = True
