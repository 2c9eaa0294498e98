"""Early stopping per arm: one ASHA for each (model, rule) arm, none for confirmation trials.

A trial is compared only with trials of its own arm. A rung's cutoff is a percentile of the
validation accuracies recorded there; shared by all arms, one rule's curves (say SGD, still near
chance at epoch 1 while SAM-GNS is well above it) would decide how many of another rule's trials
run to the end, and so how much budget each rule gets. Per arm, each rule's trials compete for
its own budget only. Each arm's ASHA is Ray's own `AsyncHyperBandScheduler`, made on the arm's
first trial with that trial's epoch count as `max_t` (models may train for different lengths).

Confirmation trials (phase `confirm`) never reach an ASHA and always continue: they are the
report's measurements of each arm's chosen setting over new seeds, and stopping some of them
would leave each cell with only its survivors, biased upward.

Tune pickles the Tuner's config, this scheduler included, into the sweep's state: the object
holds plain dicts, sets and Ray's schedulers, so `sweep resume` unpickles it. Tune does not save
a scheduler's later state, so a resumed sweep starts with empty rungs (as Ray's ASHA does).
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from ..tracking.schema import METRIC, MODE, Phase

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from ..spec import SweepSpec

TIME_ATTR = "epoch"  # rungs are epochs, 1-based, as the trainer reports them


class PerArmAsha(FIFOScheduler):
    """ASHA on val_acc with one set of rungs per arm; trials start in the order Tune queued them."""

    def __init__(self, grace_period: int, reduction_factor: float):
        super().__init__()
        self._grace_period = grace_period
        self._reduction_factor = reduction_factor
        self._metric, self._mode = METRIC, MODE
        self._arms: dict[str, AsyncHyperBandScheduler] = {}  # arm key -> its ASHA
        self.stopped: dict[str, set[str]] = {}  # arm key -> trial ids stopped before their last epoch

    # -- Tune's calls ------------------------------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        """Tune passes the Tuner's metric and mode: the sweep's own objective is accepted, any
        other refused (Tune then raises), since each arm's ASHA is built on the objective."""
        return metric in (None, METRIC) and mode in (None, MODE)

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        if _exempt(trial):
            return
        arm = trial.config["arm"]
        if arm not in self._arms:
            self._arms[arm] = self._asha(int(trial.config["train"]["epochs"]))
        self._arms[arm].on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        asha = self._asha_of(trial)
        if asha is None:
            return TrialScheduler.CONTINUE
        action = asha.on_trial_result(tune_controller, trial, result)
        # ASHA also answers STOP at max_t, where the trial ends anyway: only earlier stops count
        if action == TrialScheduler.STOP and result.get(TIME_ATTR, 0) < trial.config["train"]["epochs"]:
            self.stopped.setdefault(trial.config["arm"], set()).add(trial.trial_id)
        return action

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        if (asha := self._asha_of(trial)) is not None:
            asha.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        if (asha := self._asha_of(trial)) is not None:
            asha.on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        # a retried trial is added again after this (on_trial_add): it keeps its rung records,
        # and its replayed epochs are not judged twice
        if (asha := self._asha_of(trial)) is not None:
            asha.on_trial_error(tune_controller, trial)

    def debug_string(self) -> str:
        lines = [f"Using ASHA per arm on {METRIC} ({MODE}): {sum(map(len, self.stopped.values()))} stopped early"]
        lines += [f"{arm}: {asha.debug_string()}" for arm, asha in sorted(self._arms.items())]
        return "\n".join(lines)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))

    # -- what tests read ---------------------------------------------------------------------------

    def arms(self) -> list[str]:
        """The arms that have an ASHA (those with a search trial so far)."""
        return sorted(self._arms)

    def rungs(self, arm: str) -> dict[float, set[str]]:
        """Per rung (its epoch, ascending), the ids of the arm's trials recorded there: a copy,
        read from Ray's bracket (`_brackets[i]._rungs`, a list of (milestone, {trial id: value}))."""
        asha = self._arms.get(arm)
        if asha is None:
            return {}
        found: dict[float, set[str]] = {}
        for bracket in asha._brackets:
            for milestone, recorded in bracket._rungs:
                found.setdefault(milestone, set()).update(recorded)
        return dict(sorted(found.items()))

    # -- helpers -----------------------------------------------------------------------------------

    def _asha(self, epochs: int) -> AsyncHyperBandScheduler:
        return AsyncHyperBandScheduler(
            time_attr=TIME_ATTR,
            metric=METRIC,
            mode=MODE,
            max_t=epochs,
            # a model shorter than the grace period is never stopped early: its last epoch is
            # the only rung, and ASHA ends every trial there anyway
            grace_period=min(self._grace_period, epochs),
            reduction_factor=self._reduction_factor,
        )

    def _asha_of(self, trial: Trial) -> AsyncHyperBandScheduler | None:
        return None if _exempt(trial) else self._arms.get(trial.config["arm"])


def _exempt(trial: Trial) -> bool:
    return trial.config.get("phase") == Phase.CONFIRM


def build_scheduler(spec: SweepSpec) -> TrialScheduler | None:
    """The sweep's early stopping, or None when its spec has no `scheduler` section."""
    if spec.scheduler is None:
        return None
    return PerArmAsha(spec.scheduler.grace_period, spec.scheduler.reduction_factor)
