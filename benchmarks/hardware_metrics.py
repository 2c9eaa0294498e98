"""What the hardware metrics cost a sweep: the per-epoch peak-memory meter (trainers/hardware.py)
against the shortest epoch a sweep trains (small_cnn on digits, width 4), and the CPU time of one
sample of MLflow's system-metrics monitor (collect, aggregate, log to a SQLite store, read the
run's status) against the interval between samples (sweep/tuning/system_metrics.py).
Goal: under 1% of the wall time each.

    python -m benchmarks.hardware_metrics [--samples 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from trainers.hardware import PeakMemory
from trainers.train import fit

from ._timing import alternate, machine, table

INTERVAL_S = 5.0  # tracking.system_metrics_every_s's default


def meter_cost() -> tuple[float, float]:
    """(seconds of one reset + read of the CPU meter, seconds of the shortest epoch)."""
    meter = PeakMemory(torch.device("cpu"))
    per_call = alternate({"meter": lambda: (meter.reset(), meter.read())}, rounds=7, calls=200)["meter"]
    epochs = []
    fit(
        {"dataset": "digits", "model": "small_cnn", "model_options": {"width": 4}, "epochs": 3, "batch_size": 64},
        lambda metrics, state: epochs.append(metrics["epoch_time_s"]),
    )
    return per_call, min(epochs)


def monitor_cost(samples: int) -> float:
    """Median CPU seconds of one sample of MLflow's system-metrics monitor, logging to SQLite."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{Path(tempfile.mkdtemp())}/mlflow.db"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("monitor")).info.run_id
    monitor = SystemMetricsMonitor(run_id, sampling_interval=INTERVAL_S, tracking_uri=uri)
    costs = []
    for _ in range(samples):
        start = time.process_time()
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()  # a request per sample: the most a monitor ever sends
        client.get_run(run_id)  # the monitor's check that its run is still RUNNING
        costs.append(time.process_time() - start)
    return statistics.median(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    per_call, epoch = meter_cost()
    sample = monitor_cost(args.samples)
    print(machine())
    rows = [
        ["peak-memory meter, per epoch", per_call * 1e3, epoch * 1e3, f"{100 * per_call / epoch:.3f}%"],
        [f"system-metrics sample, every {INTERVAL_S:g} s", sample * 1e3, INTERVAL_S * 1e3, f"{100 * sample / INTERVAL_S:.3f}%"],
    ]
    print(table(["cost (meter: wall, sample: CPU)", "ms", "per ms of", "share"], rows))


if __name__ == "__main__":
    main()
