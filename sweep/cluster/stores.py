"""Where a sweep keeps things, checked before anything starts (the cluster profile).

The embedded default keeps MLflow and Optuna in SQLite files and checkpoints in a local folder;
the cluster profile uses an MLflow server (on PostgreSQL, artifacts served), Optuna in
PostgreSQL, and checkpoints on a folder every node mounts or in an S3-compatible bucket
(through pyarrow). `sweep run` checks each one and names the one it cannot reach, before Ray,
MLflow or Optuna are touched.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import ray
import requests
import sqlalchemy
from pyarrow import fs
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..errors import UserError
from ..redact import redact
from ..spec import Checkpoints, SweepSpec
from .probe import Probe

TIMEOUT_S = 5  # per check: a store that answers slower than this is not usable for a sweep


def check_stores(spec: SweepSpec) -> None:
    """Raise UserError with one line per store that is not reachable."""
    problems = [
        problem
        for problem in (
            check_mlflow(spec.tracking.mlflow_uri),
            check_database("tracking.optuna_storage", spec.tracking.optuna_storage),
            check_checkpoints(spec.checkpoints),
        )
        if problem
    ]
    if problems:
        raise UserError(problems)


def _sqlite_folder(field: str, uri: str) -> str | None:
    folder = Path(uri.removeprefix("sqlite:///")).parent
    if not folder.is_dir():
        return f"{field}: folder {folder} of {uri} does not exist"
    return None


def check_mlflow(uri: str) -> str | None:
    """A SQLite file's folder exists; a server answers an authenticated request."""
    field = "tracking.mlflow_uri"
    if uri.startswith("sqlite:///"):
        return _sqlite_folder(field, uri)
    if not uri.startswith(("http://", "https://")):
        return f"{field}: {redact(uri)} is neither sqlite:///FILE nor an http(s) server URL"
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    try:
        answer = requests.get(
            uri.rstrip("/") + "/api/2.0/mlflow/experiments/search",
            params={"max_results": 1},
            auth=(user, password) if user else None,
            timeout=TIMEOUT_S,
        )
    except requests.RequestException as err:
        return f"{field}: cannot reach the MLflow server at {redact(uri)} ({type(err).__name__})"
    if answer.status_code == 401:
        return f"{field}: {redact(uri)} refused the credentials; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    if answer.status_code == 403:
        return f"{field}: {redact(uri)} refused this request (403): is this host in the server's --allowed-hosts?"
    if not answer.ok:
        return f"{field}: {redact(uri)} answered {answer.status_code}; is it an MLflow server?"
    return None


def check_database(field: str, url: str) -> str | None:
    """A SQLite file's folder exists; a database server accepts a connection."""
    if url.startswith("sqlite:///"):
        return _sqlite_folder(field, url)
    try:
        engine = sqlalchemy.create_engine(url, connect_args=_connect_timeout(url))
    except Exception as err:  # noqa: BLE001 (unknown dialect, missing driver, malformed URL: all bad input)
        return f"{field}: {redact(url)} is not a usable database URL ({str(err).splitlines()[0]})"
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        return f"{field}: cannot connect to {redact(url)} ({reason})"
    finally:
        engine.dispose()
    return None


def _connect_timeout(url: str) -> dict:
    return {"connect_timeout": TIMEOUT_S} if url.startswith(("postgresql", "mysql")) else {}


def s3_filesystem(checkpoints: Checkpoints):
    """pyarrow's S3 filesystem for `checkpoints.storage` (credentials from the AWS_* variables)."""
    if checkpoints.endpoint is None:
        return fs.S3FileSystem(connect_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)
    parts = urlsplit(checkpoints.endpoint)
    return fs.S3FileSystem(
        endpoint_override=parts.netloc,
        scheme=parts.scheme,
        connect_timeout=TIMEOUT_S,
        request_timeout=TIMEOUT_S,
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def check_checkpoints(checkpoints: Checkpoints) -> str | None:
    """The folder can be created (its nearest existing parent is a writable folder); the bucket
    exists and answers."""
    folder = checkpoints.path
    existing = next(parent for parent in [folder, *folder.parents] if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        return f"checkpoints.path: {folder} cannot be written ({existing} is not a writable folder)"
    if checkpoints.storage is None:
        return None
    bucket = checkpoints.storage.removeprefix("s3://").split("/")[0]
    try:
        info = s3_filesystem(checkpoints).get_file_info(bucket)
    except OSError as err:
        return f"checkpoints.storage: cannot reach {checkpoints.storage} ({str(err).splitlines()[0]})"
    if info.type == fs.FileType.NotFound:
        return f"checkpoints.storage: bucket {bucket} does not exist"
    return None


def check_shared_folder(checkpoints: Checkpoints) -> None:
    """On a cluster of several nodes, every node must see the checkpoint folder (a trial resumed
    on another node reads its checkpoint there; docs/platform.md): a marker file written here
    is looked for from each node. Needs a connected Ray."""
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if checkpoints.storage is not None or len(nodes) < 2:
        return
    checkpoints.path.mkdir(parents=True, exist_ok=True)
    marker = checkpoints.path / f".shared-check-{uuid.uuid4().hex}"
    marker.touch()
    # one short-lived actor per node, killed after: idle task workers would linger in each node's
    # worker pool and hold back the trials' own workers
    probes = [
        ray.remote(num_cpus=0)(Probe)
        .options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
        .remote()
        for node in nodes
    ]
    try:
        seen = ray.get([probe.sees.remote(str(marker)) for probe in probes])
    finally:
        marker.unlink()
        for probe in probes:
            ray.kill(probe)
    blind = [node["NodeManagerAddress"] for node, found in zip(nodes, seen) if not found]
    if blind:
        raise UserError(
            [
                f"checkpoints.path: {checkpoints.path} is not shared: node(s) {', '.join(blind)} do not see it; "
                "mount it at the same path on every node, or set checkpoints.storage to an s3:// bucket"
            ]
        )
