"""The cluster profile for real: an `mlflow server` on PostgreSQL with basic-auth, allowed hosts
and served artifacts, Optuna studies in PostgreSQL, a sweep run through both by `sweep run`
the server's refusals, and the start-up checks that name a
store that cannot be reached."""

import os
import secrets
import signal
from pathlib import Path

import optuna
import psycopg
import pytest
import requests
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from helpers.servers import MlflowServer, free_port
from sweep.cli import main
from sweep.spec import Arm

pytestmark = pytest.mark.slow

PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="module")
def databases():
    """Two new databases, MLflow's and Optuna's (both keep alembic_version: never one for both)."""
    names = {role: f"sweep_{role}_{secrets.token_hex(4)}" for role in ("mlflow", "optuna")}
    admin = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test", autocommit=True)
    with admin.cursor() as cursor:
        for name in names.values():
            cursor.execute(f"CREATE DATABASE {name}")
    yield names
    with admin.cursor() as cursor:
        for name in names.values():
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture(scope="module")
def server(databases, tmp_path_factory):
    """`mlflow server` as the cluster profile runs it (docker/compose.yaml): basic-auth with the
    admin password from the environment, allowed hosts, served artifacts, PostgreSQL backend."""
    root = tmp_path_factory.mktemp("mlflow-server")
    password = secrets.token_hex(16)
    auth_ini = root / "basic_auth.ini"
    auth_ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root}/basic_auth.db\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {
        **os.environ,
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),  # CSRF protection of the auth app
    }
    server = MlflowServer(
        root,
        backend=f"{PG}/{databases['mlflow']}",
        args=("--app-name", "basic-auth", "--serve-artifacts", "--artifacts-destination", str(root / "artifacts")),
        env=env,
    )
    server.args += ("--allowed-hosts", "127.0.0.1:{port},localhost:{port}")
    server.start()
    url, port = server.uri, server.port
    yield {"url": url, "port": port, "password": password}
    server.stop(signal.SIGTERM)


SEARCH = "{url}/api/2.0/mlflow/experiments/search"


def test_the_server_refuses_unauthenticated_requests_and_foreign_hosts(server):
    url = SEARCH.format(url=server["url"])
    assert requests.get(url, params={"max_results": 1}, timeout=10).status_code == 401
    wrong = requests.get(url, params={"max_results": 1}, auth=("admin", "not-the-password"), timeout=10)
    assert wrong.status_code == 401
    admin = ("admin", server["password"])
    foreign = requests.get(url, params={"max_results": 1}, auth=admin, headers={"Host": "evil.example:80"}, timeout=10)
    assert foreign.status_code == 403
    assert requests.get(url, params={"max_results": 1}, auth=admin, timeout=10).status_code == 200


def write_spec(tmp_path, name, mlflow_uri, optuna_storage):
    spec = {
        "name": name,
        "dataset": "digits",
        "models": ["small_cnn"],
        "optimizers": ["sgd", "sam_gns"],
        "train": {"epochs": 2, "batch_size": 64, "model_options": {"width": 4}},
        "search": {
            "method": "optuna",
            "trials_per_arm": 2,
            "space": {"lr": {"low": 0.01, "high": 0.3, "log": True}, "rho": 0.05},
        },
        "resources": {"cpus": 1},
        "tracking": {"mlflow_uri": mlflow_uri, "optuna_storage": optuna_storage, "system_metrics_every_s": 1},
        "checkpoints": {"path": str(tmp_path / "shared" / "sweeps")},
        "max_concurrent": 2,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_sweep_runs_through_the_mlflow_server_and_optuna_on_postgresql(server, databases, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server["password"])
    optuna_url = f"{PG}/{databases['optuna']}"
    spec_file = write_spec(tmp_path, "lab", server["url"], optuna_url)

    assert main(["run", str(spec_file)]) == 0
    printed = capsys.readouterr()

    client = MlflowClient(server["url"])
    experiment = client.get_experiment_by_name("lab")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [run for run in runs if run.data.tags.get("sweep.role") == "parent"]
    children = [
        run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id and "ray.trial_id" in run.data.tags
    ]
    assert len(children) == 4 and {run.info.status for run in [parent, *children]} == {"FINISHED"}
    for run in children:
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_acc")) == [1, 2]
    # the node's system metrics went through the basic-auth server too, from the node's own monitor
    (node,) = [run for run in runs if run.data.tags.get("sweep.role") == "node"]
    assert node.info.status == "FINISHED" and "system/cpu_utilization_percentage" in node.data.metrics
    # artifacts went through the server (served artifacts), not to a path on this machine
    spec_copy = Path(client.download_artifacts(parent.info.run_id, "sweep_spec.yaml", str(tmp_path)))
    assert yaml.safe_load(spec_copy.read_text())["tracking"]["mlflow_uri"] == server["url"]
    assert any(a.path == "report" for a in client.list_artifacts(parent.info.run_id))

    # the studies are in PostgreSQL, one per arm, with every trial told
    for rule in ("sgd", "sam_gns"):
        study = optuna.load_study(study_name=Arm("small_cnn", rule).study_name("lab"), storage=optuna_url)
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2

    # the password is nowhere a user or the report can read it
    password = server["password"]
    assert password not in printed.out + printed.err
    for run in [parent, *children]:
        assert password not in str(run.data.params) + str(run.data.tags)
    assert all(password not in path.read_text(errors="replace") for path in (tmp_path / "reports").rglob("*") if path.is_file())
    assert password not in spec_copy.read_text()


def test_stores_that_cannot_be_reached_are_named_and_nothing_starts(server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    closed = f"http://127.0.0.1:{free_port()}"
    cases = [
        (closed, f"{PG}/test", "tracking.mlflow_uri: cannot reach the MLflow server at " + closed),
        (server["url"], f"{PG}/test", "tracking.mlflow_uri: " + server["url"] + " refused the credentials"),
        ("sqlite:///mlflow.db", f"{PG}/no_such_database_here", "tracking.optuna_storage: cannot connect to " + PG),
        ("sqlite:///mlflow.db", "postgresql://postgres@127.0.0.1:1/test", "tracking.optuna_storage: cannot connect"),
    ]
    for number, (mlflow_uri, optuna_storage, expected) in enumerate(cases):
        spec_file = write_spec(tmp_path, f"unreachable{number}", mlflow_uri, optuna_storage)
        assert main(["run", str(spec_file)]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(expected), line
    assert not (tmp_path / "shared").exists()  # no checkpoint folder, no Ray, no run
    assert not (tmp_path / "mlflow.db").exists()
