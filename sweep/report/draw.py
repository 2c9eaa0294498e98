"""The figure process of a report (sweep/report/figures.py starts it): `python -m
sweep.report.draw FOLDER` reads pickled jobs from its standard input until it closes, draws each
into FOLDER, then writes one pickle to its standard output: the Optuna plots' file names and the
notes on what was left out of them.

Imports matplotlib and Optuna's plots, never MLflow, Ray or what the report computes its numbers
with (scipy, pandas): it starts while the report's own process is still importing MLflow, and
what it imports (and warms) is what it draws with.
"""

from __future__ import annotations

import os
import pickle
import queue
import sys
import threading
from pathlib import Path

# Optuna's importance module imports scikit-learn (and with it scipy.stats and pandas) for its
# fANOVA evaluator: 1.3 s of this process's start, while the report's process waits. The report
# ranks parameters with PED-ANOVA (studies.py, IMPORTANCE_BY), which needs none of it, so this
# process, which imports nothing else, marks scikit-learn as absent (Python's import system then
# raises ModuleNotFoundError for it, and Optuna leaves fANOVA unavailable).
sys.modules.setdefault("sklearn", None)

# imported after the line above, on purpose
from matplotlib import font_manager  # noqa: E402

from . import plots  # noqa: E402
from .figures import CURVES, LR_RHO, FigureData  # noqa: E402
from .studies import study_plots  # noqa: E402


def _studies(job, folder: Path, done: tuple[list[str], list[str]]) -> None:
    spec, storage_url = job
    written, notes = study_plots(spec, storage_url, folder)
    done[0].extend(written)
    done[1].extend(notes)


def _report(data: FigureData, folder: Path, _done) -> None:
    plots.curves(data, folder / CURVES)
    plots.lr_rho(data, folder / LR_RHO)


JOBS = {"studies": _studies, "report": _report}


def _read(jobs: queue.Queue) -> None:
    """Take every job off the pipe as it comes, so the report's process never waits on a full pipe
    while a figure is being drawn."""
    while True:
        try:
            jobs.put(pickle.load(sys.stdin.buffer))
        except EOFError:
            jobs.put(None)
            return


def _warm() -> None:
    """What the first figure would otherwise pay while the report's process waits: matplotlib's
    font lookup."""
    font_manager.findfont(font_manager.FontProperties())


def main(folder: Path) -> None:
    jobs: queue.Queue = queue.Queue()
    threading.Thread(target=_read, args=(jobs,), daemon=True).start()
    _warm()
    done: tuple[list[str], list[str]] = ([], [])
    while (job := jobs.get()) is not None:
        kind, payload = job
        JOBS[kind](payload, folder, done)
    pickle.dump(done, sys.stdout.buffer)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    # Every figure is written and closed and the answer flushed: skip the interpreter's teardown of
    # matplotlib and Optuna (about 0.5 s that the report would otherwise wait for).
    os._exit(0)
