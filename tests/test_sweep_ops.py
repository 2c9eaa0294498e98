"""A sweep as an object, through the `sweep` command as a user runs it: the live status lines,
`sweep status` and `sweep list sweeps` from another terminal while it runs and after, `sweep
stop` then `sweep resume`, and `sweep resume --set` extending the finished sweep. One sweep lives
through all of it (module-scoped fixtures, one stage each), on a real local Ray with SQLite stores."""

import contextlib
import json
import re
import subprocess
import sys
import time

import optuna
import psutil
import pytest
from mlflow.tracking import MlflowClient

from helpers.figures import logged_epochs
from sweep.spec import Arm
from sweep.tuning.signals import POLL_S

pytestmark = pytest.mark.slow

NAME, EPOCHS = "ops", 24
SPEC = f"""\
name: {NAME}
dataset: digits
models: [small_cnn]
optimizers: [sgd, sam_gns]
train: {{epochs: {EPOCHS}, batch_size: 64, model_options: {{width: 4}}}}
search:
  method: optuna
  trials_per_arm: 2
  space:
    lr: {{low: 0.01, high: 0.5, log: true}}
max_concurrent: 1
"""
RULES = ("sgd", "sam_gns")


def sweep(*args):
    return [sys.executable, "-m", "sweep.cli", *args]


def cli(folder, *args, timeout=300):
    return subprocess.run(sweep(*args), cwd=folder, capture_output=True, text=True, timeout=timeout)


def wait_for(path, pattern, proc, timeout=240, poll=0.2):
    """The first line of the file matching `pattern`, written by the running `proc`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text(), re.MULTILINE)
        if found:
            return found
        assert proc.poll() is None, path.read_text()
        time.sleep(poll)
    raise AssertionError(f"no {pattern!r} in {path.read_text()}")


def studies(folder):
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder}/optuna.db")
    return {rule: optuna.load_study(study_name=Arm("small_cnn", rule).study_name(NAME), storage=storage) for rule in RULES}


def children(folder):
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    found = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    trials = [r for r in found if "ray.trial_id" in r.data.tags]  # not the node runs, which also sit under the parent
    return client, trials, [r for r in found if r.data.tags.get("sweep.role") == "parent"]


@contextlib.contextmanager
def frozen(driver: int):
    """The trial workers under the sweep's driver held still (SIGSTOP) until the block ends, so
    the sweep cannot finish while the test looks at it and asks it to stop; the command lines
    still answer."""
    workers = [
        p
        for p in psutil.Process(driver).children(recursive=True)
        if p.cmdline()[:1] and p.cmdline()[0].startswith("ray::ImplicitFunc")
    ]
    assert workers, "no trial worker under the driver"
    for worker in workers:
        worker.suspend()
    try:
        yield
    finally:
        for worker in workers:
            worker.resume()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """`sweep run` in the background; once its last trial has started, `sweep status` and `sweep
    list sweeps` from another terminal, then `sweep stop`: a stop during a sweep's last trial,
    which must leave it stopped, not finished (docs/platform.md, "Ray Tune")."""
    folder = tmp_path_factory.mktemp("ops")
    (folder / "spec.yaml").write_text(SPEC)
    log = folder / "run.log"
    with open(log, "w") as out:
        run = subprocess.Popen(sweep("run", "spec.yaml", "--status-every", "1"), cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(log, r"^\[3/4\] .*started", run, poll=0.02)
        with frozen(run.pid):
            assert "[4/4]" not in log.read_text(), "the last trial ended before its worker was held"
            # `sweep list` reads the state file that the driver's live thread writes at each tick
            # (`--status-every 1`), and answers in a fraction of a second: wait for a tick that
            # has seen the third trial end (its status line is printed after the file is written)
            wait_for(log, rf"^status {NAME}: running, .*; 1 running, 3/4 trials", run, poll=0.02)
            # at once, as three terminals would
            asked = {
                "status": ("status", NAME),
                "list": ("list", "sweeps"),
                "resume": ("resume", NAME),  # a second driver on the running sweep: refused
            }
            started = {
                key: subprocess.Popen(sweep(*args), cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for key, args in asked.items()
            }
            seen = {
                key: subprocess.CompletedProcess(proc.args, 0, *proc.communicate(timeout=120)) for key, proc in started.items()
            }
            for key, proc in started.items():
                seen[key].returncode = proc.returncode
            stop = subprocess.Popen(sweep("stop", NAME), cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert stop.stdout.readline().startswith(f"asked sweep {NAME} "), stop.stderr.read()
            time.sleep(3 * POLL_S)  # the driver has seen the request before the trial can go on
        seen["stop"] = subprocess.CompletedProcess(stop.args, 0, *stop.communicate(timeout=120))
        seen["stop"].returncode = stop.returncode
        seen["exit"] = run.wait(timeout=120)
    finally:
        run.kill()
    seen.update(folder=folder, output=log.read_text(), after=cli(folder, "status", NAME))
    return seen


@pytest.fixture(scope="module")
def resumed(stopped):
    folder = stopped["folder"]
    result = cli(folder, "resume", NAME, "--status-every", "0")
    return {"folder": folder, "resume": result, "status": cli(folder, "status", NAME), "list": cli(folder, "list", "sweeps")}


@pytest.fixture(scope="module")
def extended(resumed):
    folder = resumed["folder"]
    before = {rule: [(t.number, t.user_attrs["ray_trial_id"]) for t in study.trials] for rule, study in studies(folder).items()}
    started = time.time()
    result = cli(folder, "resume", NAME, "--set", "search.trials_per_arm=4", "--status-every", "0")
    return {"folder": folder, "before": before, "started": started, "resume": result}


def test_the_run_prints_how_to_browse_and_status_lines_with_every_field(stopped):
    output = stopped["output"]
    assert f"browse: sweep ui {NAME}; status: sweep status {NAME}; stop: sweep stop {NAME}" in output
    head = r"status ops: running, \d+:\d\d:\d\d elapsed, eta (\d+:\d\d:\d\d|\?); (\d) running, (\d)/4 trials, (\d+)/(\d+) epochs$"
    lines = re.findall(head, output, re.MULTILINE)
    assert len(lines) >= 2, output  # every second, while it ran
    assert all(int(running) <= 1 and int(epochs) <= int(planned) <= 4 * EPOCHS for _, running, _, epochs, planned in lines)
    arm = r"^status   small_cnn/sgd: \d running, \d/2 trials, \d+/\d+ epochs, (best val_acc \d+\.\d\d|no setting chosen yet)$"
    assert re.search(arm, output, re.MULTILINE), output
    assert re.search(r"eta \d+:\d\d:\d\d;", output)  # measured once epochs came


def test_status_and_list_see_the_sweep_while_it_runs(stopped):
    status, listing = stopped["status"], stopped["list"]
    assert status.returncode == 0, status.stderr
    head = status.stdout.splitlines()[0]
    found = re.match(r"status ops: running, .*; 1 running, 3/4 trials, (\d+)/(\d+) epochs$", head)
    assert found, status.stdout
    assert 3 * EPOCHS <= int(found[1]) < int(found[2]) == 4 * EPOCHS
    assert re.search(rf"^{NAME} +running +2 arms, 3/4 trials, started \d{{4}}-", listing.stdout, re.MULTILINE), listing.stdout
    assert f"mlflow sqlite:///{stopped['folder']}/mlflow.db" in listing.stdout


def test_a_second_driver_is_refused_while_the_sweep_runs(stopped):
    assert stopped["resume"].returncode == 2
    assert re.match(
        rf"name: sweep '{NAME}' is running \(driver pid \d+ on .+\); `sweep stop {NAME}` first$", stopped["resume"].stderr.strip()
    )


def test_stop_waits_for_a_clean_stop_that_resume_continues(stopped):
    assert stopped["stop"].returncode == 0, stopped["stop"].stdout + stopped["stop"].stderr
    assert stopped["stop"].stdout.splitlines()[-1] == f"sweep {NAME}: stopped; continue with: sweep resume {NAME}"
    assert stopped["exit"] == 143, stopped["output"]  # as SIGTERM's: documented in the README
    assert "Stopped by `sweep stop`; finished trials are kept. Continue with: sweep resume ops" in stopped["output"]
    assert stopped["after"].stdout.splitlines()[0].startswith("status ops: stopped, ")
    assert stopped["after"].stdout.splitlines()[-1] == f"continue with: sweep resume {NAME}"
    assert not (stopped["folder"] / "sweeps" / NAME / "stop_request.json").exists()  # nothing left to stop a resume


def test_resume_after_stop_logs_every_epoch_once(resumed):
    assert resumed["resume"].returncode == 0, resumed["resume"].stdout + resumed["resume"].stderr
    client, runs, (parent,) = children(resumed["folder"])
    assert parent.info.status == "FINISHED" and len(runs) == 4
    assert logged_epochs(client, runs, EPOCHS, "val_acc") == (4 * EPOCHS, 0, 0)  # (logged, lost, doubled)


def test_status_and_list_after_the_end(resumed):
    head = resumed["status"].stdout.splitlines()[0]
    assert re.match(rf"status ops: finished, .* elapsed; 4/4 trials, {4 * EPOCHS}/{4 * EPOCHS} epochs$", head), head
    assert re.search(rf"^{NAME} +finished +2 arms, 4/4 trials, ", resumed["list"].stdout, re.MULTILINE)


def test_a_field_other_than_the_budget_is_refused_on_resume(resumed):
    folder = resumed["folder"]
    saved = (folder / "sweeps" / NAME / "sweep_spec.yaml").read_text()
    result = cli(folder, "resume", NAME, "--set", "dataset=cifar10")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("dataset: cannot change when a sweep resumes")
    assert (folder / "sweeps" / NAME / "sweep_spec.yaml").read_text() == saved  # nothing written


def test_extending_a_finished_sweep_continues_its_studies(extended):
    folder = extended["folder"]
    assert extended["resume"].returncode == 0, extended["resume"].stdout + extended["resume"].stderr
    for rule, study in studies(folder).items():
        trials = [(t.number, t.user_attrs["ray_trial_id"]) for t in study.trials]
        assert len(trials) == 4 and trials[:2] == extended["before"][rule]  # the old two, then two new
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    client, runs, (parent,) = children(folder)
    assert parent.info.status == "FINISHED" and len(runs) == 8
    assert logged_epochs(client, runs, EPOCHS, "val_acc") == (8 * EPOCHS, 0, 0)
    old = {trial for rule in RULES for _, trial in extended["before"][rule]}
    for path in (folder / "sweeps" / NAME).glob("*/result.json"):  # no old trial ran again
        if path.parent.name.rsplit("-", 1)[-1] in old:
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            assert all(row["trial_started_at"] < extended["started"] for row in rows)


def test_the_extended_sweeps_report_counts_the_new_trials(extended):
    report = json.loads((extended["folder"] / "reports" / NAME / "report.json").read_text())
    text = (extended["folder"] / "reports" / NAME / "report.md").read_text()
    assert [cell["search_trials"] for cell in report["cells"]] == [4, 4], report["cells"]
    assert "small_cnn/sgd: 4 search trials" in text and "small_cnn/sam_gns: 4 search trials" in text
    saved = (extended["folder"] / "sweeps" / NAME / "sweep_spec.yaml").read_text()
    assert "trials_per_arm: 4" in saved
    status = cli(extended["folder"], "status", NAME).stdout.splitlines()[0]
    assert re.match(rf"status ops: finished, .*; 8/8 trials, {8 * EPOCHS}/{8 * EPOCHS} epochs$", status), status
