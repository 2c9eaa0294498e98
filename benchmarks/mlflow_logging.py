"""Figure 5: per-epoch logging of a trial's curves against a real local `mlflow server`: one
`log_batch` request per epoch (what sweep/tracking/runs.py does) against one request per metric.

    python -m benchmarks.mlflow_logging [--epochs 30]
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from sweep.tracking.records import curve_points
from sweep.tracking.schema import CURVES
from tests.helpers.servers import MlflowServer

from ._timing import table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    server = MlflowServer(root, args=("--artifacts-destination", str(root / "artifacts"))).start()
    url = server.uri
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
        server.stop(signal.SIGTERM)


if __name__ == "__main__":
    main()
