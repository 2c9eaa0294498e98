"""The report's figures: test accuracy per epoch (the paper's Figures 1-2, as curves) and test
accuracy over the (lr, rho) plane from the search trials."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a head node
import matplotlib.pyplot as plt
import numpy as np

from ..spec import Arm
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
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def lr_rho(report: SweepReport, path: Path) -> None:
    """One panel per rule: final test accuracy of every completed search trial over lr and rho
    (over lr alone for rules without rho), all models together, one marker per model."""
    markers = "osD^vP*X"
    fig, axes = plt.subplots(1, len(report.rules), figsize=(4.5 * len(report.rules), 4), squeeze=False)
    done = [r for r in report.runs if r.phase == "search" and r.outcome == "finished"]
    scale = [r.final["test_acc"] for r in done] or [0.0, 100.0]
    for ax, rule in zip(axes[0], report.rules):
        mine = [r for r in done if Arm.parse(r.arm).rule == rule]
        uses_rho = any(float(r.train["rho"]) != float(mine[0].train["rho"]) for r in mine) if mine else False
        for marker, model in zip(markers, report.models):
            runs = [r for r in mine if r.arm == Arm(model, rule).key]
            if not runs:
                continue
            lr = [float(r.train["lr"]) for r in runs]
            acc = [r.final["test_acc"] for r in runs]
            if uses_rho:
                shown = ax.scatter(
                    lr,
                    [float(r.train["rho"]) for r in runs],
                    c=acc,
                    vmin=min(scale),
                    vmax=max(scale),
                    marker=marker,
                    label=model,
                    cmap="viridis",
                )
            else:
                shown = ax.scatter(lr, acc, marker=marker, label=model)
        ax.set_xscale("log")
        if uses_rho:
            ax.set_yscale("log")
            ax.set(ylabel="rho")
            fig.colorbar(shown, ax=ax, label="test accuracy (%)")
        else:
            ax.set(ylabel="test accuracy (%)")
        ax.set(title=rule, xlabel="lr")
        ax.grid(alpha=0.3)
        if len(report.models) > 1:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
