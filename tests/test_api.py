"""The Python API (`import sweep`): the report's DataFrames against what MLflow holds, bad input
refused as the CLI refuses it, and the README's notebook example run as written.

The frames' sweep is written through the real tracking code into a real SQLite MLflow store,
without Ray (the report needs none), as in tests/test_report.py.
"""

import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import sweep
from helpers.fake_sweep import log_trial, make_spec
from sweep.compare.stats import label
from sweep.errors import UserError
from sweep.tracking.runs import SweepTracker

README = Path(__file__).parent.parent / "README.md"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two search trials per rule (one of sam_gns diverged), three confirmation seeds for sgd and
    sam_gns; sam's confirmation never ran."""
    tmp_path = tmp_path_factory.mktemp("api")
    space = {"lr": {"low": 0.01, "high": 1.0, "log": True}, "rho": {"low": 0.01, "high": 0.5, "log": True}}
    spec = make_spec(tmp_path, confirm_seeds=3, search={"method": "optuna", "trials_per_arm": 2, "space": space})
    tracker = SweepTracker(spec)
    log_trial(tracker, "s1", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "s2", "sgd", 0.3, 0, 92.0, [81, 89, 90], study_trial=1)
    log_trial(tracker, "s3", "sam", 0.1, 0, 93.0, [82, 92, 91])
    log_trial(tracker, "s4", "sam", 0.2, 0, 91.0, [79, 84, 95], study_trial=1)
    log_trial(tracker, "s5", "sam_gns", 0.5, 0, 94.0, [83, 90, 92], rho=0.1)
    log_trial(tracker, "s6", "sam_gns", 1.0, 0, 50.0, [10, 10, 10], outcome="diverged", study_trial=1)
    for i, (sgd, gns) in enumerate([(89.0, 93.0), (90.5, 93.5), (88.5, 92.0)]):
        log_trial(tracker, f"c{i}", "sgd", 0.3, 1 + i, 91.0, [80, 85, sgd], phase="confirm")
        log_trial(tracker, f"g{i}", "sam_gns", 0.5, 1 + i, 93.0, [80, 85, gns], phase="confirm", rho=0.1)
    tracker.finish({})
    return spec


def child_runs(spec):
    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    return [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]


def test_to_frame_has_one_row_per_run_with_the_values_mlflow_holds(finished):
    frame = sweep.report(finished.name, tracking_uri=finished.tracking.mlflow_uri).to_frame()
    runs = child_runs(finished)
    assert len(frame) == len(runs) == 12
    assert frame["run_id"].is_unique
    rows = frame.set_index("run_id")
    for run in runs:
        row, tags, params = rows.loc[run.info.run_id], run.data.tags, run.data.params
        assert row["arm"] == tags["sweep.arm"] == f"{row['model']}/{row['rule']}"
        assert (row["phase"], row["outcome"]) == (tags["sweep.phase"], tags["sweep.outcome"])
        assert row["seed"] == int(params["seed"]) and row["lr"] == float(params["lr"])
        assert row["test_acc"] == run.data.metrics["test_acc"] and row["val_acc"] == run.data.metrics["val_acc"]
        assert row["epochs"] == 3
        # rho is searched for the two-pass rules only: sgd's row has none, though its params carry the default
        assert math.isnan(row["rho"]) if row["rule"] == "sgd" else row["rho"] == float(params["rho"])
    search = frame[frame["phase"] == "search"]
    assert search.groupby("rule").size().to_dict() == {"sam": 2, "sam_gns": 2, "sgd": 2}
    assert sorted(search["study_trial"].tolist()) == [0, 0, 0, 1, 1, 1]
    assert frame[frame["phase"] == "confirm"]["study_trial"].isna().all()
    assert frame[frame["outcome"] == "diverged"][["rule", "lr"]].values.tolist() == [["sam_gns", 1.0]]


def test_cells_frame_has_one_row_per_arm_with_its_numbers_and_verdict(finished):
    report = sweep.report(finished.name, tracking_uri=finished.tracking.mlflow_uri)
    cells = report.cells_frame().set_index("rule")
    assert list(cells.index) == ["sgd", "sam", "sam_gns"] and (cells["model"] == "small_cnn").all()
    sgd = cells.loc["sgd"]
    assert (sgd["n"], sgd["source"], sgd["lr"]) == (3, "confirmation", 0.3)  # lr 0.3: the higher val_acc
    assert sgd["mean"] == pytest.approx(statistics.fmean([89.0, 90.5, 88.5]))
    assert sgd["std"] == pytest.approx(statistics.stdev([89.0, 90.5, 88.5]))
    assert math.isnan(sgd["rho"]) and cells.loc["sam_gns", "rho"] == 0.1
    (against_sgd,) = [c for c in report.comparisons if c.rule == "sgd"]
    assert sgd["against"] == "sam_gns" and sgd["verdict"] == label(against_sgd.verdict, "sam_gns")
    assert sgd["diff"] == pytest.approx(statistics.fmean([93.0 - 89.0, 93.5 - 90.5, 92.0 - 88.5]))
    assert cells.loc["sam", "n"] == 0 and cells.loc["sam", "problem"] == "no confirmation run yet"
    assert cells.loc["sam", "verdict"] == "undecided"
    assert cells.loc[["sam_gns"], ["against", "verdict", "diff"]].isna().all(axis=None)  # the reference: not compared


def test_bad_input_raises_user_error_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = {"name": "nb", "dataset": "digits", "models": ["small_cnn"], "optimizers": ["sgd"], "train": {"epochs": 2}}
    with pytest.raises(UserError, match=r"^train\.epochs: "):
        sweep.run(spec, overrides=["train.epochs=0"])
    with pytest.raises(UserError, match=r"^optimizers: unknown update rule 'adam'"):
        sweep.run({**spec, "optimizers": ["adam"]})
    with pytest.raises(UserError, match="^overrides: a list of KEY=VALUE strings"):
        sweep.run(spec, overrides="train.epochs=3")
    with pytest.raises(UserError, match="^name: no sweep 'nb' to resume in "):
        sweep.resume("nb")
    with pytest.raises(UserError, match="^name: no sweep 'nb' to resume in "):
        sweep.resume("nb", overrides=["search.trials_per_arm=4"])
    with pytest.raises(UserError, match="^overrides: a list of KEY=VALUE strings"):
        sweep.resume("nb", overrides="search.trials_per_arm=4")
    assert list(tmp_path.iterdir()) == []
    assert spec["train"] == {"epochs": 2}  # the caller's dict is left as it was
    with pytest.raises(UserError, match="^name: no sweep 'nb' in the MLflow store sqlite:///"):
        sweep.report("nb")
    assert sweep.validate(spec, ["train.epochs=3"]).train["epochs"] == 3


def test_import_sweep_loads_no_heavy_package_and_report_stays_callable():
    check = (
        "import sys, sweep; heavy = sorted(m for m in ('torch', 'ray', 'mlflow', 'optuna') if m in sys.modules); "
        "report = sweep.report; import sweep.report.data; "
        "print(heavy, report is sweep.report and callable(report), sorted(sweep.__all__))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] True ['report', 'resume', 'run', 'validate']"


def readme_example() -> str:
    """The first python block of the README's "Python API" section."""
    section = README.read_text().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_notebook_example_runs_as_written(tmp_path):
    result = subprocess.run([sys.executable, "-c", readme_example()], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "reports" / "notebook" / "report.md").exists()
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    found = client.search_runs([client.get_experiment_by_name("notebook").experiment_id])
    runs = [run for run in found if run.data.tags.get("sweep.role") != "node"]  # one system-metrics run per node besides
    assert len(runs) == 1 + 2 * (2 + 2)  # parent; per rule 2 search trials (the override) and 2 confirmation seeds
    # the frames it prints: a mean per rule and phase, then a cell per rule resting on its 2 confirmation seeds
    *_, sgd, sam_gns = result.stdout.splitlines()
    assert sgd.split()[:3] == ["0", "sgd", "2"] and sam_gns.split()[:3] == ["1", "sam_gns", "2"]
    assert "sgd     confirm" in result.stdout and "sam_gns confirm" in result.stdout
