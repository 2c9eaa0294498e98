"""How many trials a sweep runs: per arm, its search budget (SweepSpec.search_budget) and its
confirmation seeds on top.

Pure arithmetic on the spec (no Optuna), so the searcher, the driver, the status lines and
`sweep list sweeps` count the same way.
"""

from __future__ import annotations

from .schema import SweepSpec


def planned_trials(spec: SweepSpec) -> dict[str, int]:
    """Per arm key, the trials the arm runs at most: its search budget, then its confirmation
    seeds (which run only when its search completed a trial; with adaptive seeds, up to max)."""
    return {arm.key: spec.search_budget(arm.rule) + spec.confirm_range[1] for arm in spec.arms()}


def epochs_per_trial(spec: SweepSpec) -> dict[str, int]:
    """Per arm key, the epochs one trial trains (train.epochs, after the model's overrides)."""
    return {arm.key: spec.train_config(arm.model, arm.rule, spec.seeds[0], {}).epochs for arm in spec.arms()}
