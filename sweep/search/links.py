"""Optuna's side of the links between the tools: the user attributes a study trial carries, and
the MLflow run id written into them by the tracker (sweep/tracking/runs.py) when it creates or
finds the trial's run.

The attribute names live here (and nowhere else) so that the searcher, the tracker, the report
and the tests read the same ones. This module imports optuna only: the tracker, `sweep sync`
and the report import it without Ray.
"""

from __future__ import annotations

import threading

import optuna

from .storage import open_storage

# user attributes of a study trial: where it ran, and its end as the choice of a setting reads it
SEED_ATTR, RAY_TRIAL_ATTR, RUN_ID_ATTR = "seed", "ray_trial_id", "mlflow_run_id"
OUTCOME_ATTR, VAL_ACC_ATTR, VAL_LOSS_ATTR, TEST_ACC_ATTR = "outcome", "val_acc", "val_loss", "test_acc"


class _LinkStorage(optuna.storages.RDBStorage):
    """The sweep's Optuna storage, where a link may also reach a trial that has ended: the run of
    a trial is created by the journal's thread, which lags behind the trial while MLflow is down
    (or replays it in `sweep sync`), when Optuna would refuse any change to the finished trial.
    A link is the only attribute written this way; values and states are left alone."""

    def check_trial_is_updatable(self, trial_id: int, trial_state) -> None:
        return None


class StudyLinks:
    """Writes each search trial's MLflow run id into its study trial, opening the sweep's Optuna
    storage once, on the first link. Idempotent: a second link of the same run writes the same."""

    _opening = threading.Lock()  # the journal's threads link side by side (sweep/tracking/applier.py)

    def __init__(self, storage: str):
        self.url = storage
        self._storage: _LinkStorage | None = None

    def __getstate__(self) -> dict:  # pickled with the tracker (a Tune callback): reconnect after
        return {"url": self.url, "_storage": None}

    def link(self, study: str, number: int, run_id: str) -> bool:
        """Set RUN_ID_ATTR of trial `number` of `study`; False when the storage holds no such
        study or trial (runs logged without a study, as the report's tests do)."""
        with self._opening:
            if self._storage is None:
                self._storage = open_storage(self.url, _LinkStorage)
        try:
            study_id = self._storage.get_study_id_from_name(study)
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(study_id, number)
        except KeyError:
            return False
        self._storage.set_trial_user_attr(trial_id, RUN_ID_ATTR, run_id)
        return True
