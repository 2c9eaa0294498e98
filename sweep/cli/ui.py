"""`sweep ui [NAME]`: the MLflow UI for a sweep's tracking store, on 127.0.0.1 only.

With a remote tracking server there is nothing to start: the command prints that server's
address for the sweep's experiment.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UserError
from .sweeps import add_report_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_report_arguments(parser, name_required=False)
    parser.add_argument("--port", type=int, default=5000, help="port of the local MLflow UI (default: 5000)")


def experiment_path(uri: str, name: str | None) -> str:
    from mlflow.tracking import MlflowClient  # here, so `sweep ui --help` answers without MLflow

    if name is None:
        return "/"
    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    if experiment is None:
        raise UserError([f"name: no sweep {name!r} in the MLflow store {uri}"])
    # MLflow 3.17's UI shows the GenAI view unless asked for the model-training one in the URL
    return f"/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"


def run(args: argparse.Namespace) -> int:
    from .. import api

    uri = api.resolve_tracking_uri(args.name, args.storage, args.tracking_uri)
    path = experiment_path(uri, args.name)
    if uri.startswith(("http://", "https://")):
        print(f"{uri.rstrip('/')}{path}")
        return 0
    print(f"MLflow UI for {uri}: http://127.0.0.1:{args.port}{path}  (Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(args.port)]
    # become the server, so Ctrl-C and a terminate signal reach it (and its workers) directly
    os.execv(sys.executable, command)
