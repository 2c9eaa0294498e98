"""The numbers of a sweep's report, read from MLflow alone (no Ray): per arm, the setting chosen on
validation accuracy and its final-epoch test accuracy over seeds, and SAM-GNS's differences.

A cell rests on the confirmation runs of the arm's best setting when the sweep has them, else on
the search runs of that setting (a grid repeats each setting over `seeds`). Settings are chosen
on the mean final `val_acc` of completed search trials, never on test accuracy.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from mlflow.tracking import MlflowClient
from scipy import stats

from ..errors import UserError
from ..spec import Arm, searched
from ..tracking.schema import (
    ARM_TAG,
    METRIC,
    OUTCOME_TAG,
    PARENT_ROLE,
    PARENT_RUN_TAG,
    PHASE_TAG,
    ROLE_TAG,
    STUDY_TRIAL_TAG,
    Outcome,
    Phase,
)

# TrainConfig params that differ between runs of one setting without making another setting
IGNORED = {"seed"}


@dataclass
class TrialRun:
    run_id: str
    name: str
    arm: str
    phase: str
    outcome: str  # finished, diverged, stopped early, failed, or running (interrupted sweep)
    train: dict[str, str]
    final: dict[str, float]  # last logged value of each curve
    order: int  # Optuna trial number in its arm's study (search runs); ties go to the earlier trial
    test_curve: list[float] = field(default_factory=list)  # test_acc per epoch

    @property
    def setting(self) -> tuple:
        return tuple(sorted((k, v) for k, v in self.train.items() if k not in IGNORED))


@dataclass
class Cell:
    model: str
    rule: str
    runs: list[TrialRun]  # the runs the cell's numbers rest on
    source: str  # "confirmation" or "search"
    setting: dict[str, float]
    search_trials: int
    failed: int
    diverged: int

    def values(self, key: str = "test_acc") -> list[float]:
        return [run.final[key] for run in self.runs]

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


@dataclass
class Difference:
    model: str
    rule: str  # SAM-GNS minus this rule
    diff: float | None
    low: float | None  # 95% confidence interval (Welch), None with fewer than 2 runs a side
    high: float | None


@dataclass
class SweepReport:
    name: str
    spec: dict[str, Any]
    parent_id: str
    finished: bool
    cells: dict[tuple[str, str], Cell]
    differences: list[Difference]
    runs: list[TrialRun]

    @property
    def models(self) -> list[str]:
        return self.spec["models"]

    @property
    def rules(self) -> list[str]:
        return self.spec["optimizers"]


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def load_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list[TrialRun]:
    found = client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_id}'", max_results=50000)
    runs = []
    for run in found:
        tags = run.data.tags
        outcome = tags.get(OUTCOME_TAG, Outcome.RUNNING)
        history = client.get_metric_history(run.info.run_id, "test_acc")
        runs.append(
            TrialRun(
                run_id=run.info.run_id,
                name=run.info.run_name,
                arm=tags[ARM_TAG],
                phase=tags.get(PHASE_TAG, Phase.SEARCH),
                outcome=outcome,
                train=dict(run.data.params),
                final=dict(run.data.metrics),
                order=int(tags.get(STUDY_TRIAL_TAG, -1)),
                test_curve=[m.value for m in sorted(history, key=lambda m: m.step)],
            )
        )
    return runs


def _cell(model: str, rule: str, runs: list[TrialRun]) -> Cell:
    arm = Arm(model, rule).key
    mine = [r for r in runs if r.arm == arm]
    search = [r for r in mine if r.phase == Phase.SEARCH]
    done = sorted((r for r in search if r.outcome == Outcome.FINISHED), key=lambda r: r.order)
    groups: dict[tuple, list[TrialRun]] = {}
    for run in done:
        groups.setdefault(run.setting, []).append(run)
    counts = {
        "search_trials": len(search),
        "failed": sum(r.outcome == Outcome.FAILED for r in mine),
        "diverged": sum(r.outcome == Outcome.DIVERGED for r in mine),
    }
    if not groups:
        return Cell(model, rule, [], "search", {}, **counts)
    # the highest mean final val_acc; on a tie the setting tried first, as the searcher decides
    best = max(groups.values(), key=lambda group: statistics.fmean(r.final[METRIC] for r in group))
    setting = {k: float(v) for k, v in searched({k: _number(v) for k, v in best[0].train.items()}).items()}
    confirm = [r for r in mine if r.phase == Phase.CONFIRM and r.outcome == Outcome.FINISHED]
    if confirm:
        return Cell(model, rule, confirm, "confirmation", setting, **counts)
    return Cell(model, rule, best, "search", setting, **counts)


def _difference(model: str, rule: str, ours: Cell, theirs: Cell) -> Difference:
    if ours.mean is None or theirs.mean is None:
        return Difference(model, rule, None, None, None)
    diff = ours.mean - theirs.mean
    if ours.n < 2 or theirs.n < 2:
        return Difference(model, rule, diff, None, None)
    va, vb = ours.std**2 / ours.n, theirs.std**2 / theirs.n
    se = math.sqrt(va + vb)
    if se == 0:
        return Difference(model, rule, diff, diff, diff)
    dof = (va + vb) ** 2 / (va**2 / (ours.n - 1) + vb**2 / (theirs.n - 1))  # Welch-Satterthwaite
    half = stats.t.ppf(0.975, dof) * se
    return Difference(model, rule, diff, diff - half, diff + half)


def build_report(uri: str, name: str) -> SweepReport:
    """Everything the report shows, from the tracking store at `uri`. Raises UserError when the
    store holds no sweep of that name."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    parents = (
        client.search_runs([experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = '{PARENT_ROLE}'") if experiment else []
    )
    if not parents:
        raise UserError(f"name: no sweep {name!r} in the MLflow store {uri}")
    parent = parents[0]
    # what was compared, from the parent's params (the full spec is its SPEC_ARTIFACT)
    spec = {key: parent.data.params[key].split(",") for key in ("models", "optimizers")}
    runs = load_runs(client, experiment.experiment_id, parent.info.run_id)
    cells = {(m, r): _cell(m, r, runs) for m in spec["models"] for r in spec["optimizers"]}
    differences = [
        _difference(m, r, cells[(m, "sam_gns")], cells[(m, r)])
        for m in spec["models"]
        for r in spec["optimizers"]
        if "sam_gns" in spec["optimizers"] and r != "sam_gns"
    ]
    return SweepReport(name, spec, parent.info.run_id, parent.info.status == "FINISHED", cells, differences, runs)
