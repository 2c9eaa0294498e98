"""The report reads its runs' curves in bulk (sweep/report/history.py): what it builds must equal
the report built from one metric-history request per run, on the same store, read directly
(SQLite) and through an `mlflow server`, also when every batch is cut and read again in halves."""

import dataclasses

import pytest
from mlflow.tracking import MlflowClient

from helpers.fake_sweep import log_trial, make_spec
from helpers.servers import MlflowServer
from sweep.report import data, history
from sweep.report.cells import TrialRun
from sweep.tracking.runs import SweepTracker
from sweep.tracking.schema import (
    ARM_TAG,
    OUTCOME_TAG,
    PARENT_RUN_TAG,
    PHASE_TAG,
    STUDY_TRIAL_TAG,
    TRIAL_TAG,
    Outcome,
    Phase,
)


def per_run_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list[TrialRun]:
    """The reference: the report's reading before the bulk one, a history request per run."""
    found = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_id}'", max_results=50000)
    runs = []
    for run in found:
        tags = run.data.tags
        if TRIAL_TAG not in tags:
            continue
        history_ = client.get_metric_history(run.info.run_id, "test_acc")
        runs.append(
            TrialRun(
                run_id=run.info.run_id,
                name=run.info.run_name,
                arm=tags[ARM_TAG],
                phase=tags.get(PHASE_TAG, Phase.SEARCH),
                outcome=tags.get(OUTCOME_TAG, Outcome.RUNNING),
                train=dict(run.data.params),
                final=dict(run.data.metrics),
                order=int(tags.get(STUDY_TRIAL_TAG, -1)),
                test_curve=[m.value for m in sorted(history_, key=lambda m: m.step)],
            )
        )
    return runs


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Search trials of three rules (one diverged, one failed before its first epoch, one still
    running), then confirmation seeds: runs of different lengths and runs with no curve."""
    spec = make_spec(tmp_path_factory.mktemp("bulk"), confirm_seeds=2)
    tracker = SweepTracker(spec)
    for i, rule in enumerate(["sgd", "sam", "sam_gns"]):
        log_trial(tracker, f"{rule}-a", rule, 0.1, 0, 90.0 + i, [70 + i, 80, 85 + i], study_trial=0)
        log_trial(tracker, f"{rule}-b", rule, 0.3, 0, 91.0 + i, [71, 82 + i, 86, 88], study_trial=1)
    log_trial(tracker, "gns-div", "sam_gns", 1.0, 0, 50.0, [10], outcome="diverged", study_trial=2)
    log_trial(tracker, "sam-fail", "sam", 0.5, 0, 0.0, [], outcome="failed", study_trial=2)
    log_trial(tracker, "sgd-run", "sgd", 0.2, 0, 60.0, [50, 55], outcome=None, study_trial=2)
    for seed in (1, 2):
        for rule, lr in (("sgd", 0.3), ("sam", 0.3), ("sam_gns", 0.3)):
            log_trial(tracker, f"{rule}-c{seed}", rule, lr, seed, 92.0, [80, 85 + seed, 89 + seed], phase="confirm")
    tracker.finish({})
    return spec


def reports(uri: str, monkeypatch) -> tuple[data.SweepReport, data.SweepReport]:
    bulk = data.build_report(uri, "fake")
    with monkeypatch.context() as patch:
        patch.setattr(data, "load_runs", per_run_runs)
        reference = data.build_report(uri, "fake")
    return bulk, reference


def assert_same(bulk: data.SweepReport, reference: data.SweepReport) -> None:
    assert len(bulk.runs) == 15
    assert {run.run_id: len(run.test_curve) for run in bulk.runs} == {run.run_id: len(run.test_curve) for run in reference.runs}
    assert bulk.runs == reference.runs  # every field of every run, its whole curve included
    assert bulk.cells.keys() == reference.cells.keys()
    for key, cell in bulk.cells.items():
        for field in dataclasses.fields(cell):
            assert getattr(cell, field.name) == getattr(reference.cells[key], field.name), (key, field.name)
    assert bulk.comparisons == reference.comparisons and bulk.comparisons
    assert (bulk.warnings, bulk.finished, bulk.regime) == (reference.warnings, reference.finished, reference.regime)


def test_bulk_report_equals_the_per_run_report_on_sqlite(swept, monkeypatch):
    assert_same(*reports(swept.tracking.mlflow_uri, monkeypatch))


def test_batches_cut_at_their_cap_are_read_again_in_halves(swept, monkeypatch):
    monkeypatch.setattr(history, "DATABASE_RUNS", 4)  # 15 runs: four batches
    monkeypatch.setattr(history, "DATABASE_VALUES", 5)  # most batches hold more values: halved, down to one run
    calls = []
    store_fetch = history._database

    def counted(store, key):
        fetch = store_fetch(store, key)
        return lambda run_ids, cap: calls.append(len(run_ids)) or fetch(run_ids, cap)

    monkeypatch.setattr(history, "_database", counted)
    assert_same(*reports(swept.tracking.mlflow_uri, monkeypatch))
    assert max(calls) == 4 and 1 in calls  # the batching and the halving both happened


@pytest.mark.slow
def test_bulk_report_equals_the_per_run_report_through_a_server(swept, tmp_path, monkeypatch):
    server = MlflowServer(tmp_path, backend=swept.tracking.mlflow_uri).start()
    try:
        bulk, reference = reports(server.uri, monkeypatch)
        assert_same(bulk, reference)
        monkeypatch.setattr(history, "SERVER_RUNS", 4)
        monkeypatch.setattr(history, "SERVER_VALUES", 5)
        assert_same(*reports(server.uri, monkeypatch))
    finally:
        server.stop()
