"""Figures of the failure tests: each test that injects a failure
records how many trials and epochs it ran, how many epochs were trained twice (redone), and how
many a child run lacks (lost) or holds twice (doubled) in MLflow, all counted from the run, never
written in. `python -m benchmarks.failures` runs those tests and prints the table."""

import json
import os
from collections import Counter

FIGURES_ENV = "SWEEP_FAILURE_FIGURES"  # file the records are appended to, when set


def logged_epochs(client, runs, epochs: int, key: str = "val_acc") -> tuple[int, int, int]:
    """(epochs logged, lost, doubled) over child runs that should each hold steps 1..epochs."""
    logged = lost = doubled = 0
    for run in runs:
        steps = Counter(m.step for m in client.get_metric_history(run.info.run_id, key))
        logged += sum(steps.values())
        lost += sum(1 for step in range(1, epochs + 1) if step not in steps)
        doubled += sum(count - 1 for count in steps.values())
    return logged, lost, doubled


def record(failure: str, *, trials: int, epochs: int, redone: int, lost: int, doubled: int, note: str = "") -> None:
    row = {
        "failure": failure,
        "trials": trials,
        "epochs": epochs,
        "redone": redone,
        "lost": lost,
        "doubled": doubled,
        "note": note,
    }
    print(f"\nfigures: {json.dumps(row)}")
    if os.environ.get(FIGURES_ENV):
        with open(os.environ[FIGURES_ENV], "a") as out:
            out.write(json.dumps(row) + "\n")
