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

from .figures import FigureData


def curves(data: FigureData, path: Path) -> None:
    """One panel per model; per rule, the mean test accuracy per epoch of its chosen setting's
    runs, with a band of one standard deviation where there are several seeds."""
    fig, axes = plt.subplots(1, len(data.models), figsize=(5 * len(data.models), 4), squeeze=False)
    for ax, model in zip(axes[0], data.models):
        for rule in data.rules:
            runs = data.curves[(model, rule)]
            if not runs:
                continue
            length = min(len(curve) for curve in runs)
            values = np.array([curve[:length] for curve in runs])
            epochs = np.arange(1, length + 1)
            mean = values.mean(axis=0)
            ax.plot(epochs, mean, label=f"{rule} (n={len(runs)})")
            if len(runs) > 1:
                spread = values.std(axis=0, ddof=1)
                ax.fill_between(epochs, mean - spread, mean + spread, alpha=0.2)
        ax.set(title=model, xlabel="epoch", ylabel="test accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def lr_rho(data: FigureData, path: Path) -> None:
    """One panel per rule: final validation accuracy (the objective) of every completed search
    trial over lr and rho (over lr alone for rules without rho), all models together, one marker
    per model. Empty panels say why: no validation split, or no completed trial."""
    markers = "osD^vP*X"
    fig, axes = plt.subplots(1, len(data.rules), figsize=(4.5 * len(data.rules), 4), squeeze=False)
    done = data.searched
    scale = [point.val_acc for point in done] or [0.0, 100.0]
    for ax, rule in zip(axes[0], data.rules):
        mine = [point for point in done if point.rule == rule]
        uses_rho = any(point.rho != mine[0].rho for point in mine) if mine else False
        shown = None
        for marker, model in zip(markers, data.models):
            points = [point for point in mine if point.model == model]
            if not points:
                continue
            lr = [point.lr for point in points]
            acc = [point.val_acc for point in points]
            if uses_rho:
                rho = [point.rho for point in points]
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
        if len(data.models) > 1 and mine:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
