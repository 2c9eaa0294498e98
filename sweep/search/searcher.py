"""ArmSearcher: one Ray Tune searcher over all arms, one Optuna study per arm.

Every (model, update rule) arm has its own study (named `<sweep>/<model>/<rule>`, seeded
sampler) and the same trial budget; the next trial goes to the arm with the fewest trials issued,
so one rule's early luck never takes another's budget and all arms share one Tune run.
The searcher holds only plain data, so Tune can pickle it and `sweep resume` restores it; the
studies themselves live in the Optuna database.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from ..spec import Arm, SweepSpec
from ..tracking.schema import METRIC, MODE, Outcome, Phase, TrialConfig
from . import space


class ArmSearcher(Searcher):
    def __init__(self, spec: SweepSpec):
        super().__init__(metric=METRIC, mode=MODE)
        self._spec_json = spec.model_dump(mode="json")
        # per arm key (plain strings: Tune pickles this state and `sweep resume` restores it)
        self._issued: dict[str, int] = {arm.key: 0 for arm in spec.arms()}
        self._confirmed: dict[str, int] = dict.fromkeys(self._issued, 0)  # confirmation trials issued
        self._trials: dict[str, tuple[str, int]] = {}  # Tune trial id -> (arm, Optuna trial number)
        self._told: set[str] = set()
        self._studies: dict[str, optuna.Study] = {}
        self._storage: optuna.storages.RDBStorage | None = None  # one engine for every arm's study
        self._live: dict[str, optuna.Trial] = {}  # asked in this process, for intermediate values

    # -- plain state (pickled by Tune, restored by `sweep resume`) ----------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_studies"], state["_live"], state["_storage"] = {}, {}, None  # connections are reopened, not pickled
        state.pop("_spec", None)
        return state

    def get_state(self) -> dict[str, Any]:
        return {"issued": self._issued, "confirmed": self._confirmed, "trials": self._trials, "told": self._told}

    def set_state(self, state: dict[str, Any]) -> None:
        self._issued, self._confirmed = state["issued"], state["confirmed"]
        self._trials, self._told = state["trials"], state["told"]

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_bytes(pickle.dumps(self.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(pickle.loads(Path(checkpoint_path).read_bytes()))

    # -- studies ------------------------------------------------------------------------------------
    @property
    def spec(self) -> SweepSpec:
        if "_spec" not in self.__dict__:
            self._spec = SweepSpec.model_validate(self._spec_json)
        return self._spec

    def study(self, arm: str) -> optuna.Study:
        if arm not in self._studies:
            arms = self.spec.arms()
            index = [a.key for a in arms].index(arm)
            if self._storage is None:
                # one storage (one connection pool, one schema check) for all arms: a storage per
                # study cost 0.2-0.4 s each on the first suggestion of every arm
                self._storage = optuna.storages.RDBStorage(self.spec.tracking.optuna_storage)
            self._studies[arm] = optuna.create_study(
                study_name=arms[index].study_name(self.spec.name),
                storage=self._storage,
                sampler=space.sampler(self.spec, arms[index].rule, index),
                direction="maximize",
                load_if_exists=True,  # `sweep resume` continues the same study
            )
        return self._studies[arm]

    def search_budgets(self) -> dict[str, int]:
        """Search trials per arm key (confirmation trials come on top)."""
        return {arm.key: space.search_budget(self.spec, arm.rule) for arm in self.spec.arms()}

    def best_point(self, arm: str) -> dict[str, float] | None:
        """The arm's best setting so far: the searched values whose completed trials have the
        highest mean objective (a grid repeats each setting over seeds), with the fixed values."""
        by_setting: dict[tuple, list[float]] = {}
        for trial in self.study(arm).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            setting = tuple(sorted((k, v) for k, v in trial.params.items() if k != space.SEED))
            by_setting.setdefault(setting, []).append(trial.value)
        if not by_setting:
            return None
        best = max(by_setting, key=lambda setting: sum(by_setting[setting]) / len(by_setting[setting]))
        return {**space.fixed_values(self.spec.space_for(Arm.parse(arm).rule)), **dict(best)}

    def _config(self, arm: str, phase: str, seed: int, point: dict[str, float], study_trial: int | None) -> TrialConfig:
        model, rule = Arm.parse(arm)
        return TrialConfig(
            arm=arm,
            phase=phase,
            study_trial=study_trial,
            checkpoint_every=self.spec.checkpoints.every,
            train=self.spec.train_config(model, rule, seed, point).model_dump(mode="json"),
        )

    def close_orphans(self) -> int:
        """At the end of a sweep, fail the study trials still RUNNING: asked by a driver that was
        killed before its state was saved, so no Tune trial will ever tell them."""
        closed = 0
        for arm in self.search_budgets():
            study = self.study(arm)
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
                closed += 1
        return closed

    # -- Searcher API -------------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> TrialConfig | str | None:
        budget = self.search_budgets()
        open_arms = [arm for arm in self._issued if self._issued[arm] < budget[arm]]
        if not open_arms:
            return self._suggest_confirmation(budget)
        arm = min(open_arms, key=lambda a: self._issued[a])  # fewest issued first, in spec order
        rule = Arm.parse(arm).rule
        study = self.study(arm)
        trial = study.ask(space.suggested_distributions(self.spec, rule))
        point = {**space.fixed_values(self.spec.space_for(rule)), **trial.params}
        seeds = self.spec.seeds
        seed = point.pop(space.SEED, seeds[self._issued[arm] % len(seeds)])
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("ray_trial_id", trial_id)
        config = self._config(arm, Phase.SEARCH, seed, point, trial.number)
        self._issued[arm] += 1
        self._trials[trial_id] = (arm, trial.number)
        self._live[trial_id] = trial
        return config

    def _suggest_confirmation(self, budget: dict[str, int]) -> TrialConfig | str | None:
        """After an arm's search, its best setting again with `confirm_seeds` new seeds.
        Other arms' searches go on meanwhile; an arm with no completed trial confirms nothing."""
        wanted = self.spec.confirm_seeds
        waiting = False
        for arm in sorted(self._issued, key=lambda a: self._confirmed[a]):
            if self._confirmed[arm] >= wanted:
                continue
            told = sum(1 for trial_id, (a, _) in self._trials.items() if a == arm and trial_id in self._told)
            if told < budget[arm]:
                waiting = True  # its search is still running: its best setting is not known yet
                continue
            point = self.best_point(arm)
            if point is None:
                self._confirmed[arm] = wanted
                continue
            seed = self.spec.confirmation_seeds()[self._confirmed[arm]]
            self._confirmed[arm] += 1
            return self._config(arm, Phase.CONFIRM, seed, point, None)
        return None if waiting else Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # Per-epoch values let a trial that ASHA stops early still inform TPE (as pruned). Trials
        # asked before a `sweep resume` report only their final value.
        trial = self._live.get(trial_id)
        if trial is not None and METRIC in result:
            trial.report(result[METRIC], step=result["epoch"])

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self._trials or trial_id in self._told:
            return
        arm, number = self._trials[trial_id]
        study = self.study(arm)
        if error or not result or METRIC not in result:
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        elif result.get("status") == Outcome.RUNNING:
            # Stopped early by the scheduler: recorded as pruned, its last value as the value at
            # that epoch (Tune does not pass the result that triggered the stop to on_trial_result).
            self.on_trial_result(trial_id, result)
            study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
        elif result.get("status") == Outcome.DIVERGED:
            # a failure, not a score: chance-level accuracy would read as a merely poor setting
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        else:
            study.tell(number, result[METRIC], skip_if_finished=True)
        self._told.add(trial_id)
