"""From a spec's dimensions to Optuna: distributions and samplers (budgets: sweep/spec/budget.py).

Every method is an Optuna sampler on a per-arm study (`optuna`: seeded TPE, `random`: seeded
random sampling, `grid`: every combination), so all three share one searcher and one record of
what was tried. In a grid the training seed is one more dimension, over the rule's search seeds
(a rule with fewer points repeats them over more seeds: every arm gets the same budget);
otherwise trial k of an arm trains with seed `seeds[k % len(seeds)]`.
"""

from __future__ import annotations

import heapq
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from ..spec import Choice, Dimension, Range, SweepSpec

SEED = "seed"  # the grid's extra dimension


def distributions(dims: dict[str, Dimension]) -> dict[str, BaseDistribution]:
    """Optuna distributions of the searched dimensions (fixed values are not searched)."""
    out: dict[str, BaseDistribution] = {}
    for name, dim in dims.items():
        if isinstance(dim, Range):
            out[name] = FloatDistribution(dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Choice):
            out[name] = CategoricalDistribution(dim.choices)
    return out


def fixed_values(dims: dict[str, Dimension]) -> dict[str, float]:
    return {name: dim for name, dim in dims.items() if not isinstance(dim, (Range, Choice))}


def grid(dims: dict[str, Dimension], seeds: list[int]) -> dict[str, list[Any]]:
    """The grid sampler's search space: every choice, and the seeds."""
    space = {name: list(dim.choices) for name, dim in dims.items() if isinstance(dim, Choice)}
    space[SEED] = list(seeds)
    return space


class AskTellGrid(optuna.samplers.GridSampler):
    """Optuna's grid sampler for ask-and-tell use: the stock one calls `study.stop()` when its last
    point finishes, which raises outside `study.optimize` (inside `tell`). The searcher counts the
    grid's trials itself, so there is nothing to stop."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


# TPE models at most the WINDOW most recent trials of an arm's study, plus its BEST best trials
# (docs/statistics.md, "A long search"): its cost per suggestion grows with the trials it models
WINDOW, BEST = 500, 25


class _Recent:
    """A study as TPE's model reads it: its trials narrowed to the `window` most recent and the
    `best` best completed ones (every other attribute is the study's own)."""

    def __init__(self, study: optuna.Study, window: int, best: int):
        self._study, self._window, self._best = study, window, best

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False) -> list:
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        if len(trials) <= self._window + self._best:
            return trials
        older, recent = trials[: -self._window], trials[-self._window :]
        done = [t for t in older if t.state == optuna.trial.TrialState.COMPLETE]
        return heapq.nlargest(self._best, done, key=lambda t: t.value) + recent  # the studies maximise


class WindowTPE(optuna.samplers.TPESampler):
    """Optuna's TPE on a window of the study (`_Recent`); `window` 0 models every trial."""

    def __init__(self, *args, window: int = WINDOW, best: int = BEST, **kwargs):
        super().__init__(*args, **kwargs)
        self._window, self._best = window, best

    def _sample(self, study, trial, search_space):
        if self._window:
            study = _Recent(study, self._window, self._best)
        return super()._sample(study, trial, search_space)


def sampler(spec: SweepSpec, rule: str, arm_index: int) -> optuna.samplers.BaseSampler:
    seed = spec.search.seed + arm_index  # each arm seeded, and differently
    if spec.search.method == "grid":
        return AskTellGrid(grid(spec.space_for(rule), spec.search_seeds(rule)), seed=seed)
    if spec.search.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Constant liar keeps parallel trials of one arm from proposing the same point (Optuna 5
    # default); a short random start-up so small budgets still get a modelled search.
    startup = min(10, max(1, spec.search.trials_per_arm // 3))
    return WindowTPE(seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True, window=WINDOW)


def suggested_distributions(spec: SweepSpec, rule: str) -> dict[str, BaseDistribution]:
    """What a trial of this arm asks its study for (the grid asks for the seed too)."""
    dists = distributions(spec.space_for(rule))
    if spec.search.method == "grid":
        dists[SEED] = CategoricalDistribution(spec.search_seeds(rule))
    return dists
