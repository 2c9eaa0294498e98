"""The report as text: the comparison table in the paper's layout with each cell marked only by
what its comparison's verdict supports, the comparisons with their test, n, interval and Holm
p-value, the regime the numbers belong to; for the terminal, Markdown, JSON and CSV. Written to
a folder with the figures by sweep/report/write.py.
"""

from __future__ import annotations

import csv
import io

from ..compare.stats import Comparison, Verdict, label
from .cells import Cell
from .contents import SweepReport

# what a cell of a compared rule is marked with: what the reference rule's comparison with it says
MARKS = {Verdict.BETTER: " <", Verdict.WORSE: " >", Verdict.EQUIVALENT: " ≈"}


def _cell_text(cell: Cell) -> str:
    if cell.mean is None:
        return "failed" if cell.failed else "-"
    spread = f" ± {cell.std:.2f}" if cell.std is not None else ""
    flag = " !" if cell.problem else ""
    return f"{cell.mean:.2f}{spread} (n={cell.n}){flag}"


def _setting_text(cell: Cell) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in cell.setting.items()) or "-"


def _verdicts(report: SweepReport) -> dict[tuple[str, str], str]:
    return {(c.model, c.rule): c.verdict for c in report.comparisons}


def table_rows(report: SweepReport, value=_cell_text, mark: bool = False) -> list[list[str]]:
    """Header and one row per model; with `mark`, each compared rule's cell carries its verdict's mark."""
    verdicts = _verdicts(report) if mark else {}
    rows = [["model", *report.rules]]
    for model in report.models:
        cells = [report.cells[(model, rule)] for rule in report.rules]
        rows.append([model, *(value(c) + MARKS.get(verdicts.get((model, c.rule)), "") for c in cells)])
    return rows


def aligned(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip() for row in rows)


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]])


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def comparison_text(c: Comparison) -> str:
    """One comparison in a line: the difference, its interval, p and Holm's p, what they rest on
    (test and n), and the verdict."""
    head = f"{c.model}: {c.against} - {c.rule}: "
    if c.diff is None:
        return head + f"no difference ({c.reason}); {label(c.verdict, c.against)}"
    interval = f", {100 * c.level:.4g}% CI [{_points(c.ci_low)}, {_points(c.ci_high)}]" if c.ci_low is not None else ""
    tested = f", p {_p(c.p)}, Holm p {_p(c.p_holm)}" if c.p is not None else ""
    return head + f"{_points(c.diff)} points{interval}{tested} ({c.reason}): {label(c.verdict, c.against)}"


def _regime_text(regime: dict) -> str:
    def shown(key: str, text) -> str:
        value = regime[key]
        if isinstance(value, dict):  # differs between models
            return ", ".join(f"{model} {text(v)}" for model, v in value.items())
        return text(value)

    return (
        f"Regime: {shown('dataset', str)}; {shown('train_images', lambda v: f'{v:,}')} training, "
        f"{shown('val_images', lambda v: f'{v:,}')} validation, {shown('test_images', lambda v: f'{v:,}')} test images; "
        f"{shown('epochs', lambda v: f'{v} epochs')}; {shown('augment', lambda v: 'crop+flip' if v else 'no augmentation')}; "
        f"batch {shown('batch_size', str)}; {shown('lr_schedule', lambda v: f'{v} lr schedule')}."
    )


def _basis(report: SweepReport) -> list[str]:
    lines = []
    for (model, rule), cell in report.cells.items():
        notes = [f"{cell.failed} failed"] * bool(cell.failed) + [f"{cell.diverged} diverged"] * bool(cell.diverged)
        seeds = f" (seeds {', '.join(map(str, cell.seeds))})" if cell.runs else ""
        basis = f"cell from {cell.n} {cell.source} run(s){seeds}" if cell.n else "no run to compute the cell from"
        line = f"{model}/{rule}: {cell.search_trials} search trials; {basis}"
        line += "".join(f"; {note}" for note in notes) + (f"; ! {cell.problem}" if cell.problem else "")
        lines.append(line)
    return lines


def render(report: SweepReport, terminal: bool) -> str:
    """The whole report as text: aligned for a terminal, or Markdown."""
    table = aligned if terminal else markdown
    against = report.spec.report.against
    chosen = "each arm's setting chosen on val_acc" if report.chosen_on_objective else "each arm's one setting"
    head = f"Sweep {report.name}: final-epoch test accuracy (%) of {chosen}"
    parts = [head if terminal else f"# {head}", _regime_text(report.regime)]
    if not report.finished:
        parts.append("NOTE: the sweep has not finished (interrupted or still running); the numbers cover the runs so far.")
    legend = "mean ± standard deviation over seeds; n = runs the cell rests on; ! = see 'What each cell rests on'." + (
        f"\nMarks, from each comparison's verdict: < {against} is better than this rule; > {against} is worse; "
        f"≈ equivalent (within ±{report.spec.report.margin:g} points); unmarked: undecided."
        if report.comparisons
        else ""
    )
    parts += [table(table_rows(report, mark=True)), legend]
    if report.chosen_on_objective:
        parts += ["Chosen settings (on validation accuracy):", table(table_rows(report, _setting_text))]
    else:
        parts.append("No setting was chosen: without a validation split (val_fraction 0) each arm ran its one setting.")
    if report.warnings:
        parts.append("Warnings:\n" + "\n".join(f"- {line}" for line in report.warnings))
    parts += [
        "Best test accuracy over all epochs (the paper's measure, for comparison with its tables; optimistic):",
        table(table_rows(report, lambda c: f"{c.best_epoch_mean:.2f}" if c.best_epoch_mean is not None else "-")),
    ]
    if report.comparisons:
        parts += [
            f"{against} against each rule (final-epoch test accuracy, {against} minus the rule):",
            "\n".join(comparison_text(c) for c in report.comparisons),
            report.procedure,
        ]
    parts += ["What each cell rests on:", "\n".join(_basis(report))]
    if report.notes:
        parts.append("Optuna's plots left out: " + "; ".join(report.notes) + ".")
    return "\n\n".join(parts) + "\n"


def json_report(report: SweepReport) -> dict:
    """The report for programs: regime, cells (values[i] is the final test_acc of the run trained
    with seeds[i]) and comparisons (diff = against minus rule)."""
    return {
        "name": report.name,
        "finished": report.finished,
        "regime": report.regime,
        "chosen_on": "val_acc" if report.chosen_on_objective else None,
        "cells": [
            {
                "model": cell.model,
                "rule": cell.rule,
                "source": cell.source,
                "n": cell.n,
                "mean": cell.mean,
                "std": cell.std,
                "seeds": cell.seeds,
                "values": cell.values(),
                "setting": cell.setting,
                "problem": cell.problem,
                "search_trials": cell.search_trials,
                "failed": cell.failed,
                "diverged": cell.diverged,
            }
            for cell in report.cells.values()
        ],
        "comparisons": [c.to_json() for c in report.comparisons],
        "procedure": report.procedure,
        "margin": report.spec.report.margin,
        "looks": report.spec.looks,
        "warnings": report.warnings,
    }


def csv_text(report: SweepReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["model", "optimizer", "test_acc_mean", "test_acc_std", "n", "source", "lr", "rho", "eta"]
    writer.writerow([*header, "best_epoch_test_acc_mean", "search_trials", "failed", "diverged", "problem"])
    for (model, rule), cell in report.cells.items():
        setting = [cell.setting.get(key) for key in ("lr", "rho", "eta")]
        counts = [cell.search_trials, cell.failed, cell.diverged, cell.problem or ""]
        writer.writerow([model, rule, cell.mean, cell.std, cell.n, cell.source, *setting, cell.best_epoch_mean, *counts])
    return out.getvalue()
