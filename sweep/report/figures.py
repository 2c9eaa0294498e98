"""The report's figures, drawn by a process of their own (sweep/report/draw.py) while this one
reads MLflow and computes the statistics.

`sweep report` on a 200-run sweep spends most of its time importing: MLflow and its SQLAlchemy
store in the process that reads the runs, matplotlib and Optuna's plots in the one that draws. On
two cores the two halves overlap, so the figure process is started before this one imports MLflow
(sweep/report/write.py), and each arm's Optuna plots are drawn as soon as the spec is known, before
the runs are read (benchmarks/RESULTS.md, "Report").

Standard library only: importing this module must cost nothing, or the overlap is lost.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..spec import SweepSpec

PROGRAM = "sweep.report.draw"
CURVES, LR_RHO = "test_acc_curves.png", "val_acc_lr_rho.png"  # the report's own figures (sweep/report/plots.py)
ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `sweep` package, for the child's imports
WAIT_S = 300.0  # for the last figures once every message is sent; they take seconds


class SearchPoint(NamedTuple):
    """A completed search trial on the report's (lr, rho) figure."""

    model: str
    rule: str
    lr: float
    rho: float
    val_acc: float


@dataclass
class FigureData:
    """What the report's own figures show (sweep/report/plots.py), in plain values: the figure
    process unpickles it without importing what the report's numbers are computed with (scipy,
    pandas). Built from a report by SweepReport.figure_data."""

    models: list[str]
    rules: list[str]
    curves: dict[tuple[str, str], list[list[float]]]  # (model, rule): test_acc per epoch of each run the cell rests on
    searched: list[SearchPoint]


class FigureError(RuntimeError):
    """The figure process failed: a bug, not bad input; the message carries its traceback's end."""


class FigureProcess:
    """The drawing process of one report. Its files go to a folder of their own and reach the
    report's folder only when the whole report succeeded (`files_into`), so a report refused on
    bad input leaves nothing half-written. Used as a context manager: leaving it stops the process."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sweep-report-"))
        # a file, not a pipe: a full pipe would block the child; closed in __exit__
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
            "MPLBACKEND": "Agg",
        }
        command = [sys.executable, "-m", PROGRAM, str(self.folder)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors, env=env)

    def __enter__(self) -> FigureProcess:
        return self

    def __exit__(self, *_exc) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout, self._errors):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def studies(self, spec: SweepSpec, storage_url: str) -> None:
        """Draw each arm's Optuna plots from the studies at `storage_url` (sweep/report/studies.py)."""
        self._send(("studies", (spec, storage_url)))

    def report(self, data: FigureData) -> None:
        """Draw the report's own figures (sweep/report/plots.py)."""
        self._send(("report", data))

    def finish(self) -> tuple[list[str], list[str]]:
        """Wait for the figures: the study plots' file names, and notes on what was left out."""
        try:
            answer, _ = self._process.communicate(timeout=WAIT_S)  # closes its input: no more jobs
        except subprocess.TimeoutExpired:
            raise FigureError(f"the report's figures took over {WAIT_S:g} s") from None
        if self._process.returncode != 0 or not answer:
            raise FigureError(f"the report's figures failed (exit {self._process.returncode}): {self._error_tail()}")
        return pickle.loads(answer)

    def files_into(self, out: Path) -> None:
        """Move the drawn files into `out` (created if missing), replacing those of an earlier report."""
        out.mkdir(parents=True, exist_ok=True)
        for drawn in self.folder.iterdir():
            shutil.move(drawn, out / drawn.name)

    def _send(self, message: tuple) -> None:
        assert self._process.stdin is not None
        try:
            pickle.dump(message, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._process.stdin.flush()
        except BrokenPipeError:
            self._process.wait()
            raise FigureError(
                f"the report's figure process ended early (exit {self._process.returncode}): {self._error_tail()}"
            ) from None

    def _error_tail(self) -> str:
        self._errors.seek(0)
        lines = self._errors.read().decode(errors="replace").strip().splitlines()
        return "\n".join(lines[-15:]) or "no error output"
