"""`sweep run` interrupted with Ctrl-C, then `sweep resume`: the commands as a user runs them."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from figures import logged_epochs, record
from mlflow.tracking import MlflowClient

from sweep.search import study_name

pytestmark = pytest.mark.slow

SPEC = """\
name: resume-me
dataset: digits
models: [small_cnn]
optimizers: [sgd, sam_gns]
train: {epochs: 3, batch_size: 64, model_options: {width: 4}}
search:
  method: optuna
  trials_per_arm: 2
  space:
    lr: {low: 0.01, high: 0.5, log: true}
    rho: {low: 0.01, high: 0.2, log: true}
max_concurrent: 1
"""


def sweep(*args):
    return [sys.executable, "-m", "sweep.cli", *args]


def children(client, experiment_id):
    found = client.search_runs([experiment_id])
    return [r for r in found if "mlflow.parentRunId" in r.data.tags], [r for r in found if r.data.tags.get("sweep.role")]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed-driver"])
def test_interrupted_sweep_resumes_without_repeating_finished_trials(tmp_path, stop):
    (tmp_path / "spec.yaml").write_text(SPEC)
    run = subprocess.Popen(
        sweep("run", "spec.yaml"), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        line = run.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("[1/4]") and "finished" in line:  # one trial done, the next one started
            run.send_signal(stop)  # SIGINT is what Ctrl-C sends; SIGKILL a driver that dies
            break
    output = "".join(lines) + run.communicate(timeout=240)[0]
    if stop == signal.SIGINT:
        assert run.returncode == 130, output
        assert "Continue with: sweep resume resume-me" in output
    else:
        assert run.returncode == -signal.SIGKILL
        # the dead driver's local Ray outlives it; stop it as a person would before resuming
        subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"], capture_output=True, timeout=120)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("resume-me")
    before, (parent,) = children(client, experiment.experiment_id)
    finished_before = {r.info.run_id: r for r in before if r.info.status == "FINISHED"}
    # epochs the interrupted trials had logged: what a resume from an earlier checkpoint would redo
    in_flight = {
        r.data.tags["ray.trial_id"]: max((m.step for m in client.get_metric_history(r.info.run_id, "test_acc")), default=0)
        for r in before if r.info.status == "RUNNING"
    }
    assert 1 <= len(finished_before) < 4
    assert parent.info.status == "RUNNING"  # the sweep is not over

    resumed = subprocess.run(sweep("resume", "resume-me"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "best small_cnn/sam_gns" in resumed.stdout

    after, (parent,) = children(client, experiment.experiment_id)
    assert parent.info.status == "FINISHED"
    assert len(after) == 4  # one run per trial: nothing repeated, nothing lost
    for run_ in after:
        assert run_.info.status == "FINISHED"
        assert sorted(m.step for m in client.get_metric_history(run_.info.run_id, "test_acc")) == [1, 2, 3]
    for run_id, run_ in finished_before.items():  # finished trials were not run again
        again = client.get_run(run_id)
        assert again.info.end_time == run_.info.end_time

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db")
    for rule in ("sgd", "sam_gns"):
        study = optuna.load_study(study_name=study_name("resume-me", "small_cnn", rule), storage=storage)
        assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2  # continued, not restarted

    redone = 0
    for trial_id, logged in in_flight.items():
        (result_file,) = (tmp_path / "sweeps" / "resume-me").glob(f"*{trial_id}*/result.json")
        restored = [json.loads(line)["restored_from_epoch"] for line in result_file.read_text().splitlines()][-1]
        redone += max(0, logged - restored)
    assert redone <= len(in_flight)  # at most one epoch per interrupted trial
    _, lost, doubled = logged_epochs(client, after, 3, "test_acc")
    record(f"driver {stop.name}, then sweep resume", trials=len(after), epochs=3, redone=redone, lost=lost, doubled=doubled,
           note=f"{len(finished_before)} finished before the stop, none run again")


def test_resume_of_an_unknown_sweep_exits_2(tmp_path):
    result = subprocess.run(sweep("resume", "nothing-here"), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"name: no sweep 'nothing-here' to resume in {tmp_path / 'sweeps'}")
