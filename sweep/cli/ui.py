"""`sweep ui [NAME]`: the MLflow UI for a sweep's tracking store, on 127.0.0.1 only; with
`--optuna`, optuna-dashboard on the sweep's Optuna storage (its studies, one per arm), also on
127.0.0.1 only.

With a remote tracking server there is nothing to start: the command prints that server's
address for the sweep's experiment.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .. import defaults
from ..errors import UserError
from ..redact import redact
from .sweeps import add_report_arguments

PORTS = {"mlflow": 5000, "optuna": 8080}  # each UI's own default
STOPS = (signal.SIGINT, signal.SIGTERM)  # end the Optuna dashboard between two requests
STOP_POLL_S = 0.5  # how long a stop waits at most when no request comes


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
    from optuna_dashboard import wsgi

    from .. import api

    saved = api.saved_spec(args.name, args.storage)
    if args.name is not None and saved is None:
        raise UserError([f"name: no sweep {args.name!r} in {api.storage_folder(args.storage)}"])
    storage = saved.tracking.optuna_storage if saved else defaults.absolute_sqlite(defaults.optuna_storage())
    port = args.port or PORTS["optuna"]
    studies = f" (studies {args.name}/MODEL/RULE)" if args.name else ""
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).exists():
        raise UserError([f"optuna_storage: no Optuna studies at {storage} (no sweep has run with it)"])
    try:
        app = wsgi(storage)
    except Exception as err:  # noqa: BLE001 (a server or file that cannot be opened: one line, not a traceback)
        raise UserError([f"optuna_storage: cannot open {redact(storage)} ({type(err).__name__})"]) from None
    print(f"optuna-dashboard for {redact(storage)}{studies}: http://127.0.0.1:{port}/dashboard  (Ctrl-C stops it)", flush=True)
    serve_until_stopped(app, port)
    return 0


def serve_until_stopped(app, port: int) -> None:
    """Serve the WSGI `app` on 127.0.0.1:`port`, one request at a time, until Ctrl-C or SIGTERM.
    Not optuna-dashboard's own run_server: its server (wsgiref's) logs a KeyboardInterrupt raised
    while it answers a request as that request's error and serves on (docs/platform.md, Optuna);
    here a stop signal only sets a flag, read between requests."""
    from wsgiref.simple_server import make_server

    try:
        server = make_server("127.0.0.1", port, app)
    except OSError as err:
        raise UserError([f"port: cannot listen on 127.0.0.1:{port} ({err.strerror})"]) from None
    stops: list[int] = []
    saved = {signum: signal.signal(signum, lambda signum, frame: stops.append(signum)) for signum in STOPS}
    try:
        with server:
            server.timeout = STOP_POLL_S
            while not stops:
                server.handle_request()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


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
