"""What one run's MLflow record holds, written alike by the sweep's tracker (sweep/tracking/runs.py)
and by `sweep train`: a trial's curves as points at `step=epoch`, an arm's chosen setting in words,
and the logger of a single run outside any sweep."""

from __future__ import annotations

import time
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from ..spec import searched
from .schema import CURVES, EXPERIMENT_KIND, OUTCOME_TAG, REPORTED_AT, Outcome


def curve_points(result: dict[str, Any]) -> list[Metric]:
    """One epoch's curves as MLflow metrics at `step=epoch`, for one `log_batch` request; stamped
    with the time the trial reported them where known (else Ray Tune's `timestamp`, whole
    seconds, as in a journal written before), so an epoch replayed after an outage keeps its own
    time."""
    stamp = result.get(REPORTED_AT, result.get("timestamp", time.time()))
    stamp = int(float(stamp) * 1000)
    return [Metric(key, float(result[key]), stamp, int(result["epoch"])) for key in CURVES if key in result]


def chosen_text(best: dict[str, Any]) -> str:
    """An arm's chosen setting in one line: its mean final accuracies over the seeds it was chosen
    on, and its searched values (the terminal and the parent run's best.* tags read the same)."""
    seeds = f" over {best['n']} seed{'s' if best['n'] > 1 else ''}" if best.get("n") else ""
    val = f"val_acc {best['val_acc']:.2f}%" if best.get("val_acc") is not None else "no val_acc (val_fraction 0)"
    test = f"test_acc {best['test_acc']:.2f}%" if best.get("test_acc") is not None else "no test_acc"
    values = ", ".join(f"{k} {v:.4g}" for k, v in searched(best["train"]).items())
    return f"{val}, {test}{seeds} ({values})"


class RunLogger:
    """MLflow logging of a single `sweep train` run (no sweep, no parent): a reporter for fit()."""

    def __init__(self, uri: str, experiment: str, train: dict[str, Any]):
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment, tags=EXPERIMENT_KIND)
        name = f"{train['optimizer']} {train['model']} (sweep train)"
        self.run_id = self.client.create_run(experiment_id, run_name=name).info.run_id
        self.client.log_batch(self.run_id, params=[Param(key, str(value)) for key, value in sorted(train.items())])

    def __call__(self, metrics: dict[str, Any], state: dict[str, Any]) -> None:
        self.client.log_batch(self.run_id, metrics=curve_points(metrics))

    def end(self, status: str) -> None:
        self.client.set_tag(self.run_id, OUTCOME_TAG, status)
        self.client.set_terminated(self.run_id, "FINISHED" if status == Outcome.FINISHED else "FAILED")
