"""How many trials a sweep runs: per arm, its search budget and its confirmation seeds on top.

Pure arithmetic on the spec (no Optuna), so the searcher, the driver, the status lines and
`sweep list sweeps` count the same way.
"""

from __future__ import annotations

from .schema import SweepSpec


def search_budget(spec: SweepSpec, rule: str) -> int:
    """Search trials of one arm: the grid's size, or `trials_per_arm` (the same for every arm).
    Its confirmation trials come on top (`planned_trials`)."""
    if spec.search.method == "grid":
        return spec.grid_points(rule) * len(spec.search_seeds(rule))
    return spec.search.trials_per_arm


def planned_trials(spec: SweepSpec) -> dict[str, int]:
    """Per arm key, the trials the arm runs at most: its search budget, then its confirmation
    seeds (which run only when its search completed a trial; with adaptive seeds, up to max)."""
    return {arm.key: search_budget(spec, arm.rule) + spec.confirm_range[1] for arm in spec.arms()}


def epochs_per_trial(spec: SweepSpec) -> dict[str, int]:
    """Per arm key, the epochs one trial trains (train.epochs, after the model's overrides)."""
    return {arm.key: spec.train_config(arm.model, arm.rule, spec.seeds[0], {}).epochs for arm in spec.arms()}
