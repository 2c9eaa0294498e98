"""Where a sweep keeps things when the spec or a flag does not say: one place for each default.

The embedded profile (a laptop, CI) writes next to the command: SQLite files for MLflow and
Optuna, a `sweeps/` folder for checkpoints, `reports/` for reports. The cluster profile sets the
environment variables below once per shell (docker/compose.yaml does), so every command and
every spec on that machine finds the shared stores without repeating them.
"""

from __future__ import annotations

import os
from pathlib import Path

MLFLOW_URI_ENV, MLFLOW_URI = "MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"
OPTUNA_STORAGE_ENV, OPTUNA_STORAGE = "SWEEP_OPTUNA_STORAGE", "sqlite:///optuna.db"
CHECKPOINTS_ENV, CHECKPOINTS = "SWEEP_CHECKPOINTS", "sweeps"
CHECKPOINT_STORAGE_ENV = "SWEEP_CHECKPOINT_STORAGE"  # s3://BUCKET/PREFIX; unset: the folder above
S3_ENDPOINT_ENV = "SWEEP_S3_ENDPOINT"  # an S3-compatible server; unset: AWS
REPORTS = "reports"  # reports/NAME/ holds a sweep's report files
SPEC_FILE = "sweep_spec.yaml"  # in a sweep's folder (what `sweep resume` reads) and on its parent run
STATE_FILE = "sweep_state.json"  # in a sweep's folder: its driver (pid, host), state and last status
STOP_FILE = "stop_request.json"  # in a sweep's folder: `sweep stop` asks the driver to stop
STATUS_EVERY_S = 30.0  # seconds between a driver's status lines (`--status-every`)
DATA = "data"  # the data sets' folder (TrainConfig.data_dir)
RAY_PORT = 6379  # Ray's; Redis often holds it, so it is a flag (sweep cluster head --port)
# Ray settings of every Ray the service starts (the local one, a cluster's head): no workers
# prestarted for a driver, since no Tune trial can use them (docs/platform.md, "Ray Tune")
RAY_SYSTEM_CONFIG = {"prestart_worker_first_driver": False}
# Ray Tune's settings for a sweep, which Tune reads from the environment: set while a sweep runs
# only, a value the user set winning (sweep/tuning/driver.py, tune_settings)
TUNE_SETTINGS = {
    # one checkpoint per epoch of short trials makes Tune warn about snapshot frequency
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # MLflow holds the curves: no CSV and TensorBoard copy of every result written by the
    # driver; its result.json stays (JsonLoggerCallback, sweep/tuning/driver.py)
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Trials without a validation split (val_fraction 0, the paper's protocol) report no val_acc,
    # which Tune's check of the objective would take for a broken trainable; the spec allows it
    # only where nothing is chosen or stopped on it.
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
}
DASHBOARD_HOST, DASHBOARD_PORT = "127.0.0.1", 8265  # loopback: a reachable dashboard runs code

# How each default reads in help texts and field descriptions.
MLFLOW_URI_HELP = f"${MLFLOW_URI_ENV}, else {MLFLOW_URI}"
OPTUNA_STORAGE_HELP = f"${OPTUNA_STORAGE_ENV}, else {OPTUNA_STORAGE}"
CHECKPOINTS_HELP = f"${CHECKPOINTS_ENV}, else {CHECKPOINTS}"


def _env(name: str) -> str | None:
    return os.environ.get(name) or None  # an empty variable counts as unset


def mlflow_uri() -> str:
    return _env(MLFLOW_URI_ENV) or MLFLOW_URI


def optuna_storage() -> str:
    return _env(OPTUNA_STORAGE_ENV) or OPTUNA_STORAGE


def checkpoints() -> Path:
    return Path(_env(CHECKPOINTS_ENV) or CHECKPOINTS)


def checkpoint_storage() -> str | None:
    return _env(CHECKPOINT_STORAGE_ENV)


def s3_endpoint() -> str | None:
    return _env(S3_ENDPOINT_ENV)


def command(verb: str, name: str, storage: Path) -> str:
    """`sweep VERB NAME` as a user types it to continue a sweep, with `--storage` when the sweep's
    checkpoint folder is not the one the command finds by default."""
    default = Path(storage).resolve() == checkpoints().resolve()
    return f"sweep {verb} {name}" + ("" if default else f" --storage {storage}")


def reports(name: str) -> Path:
    return Path(REPORTS) / name


def absolute_sqlite(uri: str) -> str:
    """A relative `sqlite:///FILE` made absolute against this folder (trials run elsewhere, and a
    later command may too); any other URI unchanged."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri
