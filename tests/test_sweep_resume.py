"""`sweep run` interrupted with Ctrl-C, then `sweep resume`: the commands as a user runs them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from helpers.figures import logged_epochs, record
from sweep.spec import Arm

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
tracking: {system_metrics_every_s: 1}  # a sample each second: these short runs end before the default 5 s
"""


def sweep(*args):
    return [sys.executable, "-m", "sweep.cli", *args]


def results(result_file: Path) -> list[dict]:
    """What a trial reported to Tune, one row per epoch (result.json)."""
    return [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]


def children(client, experiment_id):
    found = client.search_runs([experiment_id])
    return [r for r in found if "ray.trial_id" in r.data.tags], [r for r in found if r.data.tags.get("sweep.role") == "parent"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed-driver"])
def test_interrupted_sweep_resumes_without_repeating_finished_trials(tmp_path, stop):
    (tmp_path / "spec.yaml").write_text(SPEC)
    # in a session of its own, as a scheduler's job: its local Ray lives in its process group
    run = subprocess.Popen(
        sweep("run", "spec.yaml"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines, deadline = [], time.monotonic() + 240
    while time.monotonic() < deadline:
        line = run.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("[1/4]") and "finished" in line:  # one trial done, the next one started
            run.send_signal(stop)  # SIGINT is what Ctrl-C sends; SIGKILL a driver that dies
            stopped_at = time.time()
            break
    output = "".join(lines) + run.communicate(timeout=240)[0]
    if stop == signal.SIGINT:
        assert run.returncode == 130, output
        assert "Continue with: sweep resume resume-me" in output
    else:
        assert run.returncode == -signal.SIGKILL
        # the dead driver's local Ray outlives it; stop it before resuming, as a scheduler ends a
        # job's process group. Not `ray stop`, which stops every Ray on the machine, the other
        # pytest workers' sessions with them.
        os.killpg(run.pid, signal.SIGKILL)

    # what the trials had done when the driver stopped, from Tune's own records (MLflow may lag
    # behind: its events wait in the sweep's journal until `sweep resume` applies them)
    folder = tmp_path / "sweeps" / "resume-me"
    done = {path.parent.name: [row["epoch"] for row in results(path)] for path in folder.glob("*/result.json")}
    finished_before = {trial for trial, seen in done.items() if seen and max(seen) == 3}
    in_flight = {trial: max(seen, default=0) for trial, seen in done.items() if trial not in finished_before}
    assert 1 <= len(finished_before) < 4

    resumed = subprocess.run(sweep("resume", "resume-me"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "best small_cnn/sam_gns" in resumed.stdout

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("resume-me")
    after, (parent,) = children(client, experiment.experiment_id)
    assert parent.info.status == "FINISHED"
    assert len(after) == 4  # one run per trial: nothing repeated, nothing lost
    for run_ in after:
        assert run_.info.status == "FINISHED"
        assert sorted(m.step for m in client.get_metric_history(run_.info.run_id, "test_acc")) == [1, 2, 3]
    for trial in finished_before:  # finished trials were not run again: every result is from before the stop
        assert all(row["trial_started_at"] < stopped_at for row in results(folder / trial / "result.json"))

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db")
    for rule in ("sgd", "sam_gns"):
        study = optuna.load_study(study_name=Arm("small_cnn", rule).study_name("resume-me"), storage=storage)
        assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2  # continued, not restarted
    # this machine's system metrics: one run, found again and continued by the resume (no step twice)
    (node,) = client.search_runs([experiment.experiment_id], filter_string="tags.`sweep.role` = 'node'")
    assert node.info.status == "FINISHED" and node.data.tags["mlflow.parentRunId"] == parent.info.run_id
    cpu = [m.step for m in client.get_metric_history(node.info.run_id, "system/cpu_utilization_percentage")]
    assert cpu and len(cpu) == len(set(cpu))

    redone = 0
    for trial, logged in in_flight.items():
        restored = results(folder / trial / "result.json")[-1]["restored_from_epoch"]
        redone += max(0, logged - restored)
    assert redone <= len(in_flight)  # at most one epoch per interrupted trial
    _, lost, doubled = logged_epochs(client, after, 3, "test_acc")
    record(
        f"driver {stop.name}, then sweep resume",
        trials=len(after),
        epochs=3,
        redone=redone,
        lost=lost,
        doubled=doubled,
        note=f"{len(finished_before)} finished before the stop, none run again",
    )


def test_resume_of_an_unknown_sweep_exits_2(tmp_path):
    result = subprocess.run(sweep("resume", "nothing-here"), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"name: no sweep 'nothing-here' to resume in {tmp_path / 'sweeps'}")
