"""The one choice of an arm's setting, made the same way wherever a setting is chosen: by the
searcher before it confirms a setting, at the end of a sweep (the terminal and the parent run),
in the progress lines and in the report.

A setting is the arm's searched values (lr, and rho or eta where the rule reads them). Its score is
the mean final `val_acc` over the seeds it was trained with; a setting that diverged on any seed
counts as diverged and is not ranked on its surviving seeds (a rule that is unstable at a setting
must not win there by luck of seed). Ties go to the lower mean final `val_loss`, then to the
setting tried first. Trials that failed, were stopped early or never ended say nothing of their
setting and are left out. The test set is never read here.

The searcher reads its results from Optuna and the report from MLflow; both build the same
`Result`s, so the same data gives the same choice (tests/test_choice.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..tracking.schema import METRIC, Outcome

if TYPE_CHECKING:
    from ..spec import SweepSpec

FINISHED, DIVERGED = Outcome.FINISHED, Outcome.DIVERGED  # the outcomes that say something of a setting


@dataclass(frozen=True)
class Result:
    """One search trial's end, as the choice needs it."""

    setting: tuple[tuple[str, float], ...]  # sorted (name, value) pairs of the searched values
    seed: int
    outcome: str  # FINISHED, DIVERGED, or anything else (left out)
    val_acc: float | None  # final, percent; None without a validation split
    val_loss: float | None
    order: int  # the trial's number in its arm's study: earlier trials win ties
    test_acc: float | None = None  # carried for the summaries, never used to choose

    @staticmethod
    def key(values: dict[str, float]) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((name, float(value)) for name, value in values.items()))


def trial_result(spec: SweepSpec, config: dict, metrics: dict, status: str | None) -> Result:
    """A search trial's end as the choice of a setting reads it, from its config (TrialConfig) and its
    last result: Tune's in the driver, the journal's in `sweep status`."""
    train = config["train"]
    return Result(
        setting=Result.key(spec.setting(train["optimizer"], train)),
        seed=train["seed"],
        outcome=status,
        val_acc=metrics.get(METRIC),
        val_loss=metrics.get("val_loss"),
        order=config.get("study_trial") or 0,
        test_acc=metrics.get("test_acc"),
    )


@dataclass(frozen=True)
class Choice:
    setting: dict[str, float]
    results: list[Result] = field(default_factory=list)  # the setting's finished trials, in study order
    on_objective: bool = True  # False when nothing was measured to choose on (val_fraction 0)

    @property
    def val_acc(self) -> float | None:
        values = [r.val_acc for r in self.results if r.val_acc is not None]
        return statistics.fmean(values) if values else None

    @property
    def test_acc(self) -> float | None:
        values = [r.test_acc for r in self.results if r.test_acc is not None]
        return statistics.fmean(values) if values else None

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.results]


def _mean(values: list[float | None], missing: float) -> float:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if len(known) == len(values) else missing


def choose(results: Iterable[Result]) -> Choice | None:
    """The arm's chosen setting, or None when no setting finished without diverging."""
    groups: dict[tuple, list[Result]] = {}
    diverged: set[tuple] = set()
    for result in results:
        if result.outcome == DIVERGED:
            diverged.add(result.setting)
        elif result.outcome == FINISHED:
            groups.setdefault(result.setting, []).append(result)
    ranked = {setting: sorted(group, key=lambda r: r.order) for setting, group in groups.items() if setting not in diverged}
    if not ranked:
        return None
    if any(r.val_acc is None for group in ranked.values() for r in group):
        # no validation split: only an arm with one setting may run so (the spec checks it)
        if len(ranked) > 1:
            return None
        ((setting, group),) = ranked.items()
        return Choice(dict(setting), group, on_objective=False)

    def rank(setting: tuple) -> tuple[float, float, int]:
        group = ranked[setting]
        return (
            -statistics.fmean(r.val_acc for r in group),
            _mean([r.val_loss for r in group], math.inf),
            group[0].order,
        )

    best = min(ranked, key=rank)
    return Choice(dict(best), ranked[best])
