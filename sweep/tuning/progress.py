"""Terminal progress of a sweep: per arm, trials running and done, and its chosen setting so far
(the same choice as the searcher's and the report's: sweep/compare/choice.py)."""

from __future__ import annotations

import sys
from typing import TextIO

from ray.tune import Callback

from ..compare.choice import Result, choose, trial_result
from ..defaults import SPEC_FILE
from ..spec import SweepSpec, searched
from ..spec.budget import planned_trials
from ..tracking.schema import METRIC, Phase
from ..tracking.status import saved_spec


def settings(train: dict) -> str:
    """The searched settings worth printing: lr, and rho/eta where the rule reads them."""
    return ", ".join(f"{key} {value:.3g}" for key, value in searched(train).items())


class Progress(Callback):
    def __init__(self, budget: dict[str, int], spec: SweepSpec, out: TextIO | None = None):
        self.budget = budget  # per arm, the most trials it runs
        self.spec = spec
        self.out = out
        self.running = dict.fromkeys(budget, 0)
        self.done = dict.fromkeys(budget, 0)
        self.results: dict[str, list[Result]] = {arm: [] for arm in budget}  # ended search trials
        self.trains: dict[tuple[str, int], dict] = {}  # (arm, study trial) -> TrainConfig, to print a setting

    def __getstate__(self):
        return {**self.__dict__, "out": None}

    def setup(self, **info) -> None:
        # Tune restores this callback as the sweep started it; `sweep resume --set` may have
        # raised the budget in the saved spec since (sweep/search/generator.py reads it too)
        if (self.spec.folder / SPEC_FILE).exists():
            self.spec = saved_spec(self.spec.folder)
            self.budget = planned_trials(self.spec)
        self._counted = False

    def _count(self, trials, current) -> None:
        """Once per run, before its first line: running and done per arm from Tune's own list,
        which holds a resumed sweep's earlier trials."""
        if self.__dict__.get("_counted", True):
            return
        self._counted = True
        for arm in self.budget:
            mine = [t for t in trials if t.config.get("arm") == arm and t is not current]
            self.running[arm] = sum(t.status == "RUNNING" for t in mine)
            self.done[arm] = sum(t.status in ("TERMINATED", "ERROR") for t in mine)
            self.results.setdefault(arm, [])

    def _line(self, arm: str, event: str) -> None:
        total_done, total = sum(self.done.values()), sum(self.budget.values())
        best = ""
        choice = choose(self.results[arm])
        if choice is not None:
            train = self.trains[(arm, choice.results[0].order)]
            value = f"{METRIC} {choice.val_acc:.2f}" if choice.val_acc is not None else f"no {METRIC}"
            best = f", best {value} ({settings(train)})"
        print(
            f"[{total_done}/{total}] {arm}: {event}; {self.running[arm]} running, {self.done[arm]}/{self.budget[arm]} done{best}",
            file=self.out or sys.stdout,
            flush=True,
        )

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._count(trials, trial)
        arm = trial.config["arm"]
        self.running[arm] += 1
        self._line(arm, f"trial {trial.trial_id} started")

    def _ended(self, trial, outcome: str) -> None:
        arm = trial.config["arm"]
        self.running[arm] = max(0, self.running[arm] - 1)
        self.done[arm] += 1
        if trial.config.get("phase") == Phase.SEARCH:
            result = trial_result(self.spec, trial.config, trial.last_result or {}, outcome)
            self.results[arm].append(result)
            self.trains[(arm, result.order)] = trial.config["train"]
        self._line(arm, f"trial {trial.trial_id} {outcome}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._count(trials, trial)
        self._ended(trial, (trial.last_result or {}).get("status", "done"))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._count(trials, trial)
        self._ended(trial, "failed")
