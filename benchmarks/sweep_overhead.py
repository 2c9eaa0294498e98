"""Figure 4: what a sweep costs beyond its trials' training, on a local Ray with K slots.

efficiency = (sum of the trials' training time) / (K x wall time of the sweep). What is left over,
K x wall - training, is split in two by running the same sweep at two sizes (n and 2n trials per
slot, alternated with a fresh Ray each): a fixed cost per slot, paid once per sweep (Tune's set-up,
the first Optuna study, a worker process that imports torch and builds its first trial), and a
start-up cost per trial, paid again for every trial (scheduling the next trial into the warm worker,
its data and model, MLflow run creation, one report and checkpoint per epoch). Goal:
>= 90% for trials of 30 s.

    python -m benchmarks.sweep_overhead [--epochs 22] [--per-slot 2] [--slots 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import ray

from sweep.spec import validate_spec
from sweep.tuning.driver import run_sweep

from ._timing import machine, table


def one_sweep(trials: int, epochs: int, slots: int) -> tuple[float, float, float]:
    """(seconds ray.init took, wall seconds of the sweep, seconds its trials trained)."""
    folder = Path(tempfile.mkdtemp())
    spec = validate_spec(
        {
            "name": "overhead",
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sam_gns"],
            "train": {"epochs": epochs, "batch_size": 32, "model_options": {"width": 16}},
            "search": {"method": "optuna", "trials_per_arm": trials, "space": {"lr": {"low": 0.05, "high": 0.5, "log": True}}},
            "resources": {"cpus": 1},
            "max_concurrent": slots,
            "tracking": {"mlflow_uri": f"sqlite:///{folder}/mlflow.db", "optuna_storage": f"sqlite:///{folder}/optuna.db"},
            "checkpoints": {"path": str(folder / "sweeps")},
        }
    ).resolved()
    started = time.perf_counter()
    ray.init(address="local", num_cpus=slots, include_dashboard=False, logging_level="ERROR")
    init = time.perf_counter() - started
    try:
        start = time.perf_counter()
        run_sweep(spec)
        wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    training = 0.0
    for result_file in (folder / "sweeps" / "overhead").glob("*/result.json"):
        training += sum(json.loads(line)["epoch_time_s"] for line in result_file.read_text().splitlines())
    return init, wall, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=22, help="epochs per trial (22 of digits: about 30 s here)")
    parser.add_argument("--per-slot", type=int, default=2, help="trials per slot in the smaller sweep (the larger has twice)")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    k, sizes = args.slots, (args.per_slot * args.slots, 2 * args.per_slot * args.slots)
    measured: dict[int, list[tuple[float, float, float]]] = {n: [] for n in sizes}
    for _ in range(args.repeats):
        for n in sizes:  # alternated, so drift on a shared machine hits both
            measured[n].append(one_sweep(n, args.epochs, k))
    print(f"# sweep overhead: {args.epochs} epochs per trial, {k} slots, local Ray, SQLite MLflow and Optuna; {machine()}")
    rows, overhead = [], {}
    for n in sizes:
        init, wall, training = (statistics.median(column) for column in zip(*measured[n]))
        overhead[n] = k * wall - training
        rows.append([n, init, wall, training, training / n, f"{100 * training / (k * wall):.1f}%"])
    print(table(["trials", "ray.init s", "wall s", "training s (sum)", "s/trial", "efficiency"], rows))
    small, large = sizes
    per_trial = (overhead[large] - overhead[small]) / (large - small)
    fixed = (overhead[small] - small * per_trial) / k
    trial_s = rows[0][4]
    print(
        table(
            [
                "fixed s per slot (once per sweep)",
                "start-up s per trial",
                "steady efficiency at these trials",
                "steady efficiency at 30 s trials",
            ],
            [[fixed, per_trial, f"{100 * trial_s / (trial_s + per_trial):.1f}%", f"{100 * 30 / (30 + per_trial):.1f}%"]],
        )
    )


if __name__ == "__main__":
    main()
