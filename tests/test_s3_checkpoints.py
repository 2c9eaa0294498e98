"""Checkpoints in S3-compatible storage through pyarrow (the cluster profile), against a
real S3 server on loopback (moto's standalone server): a sweep whose trial fails after epoch 2
resumes from the checkpoint it wrote to the bucket; unreachable endpoints and missing buckets
are named before anything starts."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient
from pyarrow import fs

from helpers.servers import free_port
from sweep.cluster.stores import check_checkpoints
from sweep.spec import validate_spec
from sweep.tuning.driver import run_sweep
from sweep.tuning.trainable import FAULT_ENV

pytestmark = pytest.mark.slow
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sweep-test", "AWS_SECRET_ACCESS_KEY": "sweep-test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "server.log"
    server = subprocess.Popen(
        [Path(sys.executable).parent / "moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=open(log, "w"),  # noqa: SIM115 (the server's log)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    bucket_maker = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True)
    for _ in range(60):
        try:
            bucket_maker.create_dir("lab-sweeps")
            break
        except OSError:
            assert server.poll() is None, log.read_text()
            time.sleep(0.5)
    yield {"endpoint": endpoint, "fs": fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http")}
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def fault_file(tmp_path_factory, s3):
    plan = tmp_path_factory.mktemp("fault") / "plan"
    os.environ[FAULT_ENV] = str(plan)  # workers inherit it (and the S3 credentials) at start
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield plan
    ray.shutdown()
    del os.environ[FAULT_ENV]


def s3_spec(tmp_path, endpoint, name="in-s3", storage="s3://lab-sweeps/sweeps"):
    return validate_spec(
        {
            "name": name,
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sgd"],
            "train": {"epochs": 3, "batch_size": 64, "model_options": {"width": 4}},
            "search": {"method": "random", "trials_per_arm": 1, "space": {"lr": 0.05}},
            "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db", "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
            "checkpoints": {"path": str(tmp_path / "state"), "storage": storage, "endpoint": endpoint},
        }
    ).resolved()


def test_a_trial_resumes_from_its_checkpoint_in_the_bucket(s3, fault_file, tmp_path):
    spec = s3_spec(tmp_path, s3["endpoint"])
    assert check_checkpoints(spec.checkpoints) is None
    fault_file.write_text("2")
    outcome = run_sweep(spec)
    assert not fault_file.exists()  # the fault fired after epoch 2
    assert not outcome.interrupted and outcome.failed == 0

    stored = s3["fs"].get_file_info(fs.FileSelector("lab-sweeps/sweeps/in-s3", recursive=True))
    names = [Path(info.path).name for info in stored]
    assert "state.pt" in names  # the trial's checkpoint is in the bucket
    assert not any((tmp_path / "state").rglob("state.pt"))  # and not on this machine

    client = MlflowClient(spec.tracking.mlflow_uri)
    (child,) = [
        r for r in client.search_runs([client.get_experiment_by_name("in-s3").experiment_id]) if "ray.trial_id" in r.data.tags
    ]
    assert child.data.tags["sweep.failures"] == "1"
    assert sorted(m.step for m in client.get_metric_history(child.info.run_id, "val_acc")) == [1, 2, 3]
    # the run names its latest checkpoint by its URI in the bucket
    checkpoint = child.data.tags["sweep.checkpoint"]
    assert checkpoint.startswith("s3://lab-sweeps/sweeps/in-s3/")
    assert s3["fs"].get_file_info(checkpoint.removeprefix("s3://") + "/state.pt").type == fs.FileType.File


def test_an_unreachable_endpoint_or_a_missing_bucket_is_named(s3, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    problem = check_checkpoints(s3_spec(tmp_path, closed).checkpoints)
    assert problem.startswith("checkpoints.storage: cannot reach s3://lab-sweeps/sweeps")
    problem = check_checkpoints(s3_spec(tmp_path, s3["endpoint"], storage="s3://no-such-bucket/x").checkpoints)
    assert problem == "checkpoints.storage: bucket no-such-bucket does not exist"
