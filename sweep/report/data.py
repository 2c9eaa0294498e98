"""The numbers of a sweep's report, read from MLflow alone (no Ray): the runs, the spec the sweep
ran (its parent run's artifact), each arm's cell and the comparisons of the reference rule
(SAM-GNS by default) with every other rule of a model (sweep/compare/)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.tracking import MlflowClient

from ..compare.seeds import judge
from ..errors import UserError
from ..spec import SweepSpec, read_saved_spec
from ..tracking.schema import (
    ARM_TAG,
    OUTCOME_TAG,
    PARENT_ROLE,
    PARENT_RUN_TAG,
    PHASE_TAG,
    ROLE_TAG,
    SPEC_ARTIFACT,
    STUDY_TRIAL_TAG,
    TRIAL_TAG,
    Outcome,
    Phase,
)
from . import history
from .cells import TrialRun, edge_warnings, make_cell, regime
from .contents import SweepReport


def load_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list[TrialRun]:
    """The sweep's trial runs with their test_acc curves: one search request, and the curves in
    bulk (sweep/report/history.py), not one request per run."""
    found = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_id}'", max_results=50000)
    trials = [run for run in found if TRIAL_TAG in run.data.tags]  # not a node's system metrics (sweep.role=node)
    test_curves = history.curves(client, [run.info.run_id for run in trials], "test_acc")
    return [
        TrialRun(
            run_id=run.info.run_id,
            name=run.info.run_name,
            arm=run.data.tags[ARM_TAG],
            phase=run.data.tags.get(PHASE_TAG, Phase.SEARCH),
            outcome=run.data.tags.get(OUTCOME_TAG, Outcome.RUNNING),
            train=dict(run.data.params),
            final=dict(run.data.metrics),
            order=int(run.data.tags.get(STUDY_TRIAL_TAG, -1)),
            test_curve=test_curves[run.info.run_id],
        )
        for run in trials
    ]


def _spec_of(client: MlflowClient, parent_id: str) -> SweepSpec:
    """The spec the sweep ran, as its parent run keeps it (passwords redacted)."""
    bar, users = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, os.environ.get(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name)
    os.environ[bar] = "false"  # MLflow's progress bar for one small file is noise on the report's terminal
    try:
        with tempfile.TemporaryDirectory() as folder:
            return read_saved_spec(Path(client.download_artifacts(parent_id, SPEC_ARTIFACT, folder)))
    finally:
        if users is None:
            os.environ.pop(bar, None)
        else:
            os.environ[bar] = users


def build_report(uri: str, name: str, on_spec: Callable[[SweepSpec], None] | None = None) -> SweepReport:
    """Everything the report shows, from the tracking store at `uri`. Raises UserError when the
    store holds no sweep of that name. `on_spec` is handed the sweep's spec as soon as it is read,
    before the runs are (the figure process starts on each arm's study with it: write.py)."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    parents = (
        client.search_runs([experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = '{PARENT_ROLE}'") if experiment else []
    )
    if not parents:
        raise UserError(f"name: no sweep {name!r} in the MLflow store {uri}")
    parent = parents[0]
    spec = _spec_of(client, parent.info.run_id)
    if on_spec is not None:
        on_spec(spec)
    runs = load_runs(client, experiment.experiment_id, parent.info.run_id)
    cells = {(arm.model, arm.rule): make_cell(spec, arm, runs) for arm in spec.arms()}
    comparisons = judge(spec, {f"{model}/{rule}": cell.sample for (model, rule), cell in cells.items()})
    warnings = [line for cell in cells.values() for line in edge_warnings(spec, cell)]
    finished = parent.info.status == "FINISHED"
    return SweepReport(name, spec, parent.info.run_id, finished, cells, comparisons, runs, regime(spec), warnings)
