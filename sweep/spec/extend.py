"""What `sweep resume NAME --set FIELD=VALUE` may change: a sweep's budget, never what its
trials train or how they are compared, so the trials it ran stay part of the same sweep.

A larger `search.trials_per_arm` asks each arm's study for more trials; a larger `confirm_seeds`
trains each arm's chosen setting on more new seeds. A smaller budget, or any other field, is
refused before anything starts (docs/architecture.md, Commands).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .loading import load_spec
from .schema import SweepSpec

EXTENDABLE = ("search.trials_per_arm", "confirm_seeds")


def extended(saved: SweepSpec, path: Path, overrides: list[str]) -> SweepSpec:
    """The saved spec (read from `path`) with `overrides` on its budget; UserError naming the
    field for anything else, or for a budget that would shrink."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key not in EXTENDABLE and not key.startswith("confirm_seeds."):
            allowed = " and ".join(EXTENDABLE)
            raise UserError([f"{key}: cannot change when a sweep resumes; `--set` on resume takes {allowed} (its budget)"])
    spec = load_spec(path, overrides)
    keys = {item.partition("=")[0].strip() for item in overrides}
    if "search.trials_per_arm" in keys and spec.search.method == "grid":
        raise UserError(["search.trials_per_arm: a grid sweep runs its whole grid; add seeds in a new sweep instead"])
    for arm in spec.arms():
        old, new = saved.search_budget(arm.rule), spec.search_budget(arm.rule)
        if new < old:
            raise UserError([f"search.trials_per_arm: {new} is below the sweep's {old}; a budget can grow on resume, not shrink"])
    if any(new < old for new, old in zip(spec.confirm_range, saved.confirm_range, strict=True)):
        raise UserError(
            [f"confirm_seeds: {spec.confirm_seeds} is below the sweep's {saved.confirm_seeds}; it can grow, not shrink"]
        )
    return spec
