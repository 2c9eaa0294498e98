"""What a report holds (SweepReport): the runs, cells, comparisons and regime every part of the
report renders, and the plain values its figures show (FigureData, for the figure process:
sweep/report/figures.py). Nothing here reads a store; sweep/report/data.py does."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..compare.stats import ALPHA, Comparison, procedure
from ..spec import Arm, SweepSpec
from ..tracking.schema import METRIC, Outcome, Phase
from . import frames
from .cells import Cell, TrialRun
from .figures import FigureData, SearchPoint


@dataclass
class SweepReport:
    name: str
    spec: SweepSpec
    parent_id: str
    finished: bool
    cells: dict[tuple[str, str], Cell]
    comparisons: list[Comparison]
    runs: list[TrialRun]
    regime: dict  # the numbers' regime: data set, split sizes, epochs, augmentation, batch, schedule
    warnings: list[str] = field(default_factory=list)  # chosen settings at the edge of their range
    notes: list[str] = field(default_factory=list)  # Optuna plots left out, and why (sweep/report/studies.py)

    @property
    def models(self) -> list[str]:
        return self.spec.models

    @property
    def rules(self) -> list[str]:
        return self.spec.optimizers

    @property
    def procedure(self) -> str:
        """How the comparisons were made, in a sentence or two (the report states it)."""
        return procedure(self.spec.looks, len(self.comparisons), self.spec.report.margin, ALPHA)

    @property
    def chosen_on_objective(self) -> bool:
        """False when no setting was chosen (val_fraction 0: every arm ran its one setting)."""
        return any(cell.chosen_on_objective for cell in self.cells.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per run: arm, phase, seed, settings, final metrics, outcome (frames.py)."""
        return frames.runs_frame(self)

    def cells_frame(self) -> pd.DataFrame:
        """One row per (model, rule): n, mean, std, setting, verdict against the reference (frames.py)."""
        return frames.cells_frame(self)

    def figure_data(self) -> FigureData:
        """What the report's own figures show: each cell's test_acc curves, and the objective of
        every completed search trial over its lr and rho."""
        curves = {key: [run.test_curve for run in cell.runs] for key, cell in self.cells.items()}
        done = [r for r in self.runs if r.phase == Phase.SEARCH and r.outcome == Outcome.FINISHED and METRIC in r.final]
        searched = [SearchPoint(*Arm.parse(r.arm), float(r.train["lr"]), float(r.train["rho"]), r.final[METRIC]) for r in done]
        return FigureData(self.models, self.rules, curves, searched)
