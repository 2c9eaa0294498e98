"""`sweep report` from MLflow alone: numbers recomputed independently, files, and edge cases.

The sweeps here are written through the real tracking code into a real SQLite MLflow store,
without Ray (the report needs none); `tests/test_sweep.py` reports on a sweep Ray really ran.
"""

import csv
import statistics
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from helpers.fake_sweep import log_trial, make_spec
from sweep import cli
from sweep.report.data import build_report
from sweep.report.render import FILES, render, write_report
from sweep.tracking.runs import SweepTracker


@pytest.fixture
def finished(tmp_path):
    """Two search trials per rule, then confirmation seeds for sgd and sam_gns, none for sam."""
    spec = make_spec(tmp_path)
    tracker = SweepTracker(spec)
    log_trial(tracker, "s1", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "s2", "sgd", 0.3, 0, 92.0, [81, 89, 90])  # best sgd setting: lr 0.3
    log_trial(tracker, "s3", "sam", 0.1, 0, 93.0, [82, 92, 91])  # best sam; its best epoch is 2
    log_trial(tracker, "s4", "sam", 0.2, 0, 91.0, [79, 84, 95])  # higher test, lower val: not chosen
    log_trial(tracker, "s5", "sam_gns", 0.5, 0, 94.0, [83, 90, 92])
    log_trial(tracker, "s6", "sam_gns", 1.0, 0, 50.0, [10, 10, 10], outcome="diverged")
    for i, (sgd, gns) in enumerate([(89.0, 93.0), (90.5, 93.5), (88.5, 92.0)]):
        log_trial(tracker, f"c{i}", "sgd", 0.3, 1 + i, 91.0, [80, 85, sgd], phase="confirm")
        log_trial(tracker, f"g{i}", "sam_gns", 0.5, 1 + i, 93.0, [80, 85, gns], phase="confirm")
    tracker.finish({})
    return spec


def recomputed(spec):
    """The cells straight from MLflow: best search setting on final val_acc, confirmation runs."""
    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    cells = {}
    for rule in spec.optimizers:
        search = [
            r
            for r in runs
            if r.data.tags["sweep.arm"] == f"small_cnn/{rule}"
            and r.data.tags["sweep.phase"] == "search"
            and r.data.tags["sweep.outcome"] == "finished"
        ]
        best = max(search, key=lambda r: r.data.metrics["val_acc"])
        confirm = [r for r in runs if r.data.tags["sweep.arm"] == f"small_cnn/{rule}" and r.data.tags["sweep.phase"] == "confirm"]
        used = confirm or [best]
        values = [r.data.metrics["test_acc"] for r in used]
        cells[rule] = (
            statistics.fmean(values),
            statistics.stdev(values) if len(values) > 1 else None,
            len(values),
            float(best.data.params["lr"]),
        )
    return cells


def test_report_numbers_equal_those_recomputed_from_mlflow(finished, tmp_path):
    report = write_report(finished.tracking.mlflow_uri, "fake", tmp_path / "out")
    for rule, (mean, std, n, lr) in recomputed(finished).items():
        cell = report.cells[("small_cnn", rule)]
        assert cell.mean == pytest.approx(mean) and cell.n == n and cell.setting["lr"] == lr
        assert (cell.std is None) == (std is None) and (std is None or cell.std == pytest.approx(std))
    assert report.cells[("small_cnn", "sgd")].source == "confirmation"
    assert report.cells[("small_cnn", "sam")].source == "search"
    assert report.cells[("small_cnn", "sam")].best_epoch_mean == 92.0  # the paper's measure: best epoch
    assert report.cells[("small_cnn", "sam_gns")].diverged == 1

    (vs_sgd,) = [d for d in report.differences if d.rule == "sgd"]
    assert vs_sgd.diff == pytest.approx(statistics.fmean([93.0, 93.5, 92.0]) - statistics.fmean([89.0, 90.5, 88.5]))
    assert vs_sgd.low < vs_sgd.diff < vs_sgd.high
    (vs_sam,) = [d for d in report.differences if d.rule == "sam"]
    assert vs_sam.low is None  # SAM has a single run: no interval

    text = render(report, terminal=True)
    assert "92.83 ± 0.76 (n=3) *" in text  # SAM-GNS's row best, marked
    assert "too few seeds" in text and "1 diverged" in text and "the paper's measure" in text
    rows = list(csv.DictReader((tmp_path / "out" / "table.csv").open()))
    assert {r["optimizer"]: r["n"] for r in rows} == {"sgd": "3", "sam": "1", "sam_gns": "3"}


def test_report_files_are_valid_and_attached_to_the_parent(finished, tmp_path):
    report = write_report(finished.tracking.mlflow_uri, "fake", tmp_path / "out")
    for name in ("test_acc_curves.png", "test_acc_lr_rho.png"):
        with Image.open(tmp_path / "out" / name) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 300
    client = MlflowClient(finished.tracking.mlflow_uri)
    attached = {a.path for a in client.list_artifacts(report.parent_id, "report")}
    assert attached == {f"report/{name}" for name in FILES}
    assert "| small_cnn |" in (tmp_path / "out" / "report.md").read_text()


def test_an_arm_with_only_failed_trials_is_flagged(tmp_path):
    spec = make_spec(tmp_path, "failing")
    tracker = SweepTracker(spec)
    log_trial(tracker, "a", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "b", "sam", 0.1, 0, 10.0, [10], outcome="failed")
    log_trial(tracker, "c", "sam", 0.2, 0, 10.0, [10], outcome="failed")
    log_trial(tracker, "d", "sam_gns", 0.5, 0, 91.0, [80, 85, 89])
    tracker.finish({})
    report = build_report(spec.tracking.mlflow_uri, "failing")
    cell = report.cells[("small_cnn", "sam")]
    assert cell.mean is None and cell.failed == 2
    text = render(report, terminal=True)
    assert "small_cnn/sam: 2 search trials; cell from 0 search run(s); 2 failed" in text
    assert "sam_gns - sam: no result on one side" in text
    row = next(line for line in text.splitlines() if line.startswith("small_cnn "))  # the main table's
    assert "(n=1)  failed  " in row


def test_one_seed_gives_no_interval(tmp_path):
    spec = make_spec(tmp_path, "single", optimizers=["sgd", "sam_gns"])
    tracker = SweepTracker(spec)
    log_trial(tracker, "a", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "b", "sam_gns", 0.5, 0, 91.0, [80, 85, 89])
    tracker.finish({})
    report = build_report(spec.tracking.mlflow_uri, "single")
    assert report.cells[("small_cnn", "sgd")].std is None
    assert "sam_gns - sgd: +1.00 points (too few seeds for a confidence interval)" in render(report, terminal=False)


def test_an_interrupted_sweep_is_reported_as_unfinished(tmp_path):
    spec = make_spec(tmp_path, "cut", optimizers=["sgd", "sam_gns"])
    tracker = SweepTracker(spec)
    log_trial(tracker, "a", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "b", "sam_gns", 0.5, 0, 91.0, [80, 85], outcome=None)  # was running
    report = build_report(spec.tracking.mlflow_uri, "cut")
    assert not report.finished
    assert report.cells[("small_cnn", "sam_gns")].mean is None
    text = render(report, terminal=True)
    assert "has not finished" in text and "small_cnn/sam_gns: 1 search trials; cell from 0" in text


def test_report_command(finished, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "fake", "--tracking-uri", finished.tracking.mlflow_uri]) == 0
    out = capsys.readouterr().out
    assert "Sweep fake: final-epoch test accuracy" in out
    assert (tmp_path / "reports" / "fake" / "report.md").exists()
    assert cli.main(["report", "nothing", "--tracking-uri", finished.tracking.mlflow_uri]) == 2
    assert "name: no sweep 'nothing'" in capsys.readouterr().err


def test_no_password_reaches_mlflow(tmp_path):
    secret = "s3cr3t-pw"
    spec = make_spec(
        tmp_path,
        "private",
        tracking={
            "mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db",
            "optuna_storage": f"postgresql://sweeper:{secret}@127.0.0.1:5432/studies",
        },
    )
    tracker = SweepTracker(spec)
    log_trial(tracker, "a", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    tracker.finish({})
    report = write_report(spec.tracking.mlflow_uri, "private", tmp_path / "out")
    client = MlflowClient(spec.tracking.mlflow_uri)
    parent = client.get_run(report.parent_id)
    stored = client.download_artifacts(report.parent_id, "sweep_spec.yaml", str(tmp_path))
    text = Path(stored).read_text()
    assert "postgresql://sweeper:***@127.0.0.1:5432/studies" in text and secret not in text
    for run in client.search_runs([parent.info.experiment_id]):
        assert secret not in str(run.data.params) + str(run.data.tags)
    assert all(secret not in p.read_text() for p in (tmp_path / "out").glob("*.md"))
