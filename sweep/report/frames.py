"""A report's numbers as pandas DataFrames, for notebooks (README.md, "Python API"): a row per
run (`SweepReport.to_frame`) and a row per arm (`SweepReport.cells_frame`). The same numbers as
the report's tables: the rows come from its runs, cells and comparisons, nothing is recomputed."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from ..compare.stats import label
from ..spec import Arm
from ..tracking.schema import CURVES

if TYPE_CHECKING:
    from .contents import SweepReport

RUN_COLUMNS = ["run_id", "arm", "model", "rule", "phase", "seed", "study_trial", "outcome", "epochs"]
CELL_COLUMNS = ["model", "rule", "source", "n", "mean", "std", "best_epoch_mean", "search_trials", "failed", "diverged"]
COMPARED = ["diff", "ci_low", "ci_high", "p", "p_holm", "test", "reason"]  # Comparison's fields


def settings(report: SweepReport) -> list[str]:
    """The searched settings' names over all rules (lr, rho, eta...), in the spec's order."""
    names: dict[str, None] = {}
    for rule in report.rules:
        names.update(dict.fromkeys(report.spec.space_for(rule)))
    return list(names)


def runs_frame(report: SweepReport) -> pd.DataFrame:
    """One row per run: where it belongs, its searched settings (NaN where its rule reads none, e.g.
    sgd's rho), its last value of every metric it logged, and how it ended."""
    names = settings(report)
    logged = sorted({key for run in report.runs for key in run.final}, key=lambda k: (k not in CURVES, k))
    rows = []
    for run in report.runs:
        arm = Arm.parse(run.arm)
        space = report.spec.space_for(arm.rule)
        row = {
            "run_id": run.run_id,
            "arm": run.arm,
            "model": arm.model,
            "rule": arm.rule,
            "phase": run.phase,
            "seed": run.seed,
            "study_trial": run.order if run.order >= 0 else None,
            "outcome": run.outcome,
            "epochs": len(run.test_curve),
        }
        row.update({name: float(run.train[name]) if name in space else math.nan for name in names})
        row.update({key: run.final.get(key, math.nan) for key in logged})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS + names + logged)
    return frame.astype({"study_trial": "Int64"})


def cells_frame(report: SweepReport) -> pd.DataFrame:
    """One row per (model, rule): what its cell rests on (source, n), the final test accuracy's
    mean and standard deviation over seeds, the chosen setting, and the verdict of the reference
    rule (`report.against`) against it; the reference's own row has no verdict."""
    names = settings(report)
    verdicts = {(c.model, c.rule): c for c in report.comparisons}
    rows = []
    for (model, rule), cell in report.cells.items():
        row = {column: getattr(cell, column) for column in CELL_COLUMNS}
        row.update({name: cell.setting.get(name, math.nan) for name in names})
        row.update(dict.fromkeys(["against", "verdict", *COMPARED]))  # None (NaN in number columns): not compared
        comparison = verdicts.get((model, rule))
        if comparison is not None:
            row.update({column: getattr(comparison, column) for column in COMPARED})
            row.update(against=comparison.against, verdict=label(comparison.verdict, comparison.against))
        row["problem"] = cell.problem  # why the cell cannot be compared, if it cannot
        rows.append(row)
    return pd.DataFrame(rows, columns=CELL_COLUMNS + names + ["against", "verdict", *COMPARED, "problem"])
