"""The short-trial sweep, side by side: the service against plain Ray Tune, on K slots.

The same sweep twice, each in a fresh interpreter with a fresh local Ray of K CPUs: N trials of
SAM-GNS on `digits` (small CNN, width 16, 6 epochs: trials of about 1.7 s here), Optuna searching lr, a
checkpoint every epoch, every epoch's metrics in a SQLite MLflow store:
- service: the sweep's own driver (`sweep.tuning.driver.run_sweep`);
- plain: what a Ray Tune user would write: `tune.Tuner` over a function that trains with
  `trainers.fit` and calls `tune.report` with a checkpoint, `OptunaSearch`,
  `MLflowLoggerCallback`, Tune's defaults otherwise (one CPU per trial, new actors).
Printed for each: wall seconds of the sweep (Tune's fit; `ray.init` not counted), the trials'
training seconds (the sum of their epochs' `epoch_time_s`), the slot-time fraction spent training
= training / (wall x K), the overhead per trial = (wall x K - training) / N, and plain's wall over
the service's. The full run also measures the quickstart (search_spaces/quickstart.yaml) through
the service the same way.

    python -m benchmarks.scale_sweep [--quick] [--trials 200] [--epochs 6] [--slots 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._timing import machine, table

CONTENDERS = ("service", "plain")
ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "search_spaces" / "quickstart.yaml"
WIDTH = 16
LR = (0.05, 0.5)  # the searched range, log scale, in both contenders


def training_seconds(folder: Path) -> float:
    """The sum of `epoch_time_s` over every result Tune wrote under `folder` (one result.json per trial)."""
    total = 0.0
    for result_file in folder.rglob("result.json"):
        total += sum(json.loads(line)["epoch_time_s"] for line in result_file.read_text().splitlines() if line.strip())
    return total


def _service_spec(trials: int, epochs: int, slots: int, folder: Path):
    from sweep.spec import validate_spec

    return validate_spec(
        {
            "name": "scale",
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sam_gns"],
            "train": {"epochs": epochs, "batch_size": 32, "model_options": {"width": WIDTH}},
            "search": {"method": "optuna", "trials_per_arm": trials, "space": {"lr": {"low": LR[0], "high": LR[1], "log": True}}},
            "resources": {"cpus": 1},
            "max_concurrent": slots,
            "tracking": {"mlflow_uri": f"sqlite:///{folder}/mlflow.db", "optuna_storage": f"sqlite:///{folder}/optuna.db"},
            "checkpoints": {"path": str(folder / "sweeps")},
        }
    ).resolved()


def _quickstart_spec(folder: Path):
    from sweep.spec import load_spec

    overrides = [
        f"tracking.mlflow_uri=sqlite:///{folder}/mlflow.db",
        f"tracking.optuna_storage=sqlite:///{folder}/optuna.db",
        f"checkpoints.path={folder / 'sweeps'}",
    ]
    return load_spec(QUICKSTART, overrides).resolved()


def run_service(spec, slots: int) -> float:
    """Wall seconds of the service's driver running `spec` on a fresh local Ray of `slots` CPUs."""
    import ray

    from sweep.tuning.driver import run_sweep

    ray.init(address="local", num_cpus=slots, include_dashboard=False, logging_level="ERROR")
    try:
        start = time.perf_counter()
        run_sweep(spec)
        return time.perf_counter() - start
    finally:
        ray.shutdown()


def run_plain(trials: int, epochs: int, slots: int, folder: Path) -> float:
    """The same sweep as a Ray Tune user would write it; wall seconds of `Tuner.fit`."""
    import ray
    import torch
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.search.optuna import OptunaSearch

    from trainers import train

    def trainable(config):
        cfg = {
            "dataset": "digits",
            "model": "small_cnn",
            "optimizer": "sam_gns",
            "epochs": epochs,
            "batch_size": 32,
            "model_options": {"width": WIDTH},
            "num_threads": 1,
            "lr": config["lr"],
        }
        state, checkpoint = None, tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as saved:
                state = torch.load(Path(saved) / "state.pt", weights_only=True)

        def report(metrics, state):
            with tempfile.TemporaryDirectory() as out:
                torch.save(state, Path(out) / "state.pt")
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(out))

        train.fit(cfg, report, state)

    ray.init(address="local", num_cpus=slots, include_dashboard=False, logging_level="ERROR")
    try:
        tuner = tune.Tuner(
            trainable,
            param_space={"lr": tune.loguniform(*LR)},
            tune_config=tune.TuneConfig(
                metric="val_acc", mode="max", search_alg=OptunaSearch(), num_samples=trials, max_concurrent_trials=slots
            ),
            run_config=tune.RunConfig(
                name="plain",
                storage_path=str(folder / "tune"),
                callbacks=[MLflowLoggerCallback(tracking_uri=f"sqlite:///{folder}/mlflow.db", experiment_name="plain")],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=0,
            ),
        )
        start = time.perf_counter()
        results = tuner.fit()
        wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    if results.num_errors:
        raise RuntimeError(f"{results.num_errors} plain Tune trials failed")
    return wall


def one(contender: str, trials: int, epochs: int, slots: int) -> dict[str, float]:
    """Run one contender in this process; its wall and training seconds and trials."""
    folder = Path(tempfile.mkdtemp(prefix=f"scale-{contender}-"))
    if contender == "service":
        wall = run_service(_service_spec(trials, epochs, slots, folder), slots)
    elif contender == "quickstart":
        wall = run_service(_quickstart_spec(folder), slots)
    else:
        wall = run_plain(trials, epochs, slots, folder)
    done = sum(1 for _ in folder.rglob("result.json"))
    return {"wall": wall, "training": training_seconds(folder), "trials": done}


def measure(contender: str, trials: int, epochs: int, slots: int) -> dict[str, float]:
    """`one` in a fresh interpreter (a user's process: no imports, no environment from the other)."""
    command = [sys.executable, "-m", "benchmarks.scale_sweep", "--one", contender]
    command += ["--trials", str(trials), "--epochs", str(epochs), "--slots", str(slots)]
    # run from a scratch folder: MLflow's default artifact root is ./mlruns
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tempfile.mkdtemp(prefix="scale-cwd-"), env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{contender} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(quick: bool = False, trials: int = 200, epochs: int = 6, slots: int = 2) -> None:
    trials, epochs = (4, 2) if quick else (trials, epochs)
    contenders = [*CONTENDERS] if quick else [*CONTENDERS, "quickstart"]
    measured = {}
    for name in contenders:
        measured[name] = measure(name, trials, epochs, slots)
        print(f"{name}: {json.dumps(measured[name])}", file=sys.stderr, flush=True)  # kept if a later one fails
    print(f"# short-trial sweep: {trials} trials x {epochs} epochs, {slots} slots, local Ray, SQLite MLflow; {machine()}")
    rows = []
    for name, m in measured.items():
        spare = slots * m["wall"] - m["training"]
        fraction = f"{100 * m['training'] / (slots * m['wall']):.1f}%"
        rows.append([name, m["trials"], m["wall"], m["training"], fraction, spare / m["trials"]])
    print(table(["contender", "trials", "wall s", "training s", "slot time training", "overhead s/trial"], rows))
    print(f"plain Ray Tune wall / service wall: {measured['plain']['wall'] / measured['service']['wall']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials of 2 epochs each, no quickstart (CI)")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (6 of digits at 8x8: about 1.7 s here)")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--one", choices=[*CONTENDERS, "quickstart"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.trials, args.epochs, args.slots)))
    else:
        main(args.quick, args.trials, args.epochs, args.slots)
