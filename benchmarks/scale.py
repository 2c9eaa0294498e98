"""The control path at scale, every part in one command: each part runs in a fresh interpreter
and prints its own table.

- cluster: a simulated cluster (many slots, trials that wait instead of training) through the
  real searcher, journal and MLflow, on SQLite and on an `mlflow server` on PostgreSQL
  (benchmarks/scale_cluster.py; quick: both stores in one run);
- tracking: the journal's capacity and lag, one event per request against batched and parallel
  (benchmarks/scale_tracking.py);
- search: suggestion latency by study size and driver memory over many trials
  (benchmarks/scale_search.py);
- report: `sweep report` by sweep size (benchmarks/scale_report.py);
- sweep: the short-trial sweep, the service against plain Ray Tune (benchmarks/scale_sweep.py).

    python -m benchmarks.scale [--quick] [--part cluster --part tracking ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = {
    "cluster": [["scale_cluster", "--store", "sqlite"], ["scale_cluster", "--store", "postgresql"]],
    "tracking": [["scale_tracking"]],
    "search": [["scale_search"]],
    "report": [["scale_report"]],
    "sweep": [["scale_sweep"]],
}
# quick mode: both stores' sweeps in one interpreter and one local Ray (each start costs seconds
# of a CI run; the quick figures are not read)
QUICK_PARTS = {**PARTS, "cluster": [["scale_cluster", "--store", "sqlite", "--store", "postgresql"]]}


def main(quick: bool, parts: list[str]) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for part in parts:
        for module, *args in (QUICK_PARTS if quick else PARTS)[part]:
            print(f"\n== {part}: python -m benchmarks.{module} {' '.join(args)}{' --quick' if quick else ''}", flush=True)
            command = [sys.executable, "-m", f"benchmarks.{module}", *args, *(["--quick"] if quick else [])]
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            # the part's tables (its progress lines went to stderr or are skipped here)
            print("\n".join(line for line in done.stdout.splitlines() if not line.startswith(("[", "status", "placement"))))
            if done.returncode != 0:
                print(f"{part} failed (exit {done.returncode})", file=sys.stderr)
                return done.returncode
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each part at its smallest size (CI)")
    parser.add_argument("--part", action="append", choices=list(PARTS), help="one part (repeatable; default: all)")
    args = parser.parse_args()
    sys.exit(main(args.quick, args.part or list(PARTS)))
