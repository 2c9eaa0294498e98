"""`sweep ui [NAME]`: the MLflow UI for a sweep's tracking store, on 127.0.0.1 only; with
`--optuna`, optuna-dashboard on the sweep's Optuna storage (its studies, one per arm), also on
127.0.0.1 only.

With a remote tracking server there is nothing to start: the command prints that server's
address for the sweep's experiment.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import defaults
from ..errors import UserError
from ..redact import redact
from .sweeps import add_report_arguments

PORTS = {"mlflow": 5000, "optuna": 8080}  # each UI's own default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_report_arguments(parser, name_required=False)
    parser.add_argument(
        "--port", type=int, help=f"port of the local UI (default: {PORTS['mlflow']}, with --optuna {PORTS['optuna']})"
    )
    parser.add_argument(
        "--optuna",
        action="store_true",
        help="start optuna-dashboard on the sweep's Optuna studies instead (storage: the sweep's spec, "
        f"else {defaults.OPTUNA_STORAGE_HELP})",
    )


def experiment_path(uri: str, name: str | None) -> str:
    from mlflow.tracking import MlflowClient  # here, so `sweep ui --help` answers without MLflow

    if name is None:
        return "/"
    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    if experiment is None:
        raise UserError([f"name: no sweep {name!r} in the MLflow store {uri}"])
    # MLflow 3.17's UI shows the GenAI view unless asked for the model-training one in the URL
    return f"/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"


def optuna_ui(args: argparse.Namespace) -> int:
    """optuna-dashboard on 127.0.0.1, in this process (Ctrl-C stops it)."""
    from optuna_dashboard import run_server

    from .. import api

    saved = api.saved_spec(args.name, args.storage)
    if args.name is not None and saved is None:
        raise UserError([f"name: no sweep {args.name!r} in {api.storage_folder(args.storage)}"])
    storage = saved.tracking.optuna_storage if saved else defaults.absolute_sqlite(defaults.optuna_storage())
    port = args.port or PORTS["optuna"]
    studies = f" (studies {args.name}/MODEL/RULE)" if args.name else ""
    print(f"optuna-dashboard for {redact(storage)}{studies}: http://127.0.0.1:{port}/dashboard  (Ctrl-C stops it)", flush=True)
    run_server(storage, host="127.0.0.1", port=port)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.optuna:
        return optuna_ui(args)
    from .. import api

    args.port = args.port or PORTS["mlflow"]
    uri = api.resolve_tracking_uri(args.name, args.storage, args.tracking_uri)
    path = experiment_path(uri, args.name)
    if uri.startswith(("http://", "https://")):
        print(f"{uri.rstrip('/')}{path}")
        return 0
    print(f"MLflow UI for {uri}: http://127.0.0.1:{args.port}{path}  (Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)]
    # become the server, so Ctrl-C and a terminate signal reach it (and its workers) directly
    os.execv(sys.executable, command)
