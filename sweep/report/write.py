"""`sweep report NAME`'s files: the text (sweep/report/render.py), the figures and each arm's
Optuna plots, written to a folder and attached to the sweep's parent run under `report/`.

The figures are drawn by a process of their own (sweep/report/figures.py), started before this
module imports MLflow, so each of the two processes' imports and work overlap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .figures import CURVES, LR_RHO, FigureProcess

if TYPE_CHECKING:
    from ..spec import SweepSpec
    from .contents import SweepReport

# every report's files; each arm's Optuna plots (sweep/report/studies.py) come on top where its study has trials
FILES = ("report.md", "report.json", "table.csv", CURVES, LR_RHO)


def write_report(uri: str, name: str, out: Path, saved: SweepSpec | None = None) -> SweepReport:
    """Build the report, write its files to `out`, attach them to the parent run under `report/`.
    Each arm's Optuna plots read the studies of `saved`, the spec as the sweep's folder keeps it
    (with its stores' passwords), drawn at once; without it, of the parent run's copy of the spec
    (passwords redacted). What is left out of them is said in `report.notes`. Raises UserError
    when the store holds no sweep `name`, and then writes nothing."""
    with FigureProcess() as figures:
        if saved is not None:
            figures.studies(saved, saved.tracking.optuna_storage)
        # MLflow (and scipy) are imported here, once the figure process runs: see the module's docstring
        from mlflow.tracking import MlflowClient

        from .data import build_report
        from .render import csv_text, json_report, render

        early = (lambda spec: figures.studies(spec, spec.tracking.optuna_storage)) if saved is None else None
        report = build_report(uri, name, on_spec=early)
        figures.report(report.figure_data())
        studies, report.notes = figures.finish()
        figures.files_into(out)
    (out / "report.md").write_text(render(report, terminal=False))
    (out / "report.json").write_text(json.dumps(json_report(report), indent=2) + "\n")
    (out / "table.csv").write_text(csv_text(report))
    client = MlflowClient(tracking_uri=uri)
    for file_name in (*FILES, *studies):
        client.log_artifact(report.parent_id, str(out / file_name), "report")
    return report
