"""Terminal progress of a sweep: per arm, trials running and done, and the best val_acc so far."""

from __future__ import annotations

import sys
from typing import TextIO

from ray.tune import Callback

from ..spec import searched
from ..tracking.schema import METRIC


def settings(train: dict) -> str:
    """The searched settings worth printing: lr, and rho/eta where the rule reads them."""
    return ", ".join(f"{key} {value:.3g}" for key, value in searched(train).items())


class Progress(Callback):
    def __init__(self, budget: dict[str, int], out: TextIO | None = None):
        self.budget = budget
        self.out = out
        self.running = dict.fromkeys(budget, 0)
        self.done = dict.fromkeys(budget, 0)
        self.best: dict[str, tuple[float, dict]] = {}

    def __getstate__(self):
        return {**self.__dict__, "out": None}

    def _line(self, arm: str, event: str) -> None:
        total_done, total = sum(self.done.values()), sum(self.budget.values())
        best = ""
        if arm in self.best:
            value, train = self.best[arm]
            best = f", best {METRIC} {value:.2f} ({settings(train)})"
        print(
            f"[{total_done}/{total}] {arm}: {event}; {self.running[arm]} running, {self.done[arm]}/{self.budget[arm]} done{best}",
            file=self.out or sys.stdout,
            flush=True,
        )

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        arm = trial.config["arm"]
        self.running[arm] += 1
        self._line(arm, f"trial {trial.trial_id} started")

    def _ended(self, trial, outcome: str) -> None:
        arm = trial.config["arm"]
        self.running[arm] = max(0, self.running[arm] - 1)
        self.done[arm] += 1
        value = (trial.last_result or {}).get(METRIC)
        if value is not None and (arm not in self.best or value > self.best[arm][0]):
            self.best[arm] = (value, trial.config["train"])
        self._line(arm, f"trial {trial.trial_id} {outcome}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._ended(trial, (trial.last_result or {}).get("status", "done"))

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._ended(trial, "failed")
