"""After one tiny real sweep (local Ray, SQLite MLflow and Optuna): Optuna trials and MLflow runs
name each other, runs name their checkpoints, the parent holds each arm's best accuracies as
metrics, each Ray node has a run of MLflow's system metrics, the report adds Optuna's plots and
`sweep ui --optuna` serves the studies (docs/architecture.md, Names a user sees)."""

import json
import logging
import logging.handlers
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest
import ray
import torch
from mlflow.tracking import MlflowClient

from helpers.fake_sweep import ray_sweep_spec
from helpers.servers import free_port, wait_for_http
from sweep.cli.main import main
from sweep.report.write import write_report
from sweep.spec import Arm
from sweep.tuning.driver import run_sweep

pytestmark = pytest.mark.slow
NAME = "linked"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("links")
    tracking = {
        "mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db",
        "optuna_storage": f"sqlite:///{tmp_path}/optuna.db",
        "system_metrics_every_s": 1,  # a few samples even from a sweep this short
    }
    spec = ray_sweep_spec(
        tmp_path,
        NAME,
        train={"epochs": 2, "batch_size": 64, "model_options": {"width": 4}},
        search={
            "method": "optuna",
            "trials_per_arm": 2,
            "space": {"lr": {"low": 0.01, "high": 0.5, "log": True}, "rho": {"low": 0.01, "high": 0.2, "log": True}},
        },
        tracking=tracking,
    )
    # the local node's monitor is a thread of the driver: what MLflow's monitor says, kept
    said = logging.handlers.BufferingHandler(capacity=100_000)
    logging.getLogger("mlflow").addHandler(said)
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False)
    try:
        outcome = run_sweep(spec)
    finally:
        ray.shutdown()
        logging.getLogger("mlflow").removeHandler(said)
    log_text = "\n".join(record.getMessage() for record in said.buffer)
    assert not outcome.interrupted and outcome.failed == 0
    client = MlflowClient(spec.tracking.mlflow_uri)
    found = client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
    return {"spec": spec, "outcome": outcome, "client": client, "runs": found, "monitor_logs": log_text, "tmp": tmp_path}


def by_role(swept, role):
    return [run for run in swept["runs"] if run.data.tags.get("sweep.role") == role]


def children(swept):
    return [run for run in swept["runs"] if "ray.trial_id" in run.data.tags]


def studies(spec):
    storage = optuna.storages.RDBStorage(spec.tracking.optuna_storage)
    return {arm.key: optuna.load_study(study_name=arm.study_name(NAME), storage=storage) for arm in spec.arms()}


def test_study_trials_and_runs_name_each_other(swept):
    client, linked = swept["client"], 0
    for arm, study in studies(swept["spec"]).items():
        for trial in study.trials:
            run = client.get_run(trial.user_attrs["mlflow_run_id"])  # Optuna -> MLflow
            tags = run.data.tags
            assert tags["sweep.arm"] == arm and tags["ray.trial_id"] == trial.user_attrs["ray_trial_id"]
            # MLflow -> Optuna: the study by name, the trial by number
            assert tags["sweep.study"] == study.study_name == Arm.parse(arm).study_name(NAME)
            assert int(tags["sweep.study_trial"]) == trial.number
            linked += 1
    searched = [run for run in children(swept) if run.data.tags["sweep.phase"] == "search"]
    assert linked == len(searched) == 4


def test_finished_runs_name_their_latest_checkpoint(swept):
    for run in children(swept):
        assert run.data.tags["sweep.outcome"] == "finished"
        checkpoint = Path(run.data.tags["sweep.checkpoint"])
        assert checkpoint.is_dir() and any(checkpoint.iterdir())
        assert checkpoint.parent.name.endswith(run.data.tags["ray.trial_id"])  # the trial's own folder


def test_the_parent_holds_each_arm_s_best_accuracies_as_metrics(swept):
    (parent,) = by_role(swept, "parent")
    best = swept["outcome"].best
    assert set(best) == {"small_cnn/sgd", "small_cnn/sam_gns"}
    for arm, chosen in best.items():
        assert parent.data.metrics[f"best_val_acc/{arm}"] == pytest.approx(chosen["val_acc"])
        assert parent.data.metrics[f"best_test_acc/{arm}"] == pytest.approx(chosen["test_acc"])


def test_each_node_has_a_run_of_system_metrics_under_the_parent(swept):
    (parent,) = by_role(swept, "parent")
    (node,) = by_role(swept, "node")  # one local Ray node
    assert node.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert node.data.tags["node_ip"] and node.data.tags["ray.node_id"] and node.info.status == "FINISHED"
    assert node.data.tags["sweep.node"] == f"{node.data.tags['node']} {node.data.tags['node_ip']}"
    assert (node.data.tags["card"] != "none") == torch.cuda.is_available()  # Ray's own name for a card
    history = swept["client"].get_metric_history(node.info.run_id, "system/cpu_utilization_percentage")
    assert len(history) >= 2 and all(0 <= m.value <= 100 * 64 for m in history)
    assert node.data.metrics["system/system_memory_usage_megabytes"] > 0
    assert "database is locked" not in swept["monitor_logs"]  # the monitor's writes beside the journal's


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA card")
def test_a_node_with_a_card_logs_its_use_and_trials_their_gpu_peak(swept):
    (node,) = by_role(swept, "node")
    assert "system/gpu_0_utilization_percentage" in node.data.metrics
    assert node.data.metrics["system/gpu_0_memory_usage_megabytes"] > 0
    for run in children(swept):
        history = swept["client"].get_metric_history(run.info.run_id, "peak_gpu_memory_mb")
        assert sorted(m.step for m in history) == [1, 2] and all(m.value > 0 for m in history)


def test_the_report_adds_optuna_s_plots_per_arm(swept):
    spec, out = swept["spec"], swept["tmp"] / "report"
    report = write_report(spec.tracking.mlflow_uri, NAME, out, spec)
    expected = {
        "optuna_history_small_cnn_sgd.png",
        "optuna_history_small_cnn_sam_gns.png",
        "optuna_importance_small_cnn_sam_gns.png",
    }
    # sgd searched lr alone (it reads no rho): no importances to rank
    assert {path.name for path in out.glob("optuna_*.png")} == expected
    assert any("small_cnn/sgd: no parameter importances" in note for note in report.notes)
    attached = {a.path for a in swept["client"].list_artifacts(report.parent_id, "report")}
    assert {f"report/{name}" for name in expected} <= attached


def test_sweep_ui_optuna_serves_the_sweep_s_studies_on_loopback(swept, tmp_path):
    spec, port, log = swept["spec"], free_port(), tmp_path / "dashboard.log"
    command = [sys.executable, "-m", "sweep.cli", "ui", NAME, "--optuna", "--storage", str(spec.checkpoints.path)]
    with open(log, "w") as out:
        server = subprocess.Popen([*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/studies", server, log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as answer:
            names = {study["study_name"] for study in json.load(answer)["study_summaries"]}
        assert names == {f"{NAME}/small_cnn/sgd", f"{NAME}/small_cnn/sam_gns"}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)  # Ctrl-C stops it (under CI's load, in seconds)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail(f"Ctrl-C did not stop `sweep ui --optuna` in 60 s; its output:\n{log.read_text()}")
    assert "http://127.0.0.1:" in log.read_text()


# A WSGI app that is sent Ctrl-C while it answers (as a user's Ctrl-C can land); one request
# from a thread, then the server in the main thread, where Python runs signal handlers.
STOPPED_MID_REQUEST = """
import json, os, signal, sys, threading, time, urllib.request
from sweep.cli.ui import serve_until_stopped

def app(environ, start_response):
    os.kill(os.getpid(), signal.{signal})
    time.sleep(0.2)  # the handler runs while the answer is being made
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"answered"]

def client():
    for _ in range(100):
        try:
            with urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=10) as answer:
                print(answer.status, answer.read().decode(), flush=True)
            return
        except OSError:
            time.sleep(0.05)

asking = threading.Thread(target=client, daemon=True)
asking.start()
serve_until_stopped(app, {port})
asking.join(10)
print("stopped", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_stop_signal_landing_mid_request_answers_it_and_stops_the_dashboard(signum):
    # optuna-dashboard's own server logged a Ctrl-C landing in a request as that request's
    # error and served on, for ever (seen under load)
    script = STOPPED_MID_REQUEST.format(signal=signum.name, port=free_port())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines() == ["200 answered", "stopped"], done.stderr[-2000:]


def test_no_studies_or_a_port_in_use_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default Optuna storage, ./optuna.db
    assert main(["ui", "--optuna"]) == 2
    default = f"sqlite:///{tmp_path}/optuna.db"
    assert capsys.readouterr().err == f"optuna_storage: no Optuna studies at {default} (no sweep has run with it)\n"
    assert not (tmp_path / "optuna.db").exists()  # not created by looking
    optuna.create_study(storage=default)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--optuna", "--port", str(port)]) == 2
    assert capsys.readouterr().err == f"port: cannot listen on 127.0.0.1:{port} (Address already in use)\n"
