"""The failure figures: run the tests that inject each failure for real (a killed node, a killed
driver, a stopped MLflow server, a diverging or raising trial) and print what each ran, redid
and lost. The tests count everything from the runs themselves (tests/helpers/figures.py); this script
only collects and prints. Needs the `[dev]` extra (pytest), PostgreSQL is not needed.

    python -m benchmarks.failures
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/test_node_failure.py",
    "tests/test_sweep_resume.py::test_interrupted_sweep_resumes_without_repeating_finished_trials",
    "tests/test_tracking_outage.py",
    "tests/test_sweep.py::test_a_failed_trial_is_retried_from_its_checkpoint_without_duplicate_epochs",
    "tests/test_sweep.py::test_a_diverging_trial_stops_is_marked_and_counts_as_a_failure_for_optuna",
    "tests/test_sweep.py::test_a_trial_that_keeps_failing_fails_alone_with_its_error_in_its_run",
]
COLUMNS = ("failure", "trials", "epochs", "redone", "lost", "doubled", "note")


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        figures = Path(folder) / "figures.jsonl"
        env = {**os.environ, "SWEEP_FAILURE_FIGURES": str(figures)}
        tests = [test for test in TESTS if (ROOT / test.split("::")[0]).exists()]
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=ROOT, env=env)
        rows = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
    print("\n| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(str(row[column]) for column in COLUMNS) + " |")
    print(
        "\nepochs: per trial; redone: epochs trained twice (after a restore from an older checkpoint); "
        "lost / doubled: epochs a child run lacks / holds twice in MLflow"
    )
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
