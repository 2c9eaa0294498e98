"""The numbers of a sweep's report, read from MLflow alone (no Ray): the runs, the spec the sweep
ran (its parent run's artifact), each arm's cell and the comparisons of the reference rule
(SAM-GNS by default) with every other rule of a model (sweep/compare/)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.tracking import MlflowClient

from ..compare.seeds import judge
from ..compare.stats import ALPHA, Comparison, procedure
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
from . import frames, history
from .cells import Cell, TrialRun, edge_warnings, make_cell, regime


@dataclass
class SweepReport:
    name: str
    spec: SweepSpec
    parent_id: str
    finished: bool
    cells: dict[tuple[str, str], Cell]
    comparisons: list[Comparison]
    runs: list[TrialRun]
    regime: dict  # the numbers' regime: data set, split sizes, epochs, augmentation, batch, schedule
    warnings: list[str] = field(default_factory=list)  # chosen settings at the edge of their range
    notes: list[str] = field(default_factory=list)  # Optuna plots left out, and why (sweep/report/studies.py)

    @property
    def models(self) -> list[str]:
        return self.spec.models

    @property
    def rules(self) -> list[str]:
        return self.spec.optimizers

    @property
    def procedure(self) -> str:
        """How the comparisons were made, in a sentence or two (the report states it)."""
        return procedure(self.spec.looks, len(self.comparisons), self.spec.report.margin, ALPHA)

    @property
    def chosen_on_objective(self) -> bool:
        """False when no setting was chosen (val_fraction 0: every arm ran its one setting)."""
        return any(cell.chosen_on_objective for cell in self.cells.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per run: arm, phase, seed, settings, final metrics, outcome (frames.py)."""
        return frames.runs_frame(self)

    def cells_frame(self) -> pd.DataFrame:
        """One row per (model, rule): n, mean, std, setting, verdict against the reference (frames.py)."""
        return frames.cells_frame(self)


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


def build_report(uri: str, name: str) -> SweepReport:
    """Everything the report shows, from the tracking store at `uri`. Raises UserError when the
    store holds no sweep of that name."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    parents = (
        client.search_runs([experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = '{PARENT_ROLE}'") if experiment else []
    )
    if not parents:
        raise UserError(f"name: no sweep {name!r} in the MLflow store {uri}")
    parent = parents[0]
    spec = _spec_of(client, parent.info.run_id)
    runs = load_runs(client, experiment.experiment_id, parent.info.run_id)
    cells = {(arm.model, arm.rule): make_cell(spec, arm, runs) for arm in spec.arms()}
    comparisons = judge(spec, {f"{model}/{rule}": cell.sample for (model, rule), cell in cells.items()})
    warnings = [line for cell in cells.values() for line in edge_warnings(spec, cell)]
    finished = parent.info.status == "FINISHED"
    return SweepReport(name, spec, parent.info.run_id, finished, cells, comparisons, runs, regime(spec), warnings)
