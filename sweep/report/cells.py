"""One cell of the report: an arm's chosen setting (sweep/compare/choice.py, from its search runs)
and the final-epoch test accuracies it rests on, by seed; the regime the numbers belong to; and
warnings for settings chosen at the edge of their range.

A cell rests on the arm's confirmation runs when the spec asks for them (`confirm_seeds`), else on
the search runs of the chosen setting (a grid repeats each setting over seeds). A confirmation run
that ended without a result (failed, diverged, lost, or not run yet) is named in the cell and
makes its comparisons undecided: the cell never falls back silently to the runs that survived.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from trainers.catalogue import held_out

from ..compare.choice import Result, choose
from ..compare.seeds import sample
from ..compare.stats import Sample
from ..spec import Arm, Choice, Range, SweepSpec, searched
from ..tracking.schema import METRIC, Outcome, Phase

EDGE = 0.05  # a value in the outer 5% of its range (on the log scale for a log range) is at its edge


@dataclass
class TrialRun:
    run_id: str
    name: str
    arm: str
    phase: str
    outcome: str  # finished, diverged, stopped early, failed, lost, or running (interrupted sweep)
    train: dict[str, str]  # its TrainConfig, as MLflow params (text)
    final: dict[str, float]  # last logged value of each curve
    order: int  # Optuna trial number in its arm's study (search runs); ties go to the earlier trial
    test_curve: list[float] = field(default_factory=list)  # test_acc per epoch

    @property
    def seed(self) -> int:
        return int(self.train["seed"])

    def result(self, spec: SweepSpec) -> Result:
        """The run as the choice of a setting reads it (the searcher reads the same from Optuna)."""
        return Result(
            setting=Result.key(spec.setting(self.train["optimizer"], self.train)),
            seed=self.seed,
            outcome=self.outcome,
            val_acc=self.final.get(METRIC),
            val_loss=self.final.get("val_loss"),
            order=self.order,
            test_acc=self.final.get("test_acc"),
        )


@dataclass
class Cell:
    model: str
    rule: str
    runs: list[TrialRun]  # the finished runs the cell's numbers rest on, by seed
    source: str  # "confirmation", "search", or "none"
    setting: dict[str, float]  # the chosen setting's searched values (lr, and rho/eta where the rule reads them)
    chosen_on_objective: bool  # False when nothing was measured to choose on (val_fraction 0)
    search_trials: int
    failed: int
    diverged: int
    problem: str | None = None  # why the cell cannot be compared (a confirmation run without a result)

    @property
    def seeds(self) -> list[int]:
        return [run.seed for run in self.runs]

    def values(self, key: str = "test_acc") -> list[float]:
        return [run.final[key] for run in self.runs]

    @property
    def sample(self) -> Sample:
        base = sample(dict(zip(self.seeds, self.values())))
        return Sample(base.values, self.problem)

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values()) if self.runs else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values()) if self.n >= 2 else None

    @property
    def best_epoch_mean(self) -> float | None:
        """The paper's measure: the best test accuracy over all epochs, averaged over runs."""
        return statistics.fmean(max(run.test_curve) for run in self.runs) if self.runs else None


def make_cell(spec: SweepSpec, arm: Arm, runs: list[TrialRun]) -> Cell:
    mine = [r for r in runs if r.arm == arm.key]
    search = sorted((r for r in mine if r.phase == Phase.SEARCH), key=lambda r: r.order)
    counts = {
        "search_trials": len(search),
        "failed": sum(r.outcome == Outcome.FAILED for r in mine),
        "diverged": sum(r.outcome == Outcome.DIVERGED for r in mine),
    }
    choice = choose(r.result(spec) for r in search)
    if choice is None:
        problem = "no setting chosen: no search trial finished without diverging"
        return Cell(arm.model, arm.rule, [], "none", {}, False, problem=problem, **counts)
    group = [r for r in search if r.result(spec).setting == Result.key(choice.setting) and r.outcome == Outcome.FINISHED]
    shown = {k: float(v) for k, v in searched({k: _number(v) for k, v in group[0].train.items()}).items()}
    if spec.confirm_range[0] == 0:
        runs_ = sorted(group, key=lambda r: r.seed)
        return Cell(arm.model, arm.rule, runs_, "search", shown, choice.on_objective, **counts)
    confirm = sorted((r for r in mine if r.phase == Phase.CONFIRM), key=lambda r: r.seed)
    done = [r for r in confirm if r.outcome == Outcome.FINISHED]
    lost = [r for r in confirm if r.outcome != Outcome.FINISHED]
    problem = None
    if lost:
        what = ", ".join(f"seed {r.seed} {r.outcome}" for r in lost)
        problem = f"{len(lost)} of {len(confirm)} confirmation runs without a result ({what})"
    elif not done:
        problem = "no confirmation run yet"
    return Cell(arm.model, arm.rule, done, "confirmation", shown, choice.on_objective, problem=problem, **counts)


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def regime(spec: SweepSpec) -> dict:
    """What the numbers belong to: the data set, its splits' sizes, the schedule of training. A
    field that differs between models (per-model train overrides) maps each model to its value."""
    per_model = {}
    for model in spec.models:
        rule = spec.optimizers[0]
        cfg = spec.train_config(model, rule, spec.seeds[0], spec.corner(rule, "low"))
        shape = cfg.data_shape()
        val = held_out(shape.train_images, cfg.val_fraction)
        per_model[model] = {
            "dataset": cfg.dataset,
            "train_images": shape.train_images - val,
            "val_images": val,
            "test_images": shape.images - shape.train_images,
            "epochs": cfg.epochs,
            "augment": cfg.augment,
            "batch_size": cfg.batch_size,
            "lr_schedule": cfg.lr_schedule,
        }
    fields = per_model[spec.models[0]]
    return {
        key: value if all(m[key] == value for m in per_model.values()) else {model: m[key] for model, m in per_model.items()}
        for key, value in fields.items()
    }


def edge_warnings(spec: SweepSpec, cell: Cell) -> list[str]:
    """A chosen value in the outer 5% of its range, or at the end of its choices: the best setting
    may lie beyond what was searched."""
    warnings = []
    for name, dim in spec.space_for(cell.rule).items():
        value = cell.setting.get(name)
        if value is None:
            continue
        where = None
        if isinstance(dim, Range):
            scale = math.log if dim.log else float
            position = (scale(value) - scale(dim.low)) / (scale(dim.high) - scale(dim.low))
            where = "lower" if position <= EDGE else "upper" if position >= 1 - EDGE else None
            span = f"range [{dim.low:g}, {dim.high:g}]"
        elif isinstance(dim, Choice) and len(set(dim.choices)) > 1:
            where = "lower" if value == min(dim.choices) else "upper" if value == max(dim.choices) else None
            span = f"choices {', '.join(f'{c:g}' for c in sorted(dim.choices))}"
        if where:
            warnings.append(
                f"{cell.model}/{cell.rule}: {name} {value:.3g} lies at the {where} edge of its {span}; "
                "the best setting may lie beyond it"
            )
    return warnings
