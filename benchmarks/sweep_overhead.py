"""Figure 4: what a sweep costs beyond its trials' training, on a local Ray with K slots.

efficiency = (sum of the trials' training time) / (K x wall time of the Tune run); the per-trial
start-up cost (Ray actor, data and model set-up, MLflow run creation, checkpoints) is what is
left, shared out over the trials. Goal (issue 8): >= 90% for trials of 30 s.

    python -m benchmarks.sweep_overhead [--trials 8] [--epochs 10] [--slots 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray

from sweep.spec import validate_spec
from sweep.tune import run_sweep

from ._timing import table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    spec = validate_spec({
        "name": "overhead", "dataset": "digits", "models": ["small_cnn"], "optimizers": ["sam_gns"],
        "train": {"epochs": args.epochs, "batch_size": 32, "model_options": {"width": 16}},
        "search": {"method": "optuna", "trials_per_arm": args.trials, "space": {"lr": {"low": 0.05, "high": 0.5, "log": True}}},
        "resources": {"cpus": 1}, "max_concurrent": args.slots,
        "tracking": {"mlflow_uri": f"sqlite:///{folder}/mlflow.db", "optuna_storage": f"sqlite:///{folder}/optuna.db"},
        "checkpoints": {"path": str(folder / "sweeps")},
    }).resolved()
    ray.init(address="local", num_cpus=args.slots, include_dashboard=False, logging_level="ERROR")
    try:
        start = time.perf_counter()
        run_sweep(spec)
        wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    training = 0.0
    for result_file in (folder / "sweeps" / "overhead").glob("*/result.json"):
        training += sum(json.loads(line)["epoch_time_s"] for line in result_file.read_text().splitlines())
    per_trial = training / args.trials
    startup = (args.slots * wall - training) / args.trials
    print(f"# sweep overhead: {args.trials} trials x {args.epochs} epochs, {args.slots} slots, local Ray, SQLite MLflow")
    print(table(
        ["trials", "slots", "wall s", "training s (sum)", "s/trial", "start-up s/trial", "efficiency", "efficiency at 30 s trials"],
        [[args.trials, args.slots, wall, training, per_trial, startup, f"{100 * training / (args.slots * wall):.1f}%", f"{100 * 30 / (30 + startup):.1f}%"]],
    ))


if __name__ == "__main__":
    main()
