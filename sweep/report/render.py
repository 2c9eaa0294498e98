"""`sweep report NAME`: the comparison table in the paper's layout, SAM-GNS's differences with
confidence intervals, and plots; printed, written to a folder, and attached to the parent run.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mlflow.tracking import MlflowClient

from . import plots as report_plots
from .data import Cell, SweepReport, build_report

FILES = ("report.md", "table.csv", "test_acc_curves.png", "test_acc_lr_rho.png")


def _cell_text(cell: Cell) -> str:
    if cell.mean is None:
        return "failed" if cell.failed else "-"
    spread = f" ± {cell.std:.2f}" if cell.std is not None else ""
    return f"{cell.mean:.2f}{spread} (n={cell.n})"


def _setting_text(cell: Cell) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in cell.setting.items()) or "-"


def _flags(cell: Cell) -> str:
    notes = []
    if cell.failed:
        notes.append(f"{cell.failed} failed")
    if cell.diverged:
        notes.append(f"{cell.diverged} diverged")
    return "; ".join(notes)


def table_rows(report: SweepReport, value=_cell_text, mark: bool = False) -> list[list[str]]:
    """Header and one row per model; with `mark`, the best cell of each row (highest mean) gets *."""
    rows = [["model", *report.rules]]
    for model in report.models:
        cells = [report.cells[(model, rule)] for rule in report.rules]
        means = [c.mean for c in cells if c.mean is not None]
        best = max(means) if means and mark else None
        rows.append([model, *(value(c) + (" *" if c.mean is not None and c.mean == best else "") for c in cells)])
    return rows


def aligned(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip() for row in rows)


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]])


def _differences(report: SweepReport) -> list[str]:
    lines = []
    for d in report.differences:
        if d.diff is None:
            lines.append(f"{d.model}: sam_gns - {d.rule}: no result on one side")
        elif d.low is None:
            lines.append(f"{d.model}: sam_gns - {d.rule}: {d.diff:+.2f} points (too few seeds for a confidence interval)")
        else:
            lines.append(f"{d.model}: sam_gns - {d.rule}: {d.diff:+.2f} points, 95% CI [{d.low:+.2f}, {d.high:+.2f}] (Welch)")
    return lines


def _basis(report: SweepReport) -> list[str]:
    lines = []
    for (model, rule), cell in report.cells.items():
        flags = _flags(cell)
        lines.append(
            f"{model}/{rule}: {cell.search_trials} search trials; cell from {cell.n} {cell.source} run(s)"
            + (f"; {flags}" if flags else "")
        )
    return lines


def render(report: SweepReport, terminal: bool) -> str:
    """The whole report as text: aligned for a terminal, or Markdown."""
    table = aligned if terminal else markdown
    head = f"Sweep {report.name}: final-epoch test accuracy (%) of each arm's setting chosen on val_acc"
    parts = [head if terminal else f"# {head}"]
    if not report.finished:
        parts.append("NOTE: the sweep has not finished (interrupted or still running); the numbers cover the runs so far.")
    parts += [
        table(table_rows(report, mark=True)),
        "* best cell of the row. mean ± standard deviation over seeds; n = runs the cell rests on.",
        "Chosen settings:",
        table(table_rows(report, _setting_text)),
        "Best test accuracy over all epochs (the paper's measure, for comparison with its tables; optimistic):",
        table(table_rows(report, lambda c: f"{c.best_epoch_mean:.2f}" if c.best_epoch_mean is not None else "-")),
    ]
    if report.differences:
        parts += ["SAM-GNS against each rule (final-epoch test accuracy):", "\n".join(_differences(report))]
    parts += ["What each cell rests on:", "\n".join(_basis(report))]
    return "\n\n".join(parts) + "\n"


def csv_text(report: SweepReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "model",
            "optimizer",
            "test_acc_mean",
            "test_acc_std",
            "n",
            "source",
            "lr",
            "rho",
            "eta",
            "best_epoch_test_acc_mean",
            "search_trials",
            "failed",
            "diverged",
        ]
    )
    for (model, rule), cell in report.cells.items():
        writer.writerow(
            [
                model,
                rule,
                cell.mean,
                cell.std,
                cell.n,
                cell.source,
                cell.setting.get("lr"),
                cell.setting.get("rho"),
                cell.setting.get("eta"),
                cell.best_epoch_mean,
                cell.search_trials,
                cell.failed,
                cell.diverged,
            ]
        )
    return out.getvalue()


def write_report(uri: str, name: str, out: Path) -> SweepReport:
    """Build the report, write its files to `out`, attach them to the parent run under `report/`."""
    report = build_report(uri, name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(render(report, terminal=False))
    (out / "table.csv").write_text(csv_text(report))
    report_plots.curves(report, out / "test_acc_curves.png")
    report_plots.lr_rho(report, out / "test_acc_lr_rho.png")
    client = MlflowClient(tracking_uri=uri)
    for name_ in FILES:
        client.log_artifact(report.parent_id, str(out / name_), "report")
    return report
