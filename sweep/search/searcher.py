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

from ..compare.choice import Result, choose
from ..compare.seeds import Ended, wanted
from ..spec import Arm, SweepSpec
from ..tracking.schema import METRIC, MODE, Outcome, Phase, TrialConfig
from . import space
from .links import OUTCOME_ATTR, RAY_TRIAL_ATTR, SEED_ATTR, TEST_ACC_ATTR, VAL_ACC_ATTR, VAL_LOSS_ATTR
from .storage import open_storage


class ArmSearcher(Searcher):
    def __init__(self, spec: SweepSpec):
        super().__init__(metric=METRIC, mode=MODE)
        self._spec_json = spec.model_dump(mode="json")
        # per arm key (plain strings: Tune pickles this state and `sweep resume` restores it)
        self._issued: dict[str, int] = {arm.key: 0 for arm in spec.arms()}
        self._confirmed: dict[str, int] = dict.fromkeys(self._issued, 0)  # confirmation trials issued
        self._ended: Ended = {arm: {} for arm in self._issued}  # confirmation seed -> final test_acc (None: failed)
        self._confirming: dict[str, tuple[str, int]] = {}  # Tune trial id -> (arm, seed) of confirmation trials
        self._chosen: dict[str, dict[str, float] | None] = {}  # arm -> its setting, once its search has ended
        self._trials: dict[str, tuple[str, int]] = {}  # Tune trial id -> (arm, Optuna trial number)
        self._told: set[str] = set()
        self._studies: dict[str, optuna.Study] = {}
        self._storage: optuna.storages.RDBStorage | None = None  # one engine for every arm's study
        self._live: dict[str, optuna.Trial] = {}  # asked in this process, for intermediate values
        self._orphans: dict[str, list[int]] = {}  # arm -> study trials a killed driver left, looked up once

    # -- plain state (pickled by Tune, restored by `sweep resume`) ----------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_studies"], state["_live"], state["_storage"] = {}, {}, None  # connections are reopened, not pickled
        state["_orphans"] = {}  # looked up again by the restored searcher
        state.pop("_spec", None)
        return state

    def get_state(self) -> dict[str, Any]:
        return {
            "issued": self._issued,
            "confirmed": self._confirmed,
            "trials": self._trials,
            "told": self._told,
            "ended": self._ended,
            "confirming": self._confirming,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._issued, self._confirmed = state["issued"], state["confirmed"]
        self._trials, self._told = state["trials"], state["told"]
        # a sweep saved before seeds were counted per look holds neither
        self._ended = state.get("ended", {arm: {} for arm in self._issued})
        self._confirming = state.get("confirming", {})
        self._orphans = {}

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_bytes(pickle.dumps(self.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(pickle.loads(Path(checkpoint_path).read_bytes()))

    def follow(self, spec: SweepSpec) -> None:
        """Take `spec`'s budget after a restore (the sweep's saved spec, which `sweep resume --set`
        may have raised): arms choose again once their larger search has ended."""
        self._spec_json = spec.model_dump(mode="json")
        for cached in ("_spec", "_plan_key"):
            self.__dict__.pop(cached, None)
        self._studies, self._chosen = {}, {}  # samplers rebuilt for the new budget

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
                self._storage = open_storage(self.spec.tracking.optuna_storage)
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
        return {arm.key: self.spec.search_budget(arm.rule) for arm in self.spec.arms()}

    def results(self, arm: str) -> list[Result]:
        """The arm's search trials as the choice of a setting reads them (sweep/compare/choice.py)."""
        rule = Arm.parse(arm).rule
        fixed = space.fixed_values(self.spec.space_for(rule))
        found = []
        for trial in self.study(arm).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            attrs = trial.user_attrs
            point = {**fixed, **{k: v for k, v in trial.params.items() if k != space.SEED}}
            found.append(
                Result(
                    setting=Result.key(self.spec.setting(rule, point)),
                    seed=attrs.get(SEED_ATTR, 0),
                    outcome=attrs.get(OUTCOME_ATTR, Outcome.FINISHED),
                    val_acc=attrs.get(VAL_ACC_ATTR, trial.value),
                    val_loss=attrs.get(VAL_LOSS_ATTR),
                    order=trial.number,
                    test_acc=attrs.get(TEST_ACC_ATTR),
                )
            )
        return found

    def best_point(self, arm: str) -> dict[str, float] | None:
        """The arm's chosen setting so far (sweep/compare/choice.py), with the fixed values."""
        choice = choose(self.results(arm))
        if choice is None:
            return None
        return {**space.fixed_values(self.spec.space_for(Arm.parse(arm).rule)), **choice.setting}

    def _config(self, arm: str, phase: str, seed: int, point: dict[str, float], study_trial: int | None) -> TrialConfig:
        model, rule = Arm.parse(arm)
        return TrialConfig(
            arm=arm,
            phase=phase,
            study_trial=study_trial,
            checkpoint_every=self.spec.checkpoints.every,
            checkpoint_every_s=self.spec.checkpoints.every_s,
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
            return self._suggest_confirmation(trial_id, budget)
        arm = min(open_arms, key=lambda a: self._issued[a])  # fewest issued first, in spec order
        rule = Arm.parse(arm).rule
        study = self.study(arm)
        trial = self._orphan(arm) or study.ask(space.suggested_distributions(self.spec, rule))
        point = {**space.fixed_values(self.spec.space_for(rule)), **trial.params}
        seeds = self.spec.search_seeds(rule)
        seed = point.pop(space.SEED, seeds[self._issued[arm] % len(seeds)])
        trial.set_user_attr(SEED_ATTR, seed)
        trial.set_user_attr(RAY_TRIAL_ATTR, trial_id)
        config = self._config(arm, Phase.SEARCH, seed, point, trial.number)
        self._issued[arm] += 1
        self._trials[trial_id] = (arm, trial.number)
        self._live[trial_id] = trial
        return config

    def _orphan(self, arm: str) -> optuna.Trial | None:
        """A study trial of the arm that a killed driver asked for after Tune last saved this
        searcher: RUNNING, and held by no trial this searcher knows. `sweep resume` trains it
        now, with the setting Optuna proposed then, so the study continues rather than holding a
        failed trial and one more than its budget."""
        study = self.study(arm)
        if arm not in self._orphans:  # once per arm and process: only a restored searcher finds any
            held = {number for held_arm, number in self._trials.values() if held_arm == arm}
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            self._orphans[arm] = [trial.number for trial in running if trial.number not in held]
        if not self._orphans[arm]:
            return None
        return optuna.Trial(study, self._trial_id(study, self._orphans[arm].pop(0)))

    def _trial_id(self, study: optuna.Study, number: int) -> int:
        """The storage's id of the study's trial `number`."""
        storage = self._storage
        return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)

    def _searched(self, arm: str, budget: dict[str, int]) -> bool:
        """Whether every search trial of the arm has ended (its chosen setting is then final)."""
        told = sum(1 for trial_id, (a, _) in self._trials.items() if a == arm and trial_id in self._told)
        return told >= budget[arm]

    def _suggest_confirmation(self, trial_id: str, budget: dict[str, int]) -> TrialConfig | str | None:
        """After an arm's search, its chosen setting again on new seeds: `confirm_seeds` of them,
        or as many as the comparisons need (sweep/compare/seeds.py). Other arms' searches go on
        meanwhile; an arm whose search finished no trial confirms nothing."""
        for arm in self._issued:
            if arm not in self._chosen and self._searched(arm, budget):
                self._chosen[arm] = self.best_point(arm)
        chosen = {arm for arm, point in self._chosen.items() if point is not None}
        # Tune asks again and again while trials run; the plan changes only when a search or a
        # confirmation ends, so it is worked out (t tests and all) once per change
        key = (frozenset(chosen), tuple(len(seeds) for seeds in self._ended.values()))
        if self.__dict__.get("_plan_key") != key:
            self._plan_key, self._plan = key, wanted(self.spec, chosen, self._ended)
        want = self._plan
        for arm in sorted(chosen, key=lambda a: self._confirmed[a]):
            if self._confirmed[arm] < want[arm]:
                seed = self.spec.confirmation_seeds()[self._confirmed[arm]]
                self._confirmed[arm] += 1
                self._confirming[trial_id] = (arm, seed)
                return self._config(arm, Phase.CONFIRM, seed, self._chosen[arm], None)
        searching = len(self._chosen) < len(self._issued)
        confirming = any(trial not in self._told for trial in self._confirming)
        # a look may ask for another seed once the running confirmations end
        return None if searching or confirming else Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        # Per-epoch values let a trial that ASHA stops early still inform TPE (as pruned). Trials
        # asked before a `sweep resume` report only their final value.
        trial = self._live.get(trial_id)
        if trial is not None and METRIC in result:
            trial.report(result[METRIC], step=result["epoch"])

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._confirming and trial_id not in self._told:
            arm, seed = self._confirming[trial_id]
            finished = not error and result and result.get("status") == Outcome.FINISHED
            self._ended[arm][seed] = result.get("test_acc") if finished else None
            self._told.add(trial_id)
            return
        if trial_id not in self._trials or trial_id in self._told:
            return
        arm, number = self._trials[trial_id]
        study = self.study(arm)
        status = (result or {}).get("status")
        if error or not result or status not in (Outcome.RUNNING, Outcome.DIVERGED, Outcome.FINISHED):
            study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        elif status == Outcome.RUNNING:
            # Stopped early by the scheduler: recorded as pruned, its last value as the value at
            # that epoch (Tune does not pass the result that triggered the stop to on_trial_result).
            self.on_trial_result(trial_id, result)
            study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
        elif self._record(study, number, result):
            # A diverged trial is a completed trial at chance-level accuracy, so TPE learns where
            # the rule diverges (a failure it would ignore, and keep sampling there); the choice
            # of a setting still counts it as diverged, by its outcome attribute. Without a
            # validation split the arm has one setting and the value only closes the trial.
            value = result.get(METRIC, 0.0) if status == Outcome.FINISHED else self._chance
            study.tell(number, value, skip_if_finished=True)
        self._told.add(trial_id)
        self._live.pop(trial_id, None)  # an ended trial reports no more: 10,000 of them held ~MBs (benchmarks/RESULTS.md)

    @property
    def _chance(self) -> float:
        """Accuracy (%) of guessing: what a diverged trial scores in its study."""
        arm = self.spec.arms()[0]
        return 100.0 / self.spec.train_config(arm.model, arm.rule, self.spec.seeds[0], {}).data_shape().num_classes

    def _record(self, study: optuna.Study, number: int, result: dict[str, Any]) -> bool:
        """Write the trial's end into its user attributes; False when the trial has already
        ended in the study (a trial told again after a resume)."""
        storage, trial_id = self._storage, self._trial_id(study, number)
        if storage.get_trial(trial_id).state.is_finished():
            return False
        attrs = {
            OUTCOME_ATTR: result["status"],
            VAL_ACC_ATTR: result.get(METRIC) if result["status"] == Outcome.FINISHED else None,
            VAL_LOSS_ATTR: result.get("val_loss") if result["status"] == Outcome.FINISHED else None,
            TEST_ACC_ATTR: result.get("test_acc"),
        }
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        return True
