"""Figure 5: per-epoch logging of a trial's curves against a real local `mlflow server`: one
`log_batch` request per epoch (what sweep/tracking.py does) against one request per metric.

    python -m benchmarks.mlflow_logging [--epochs 30]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from mlflow.tracking import MlflowClient

from sweep.tracking.runs import CURVES, curve_points

from ._timing import table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(folder: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{folder}/mlflow.db",
            "--artifacts-destination",
            f"{folder}/artifacts",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url, timeout=1)
            return server, url
        except OSError:
            time.sleep(1)
    raise RuntimeError("mlflow server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    server, url = serve(tempfile.mkdtemp())
    try:
        client = MlflowClient(url)
        experiment = client.create_experiment("logging-benchmark")
        result = {key: 1.0 for key in CURVES}
        seconds = {"batched": [], "per metric": []}
        runs = {name: client.create_run(experiment).info.run_id for name in seconds}
        for epoch in range(1, args.epochs + 1):  # alternate the two ways, epoch by epoch
            start = time.perf_counter()
            client.log_batch(runs["batched"], metrics=curve_points({**result, "epoch": epoch}))
            seconds["batched"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for key in CURVES:
                client.log_metric(runs["per metric"], key, 1.0, step=epoch)
            seconds["per metric"].append(time.perf_counter() - start)
        rows = [[name, 1 if name == "batched" else len(CURVES), sorted(v)[len(v) // 2] * 1e3] for name, v in seconds.items()]
        print(f"# MLflow logging of {len(CURVES)} curves per epoch to a local mlflow server (SQLite), {args.epochs} epochs")
        print(table(["way", "requests/epoch", "median ms/epoch"], rows))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
