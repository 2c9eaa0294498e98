"""The report's figures: test accuracy per epoch of each cell's runs (the paper's Figures 1-2, as
curves) and the objective, validation accuracy, over the (lr, rho) plane of the search trials
(never test accuracy there: a map of the test set over settings invites choosing on it)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a head node
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from ..spec import Arm
from ..tracking.schema import METRIC
from .data import SweepReport


def curves(report: SweepReport, path: Path) -> None:
    """One panel per model; per rule, the mean test accuracy per epoch of its chosen setting's
    runs, with a band of one standard deviation where there are several seeds."""
    fig, axes = plt.subplots(1, len(report.models), figsize=(5 * len(report.models), 4), squeeze=False)
    for ax, model in zip(axes[0], report.models):
        for rule in report.rules:
            cell = report.cells[(model, rule)]
            if not cell.runs:
                continue
            length = min(len(run.test_curve) for run in cell.runs)
            values = np.array([run.test_curve[:length] for run in cell.runs])
            epochs = np.arange(1, length + 1)
            mean = values.mean(axis=0)
            ax.plot(epochs, mean, label=f"{rule} (n={cell.n})")
            if cell.n > 1:
                spread = values.std(axis=0, ddof=1)
                ax.fill_between(epochs, mean - spread, mean + spread, alpha=0.2)
        ax.set(title=model, xlabel="epoch", ylabel="test accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def lr_rho(report: SweepReport, path: Path) -> None:
    """One panel per rule: final validation accuracy (the objective) of every completed search
    trial over lr and rho (over lr alone for rules without rho), all models together, one marker
    per model. Empty panels say why: no validation split, or no completed trial."""
    markers = "osD^vP*X"
    fig, axes = plt.subplots(1, len(report.rules), figsize=(4.5 * len(report.rules), 4), squeeze=False)
    done = [r for r in report.runs if r.phase == "search" and r.outcome == "finished" and METRIC in r.final]
    scale = [r.final[METRIC] for r in done] or [0.0, 100.0]
    for ax, rule in zip(axes[0], report.rules):
        mine = [r for r in done if Arm.parse(r.arm).rule == rule]
        uses_rho = any(float(r.train["rho"]) != float(mine[0].train["rho"]) for r in mine) if mine else False
        shown = None
        for marker, model in zip(markers, report.models):
            runs = [r for r in mine if r.arm == Arm(model, rule).key]
            if not runs:
                continue
            lr = [float(r.train["lr"]) for r in runs]
            acc = [r.final[METRIC] for r in runs]
            if uses_rho:
                rho = [float(r.train["rho"]) for r in runs]
                style = {"vmin": min(scale), "vmax": max(scale), "cmap": "viridis"}
                shown = ax.scatter(lr, rho, c=acc, marker=marker, label=model, **style)
            else:
                ax.scatter(lr, acc, marker=marker, label=model)
        if not mine:
            ax.text(
                0.5, 0.5, "no val_acc (val_fraction 0)" if not done else "no completed trial", ha="center", transform=ax.transAxes
            )
        else:
            ax.set_xscale("log")
        if uses_rho and shown is not None:
            ax.set_yscale("log")
            ax.set(ylabel="rho")
            fig.colorbar(shown, ax=ax, label="validation accuracy (%)")
        else:
            ax.set(ylabel="validation accuracy (%)")
        ax.set(title=rule, xlabel="lr")
        ax.grid(alpha=0.3)
        if len(report.models) > 1 and mine:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
