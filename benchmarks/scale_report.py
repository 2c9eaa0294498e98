"""`sweep report` by sweep size: the CLI in a fresh interpreter (imports included) on a SQLite
MLflow store holding a sweep of N trial runs of 10 epochs, and its Optuna studies. Two ways: as on
the machine that ran the sweep (`sweep report NAME --storage FOLDER`: the spec the sweep saved in
its folder is at hand), and from the store alone (`--tracking-uri`: the spec is the parent run's).

The store is written by the real tracker (sweep/tracking/runs.py: the parent run with the spec,
each trial's run created as the journal creates it), each run's epochs in one `log_batch` rather
than one request per epoch, so filling 2,000 runs takes minutes, not an hour; the studies hold
each search trial as the searcher leaves it. Three rules on one model, a third of the runs each;
the last two of every rule's runs are confirmation runs.

    python -m benchmarks.scale_report [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import sqlalchemy
from mlflow.entities import RunTag
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweep.defaults import SPEC_FILE
from sweep.search.storage import open_storage
from sweep.spec import dump_spec, validate_spec
from sweep.tracking.records import curve_points
from sweep.tracking.runs import SweepTracker
from sweep.tracking.schema import OUTCOME_TAG

from ._timing import table

RULES = ["sgd", "sam", "sam_gns"]
EPOCHS = 10


def make_spec(folder: Path, runs: int):
    return validate_spec(
        {
            "name": "scale",
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": RULES,
            "train": {"epochs": EPOCHS},
            "search": {
                "method": "optuna",
                "trials_per_arm": max(1, runs // len(RULES) - 2),
                "space": {"lr": {"low": 0.01, "high": 1.0, "log": True}, "rho": {"low": 0.01, "high": 0.3, "log": True}},
            },
            "confirm_seeds": 2,
            "tracking": {"mlflow_uri": f"sqlite:///{folder}/mlflow.db", "optuna_storage": f"sqlite:///{folder}/optuna.db"},
        }
    )


def _unsynced(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=OFF")  # filling only: nothing here must survive a power loss


def fill(folder: Path, runs: int) -> None:
    spec = make_spec(folder, runs)
    tracker = SweepTracker(spec)
    engine = tracker.client._tracking_client.store.engine
    engine.dispose()
    sqlalchemy.event.listen(engine, "connect", _unsynced)
    rng = random.Random(0)
    per_rule = runs // len(RULES)
    for rule_index, rule in enumerate(RULES):
        arm = spec.arms()[rule_index]
        storage = open_storage(spec.tracking.optuna_storage)
        study = optuna.create_study(study_name=arm.study_name(spec.name), storage=storage, direction="maximize")
        dists = {"lr": FloatDistribution(0.01, 1.0, log=True), "rho": FloatDistribution(0.01, 0.3, log=True)}
        trials = []
        for i in range(per_rule):
            confirm = i >= per_rule - 2
            lr, rho = 0.01 * 100 ** rng.random(), 0.01 * 30 ** rng.random()
            train = {"optimizer": rule, "model": "small_cnn", "dataset": "digits", "lr": lr, "rho": rho, "eta": 0.01}
            train.update({"seed": i - per_rule + 3 if confirm else 0, "epochs": EPOCHS})
            phase = "confirm" if confirm else "search"
            config = {"arm": arm.key, "phase": phase, "train": train, "study_trial": None if confirm else i}
            trial_id = f"{rule}_{i:05d}"
            run_id = tracker.child(trial_id, config)
            top = 60 + 35 * rng.random()
            points = []
            for epoch in range(1, EPOCHS + 1):
                result = {"epoch": epoch, "val_acc": top - (EPOCHS - epoch), "test_acc": top - 1 - (EPOCHS - epoch)}
                result.update({"train_loss": 1.0 / epoch, "val_loss": 2.0 / epoch, "test_loss": 2.0 / epoch, "lr": lr})
                points += curve_points(result)
            tracker.client.log_batch(run_id, metrics=points, tags=[RunTag(OUTCOME_TAG, "finished")])
            tracker.client.set_terminated(run_id, "FINISHED")
            if not confirm:
                value = top
                trials.append(
                    create_trial(state=TrialState.COMPLETE, value=value, params={"lr": lr, "rho": rho}, distributions=dists)
                )
        study.add_trials(trials)
    tracker.finish({})
    saved = folder / "sweeps" / spec.name
    saved.mkdir(parents=True)
    (saved / SPEC_FILE).write_text(dump_spec(spec))  # as the driver saves it when a sweep starts


def report_seconds(folder: Path, saved: bool) -> float:
    """Wall time of `sweep report scale` in a fresh interpreter, imports included: with the sweep's
    saved spec (`--storage`), or from the MLflow store alone (`--tracking-uri`)."""
    where = ["--storage", str(folder / "sweeps")] if saved else ["--tracking-uri", f"sqlite:///{folder}/mlflow.db"]
    command = [sys.executable, "-m", "sweep.cli", "report", "scale", *where, "--out", str(folder / "report")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=1800)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return took


def main(quick: bool) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sizes, repeats = ([20], 1) if quick else ([200, 2000], 3)
    rows = []
    for runs in sizes:
        folder = Path(tempfile.mkdtemp())
        start = time.perf_counter()
        fill(folder, runs)
        filled = time.perf_counter() - start
        timed = [report_seconds(folder, saved) for _ in range(repeats) for saved in (True, False)]  # alternated
        saved, alone = (statistics.median(timed[start::2]) for start in (0, 1))
        rows.append([runs, EPOCHS, f"{saved:.2f}", f"{alone:.2f}", f"{filled:.0f}"])
        print(f"{runs} runs: stores in {folder}", flush=True)
    print(f"`sweep report` wall time by sweep size (SQLite store, fresh interpreter, imports included, median of {repeats})")
    print(table(["runs", "epochs", "report s (saved spec)", "report s (store alone)", "fill s"], rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one sweep of 20 runs (CI)")
    main(parser.parse_args().quick)
