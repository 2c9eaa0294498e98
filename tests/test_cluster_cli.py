"""`sweep cluster head/join/status` for real: two Ray nodes started by the commands on this
machine (cards declared by flag: there is no GPU here), token authentication refusing a client
without the token, and a sweep launched on the cluster by `sweep run
--address`."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from helpers.listening import listening_addresses
from helpers.ray_env import without_ray_settings
from helpers.servers import free_port

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def node_ip() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("192.0.2.1", 9))  # no packet is sent: this picks the outgoing interface
        return sock.getsockname()[0]


def clean_env(home: Path) -> dict[str, str]:
    # without tests/conftest.py's Ray settings: the head's own decide
    env = {
        key: value for key, value in without_ray_settings(os.environ).items() if not key.startswith(("RAY_AUTH", "RAY_ADDRESS"))
    }
    return {**env, "HOME": str(home)}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A head with a TITAN RTX and a worker with an RTX 2070, each in the foreground (--block) in
    its own process group, stopped at the end without touching other Ray instances."""
    home = tmp_path_factory.mktemp("home")
    env = clean_env(home)
    port, dashboard = free_port(), free_port()
    address = f"{node_ip()}:{port}"
    logs = tmp_path_factory.mktemp("logs")
    head = subprocess.Popen(
        [
            BIN / "sweep",
            "cluster",
            "head",
            "--port",
            str(port),
            "--dashboard-port",
            str(dashboard),
            "--num-cpus",
            "2",
            "--card",
            "TITAN RTX:24",
            "--block",
        ],
        env=env,
        stdout=open(logs / "head.log", "w"),  # noqa: SIM115 (the node's log)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    processes = [head]
    try:
        _wait_for(
            lambda: (home / ".ray" / "auth_token").exists() and _status(env, address).returncode == 0, head, logs / "head.log"
        )
        worker = subprocess.Popen(
            [BIN / "sweep", "cluster", "join", address, "--num-cpus", "2", "--card", "RTX 2070:8", "--block"],
            env=env,
            stdout=open(logs / "join.log", "w"),  # noqa: SIM115 (the node's log)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(worker)
        _wait_for(lambda: "RTX-2070" in _status(env, address).stdout, worker, logs / "join.log")
        yield {"home": home, "env": env, "address": address, "dashboard": dashboard, "groups": [p.pid for p in processes]}
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=90)


def _status(env, address):
    return subprocess.run(
        [BIN / "sweep", "cluster", "status", "--address", address], env=env, capture_output=True, text=True, timeout=120
    )


def _wait_for(ready, process, log, limit=120):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        if ready():
            return
        time.sleep(1)
    pytest.fail("cluster node did not come up: " + log.read_text()[-3000:])


def test_the_head_creates_a_token_only_its_owner_can_read(lab):
    token = lab["home"] / ".ray" / "auth_token"
    assert token.stat().st_mode & 0o777 == 0o600
    assert len(token.read_text().strip()) == 64


def test_the_dashboard_listens_on_loopback_only(lab):
    deadline = time.monotonic() + 60
    # the lab's own processes: another test's Ray may listen on the same port number elsewhere
    while not listening_addresses(lab["dashboard"], lab["groups"]) and time.monotonic() < deadline:
        time.sleep(1)  # the dashboard starts after the node
    assert listening_addresses(lab["dashboard"], lab["groups"]) == {"127.0.0.1"}


def test_status_lists_both_nodes_with_their_cards(lab):
    lines = _status(lab["env"], lab["address"]).stdout.splitlines()
    assert lines[0].split() == ["node", "address", "card", "memory", "GPUs", "in", "use"]
    cards = sorted((line.split()[2], line.split()[3]) for line in lines[1:])
    assert cards == [("RTX-2070", "8"), ("TITAN-RTX", "24")]


CONNECT = "import ray; ray.init(address='{address}'); print('connected', ray.cluster_resources()['GPU'])"


def test_a_client_without_the_cluster_token_is_refused(lab, tmp_path):
    connect = [sys.executable, "-c", CONNECT.format(address=lab["address"])]
    no_token = clean_env(tmp_path)  # a HOME without ~/.ray/auth_token
    wrong_token = no_token | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}
    right_token = lab["env"] | {"RAY_AUTH_MODE": "token"}
    # side by side: a refused client waits out Ray's connection timeout
    clients = {
        name: subprocess.Popen(connect, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, env in (("no token", no_token), ("wrong token", wrong_token), ("the token", right_token))
    }
    outputs = {name: client.communicate(timeout=180) for name, client in clients.items()}
    for refused in ("no token", "wrong token"):
        assert clients[refused].returncode != 0 and "connected" not in outputs[refused][0], refused
    assert "connected 2.0" in outputs["the token"][0], outputs["the token"][1][-2000:]


# A driver on the cluster; then the nodes' raylets (in the nodes' process groups) and the idle
# workers they started (each worker in a process group of its own, so found as a raylet's child)
IDLE_PROBE = """
import os, time, psutil, ray
ray.init(address="{address}")
time.sleep(4)  # Ray prestarts its workers as a driver registers
def in_groups(process):
    try:
        return os.getpgid(process.pid) in {groups}
    except ProcessLookupError:
        return False
raylets = [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [""])[0].endswith("/raylet") and in_groups(p)]
idle = [c for r in raylets for c in r.children() if c.cmdline()[:1] == ["ray::IDLE"]]
print("raylets", len(raylets), "idle", len(idle))
"""


def test_a_driver_on_the_cluster_finds_no_idle_worker_prestarted_for_it(lab):
    probe = IDLE_PROBE.format(address=lab["address"], groups=set(lab["groups"]))
    done = subprocess.run(
        [sys.executable, "-c", probe], env=lab["env"] | {"RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # both nodes seen (so an idle worker would be), none idle: no Tune trial could use one
    assert done.stdout.split()[-4:] == ["raylets", "2", "idle", "0"], done.stdout


def test_sweep_run_on_the_cluster_places_the_model_on_the_card_it_asks_for(lab, tmp_path):
    spec = {
        "name": "on-the-lab",
        "dataset": "digits",
        "models": ["small_cnn"],
        "optimizers": ["sgd"],
        "train": {"epochs": 1, "batch_size": 64, "model_options": {"width": 4}},
        "search": {"method": "random", "trials_per_arm": 2, "space": {"lr": {"low": 0.01, "high": 0.1}}},
        "resources": {"cpus": 1, "gpu": 0.5, "cards": ["TITAN RTX"]},
        "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db", "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
        "checkpoints": {"path": str(tmp_path / "sweeps")},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    # the token comes from ~/.ray/auth_token, as on a workstation that copied the head's file
    done = subprocess.run(
        [BIN / "sweep", "run", "spec.yaml", "--address", lab["address"]],
        cwd=tmp_path,
        env=lab["env"],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "placement small_cnn: 1 CPU, 0.5 GPU on TITAN-RTX" in done.stdout
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    found = client.search_runs([client.get_experiment_by_name("on-the-lab").experiment_id], filter_string="tags.card != ''")
    runs = [run for run in found if "ray.trial_id" in run.data.tags]
    assert len(runs) == 2 and {run.data.tags["card"] for run in runs} == {"TITAN-RTX"}
    # each node's system metrics, in a run tagged with the card the node declared
    nodes = [run for run in found if run.data.tags.get("sweep.role") == "node"]
    assert sorted(run.data.tags["card"] for run in nodes) == ["RTX-2070", "TITAN-RTX"]
