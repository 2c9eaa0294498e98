"""The end of a sweep's Tuner run: what its results say (each arm's chosen setting, whether the
sweep is complete), the studies' and runs' loose ends closed, and the journal drained into MLflow
(docs/architecture.md, "End of the sweep")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ray import tune

from ..compare.choice import Result, choose, trial_result
from ..compare.seeds import Ended, wanted
from ..search.searcher import ArmSearcher
from ..spec import SweepSpec
from ..tracking.journal import close_journal, open_journal
from ..tracking.runs import SweepTracker
from ..tracking.schema import Event, Outcome, Phase

if TYPE_CHECKING:  # the driver never imports the report (docs/architecture.md)
    from ..report.contents import SweepReport


@dataclass
class SweepOutcome:
    name: str
    interrupted: bool
    best: dict[str, dict] = field(default_factory=dict)  # arm key -> its chosen setting's mean val_acc, test_acc, n, train
    failed: int = 0
    orphans: int = 0  # runs and study trials left open by a killed driver, closed at the end
    unsynced: str = ""  # what is not in MLflow yet and how to replay it; empty when all is there
    signal: int | None = None  # the stop signal that came (SIGINT, SIGTERM, SIGHUP), if any
    requested: bool = False  # the stop came from `sweep stop` (exit status as SIGTERM's)
    at_once: bool = False  # a second signal ended it without waiting for Tune's shutdown or MLflow
    storage: Path | None = None  # the checkpoint folder holding it: what `sweep resume` takes
    report: SweepReport | None = None  # the comparison, once a complete sweep is all in MLflow (sweep/api.py)
    report_dir: Path | None = None  # where its files were written


def _results(spec: SweepSpec, results: tune.ResultGrid) -> tuple[dict[str, list[Result]], Ended, dict[tuple, dict]]:
    """From Tune's results: each arm's search trials as the choice of a setting reads them, each
    arm's ended confirmation trials (seed -> final test_acc, None when it failed), and the
    search trials' TrainConfigs by (arm, study trial)."""
    search: dict[str, list[Result]] = {arm.key: [] for arm in spec.arms()}
    ended: Ended = {arm.key: {} for arm in spec.arms()}
    trains: dict[tuple, dict] = {}
    for result in results:
        config, metrics = result.config or {}, result.metrics or {}
        if config.get("arm") not in search:
            continue
        train, status = config["train"], metrics.get("status") if result.error is None else Outcome.FAILED
        if config.get("phase") == Phase.CONFIRM:
            if status in (Outcome.FINISHED, Outcome.DIVERGED, Outcome.FAILED):
                ended[config["arm"]][train["seed"]] = metrics.get("test_acc") if status == Outcome.FINISHED else None
            continue
        search[config["arm"]].append(trial_result(spec, config, metrics, status))
        trains[(config["arm"], config.get("study_trial") or 0)] = train
    return search, ended, trains


def conclude(spec: SweepSpec, tracker: SweepTracker, results: tune.ResultGrid, stopped: bool = False) -> SweepOutcome:
    """`stopped`: a stop signal or request reached the Tuner while it ran. Such a sweep is never
    complete: Tune's clean-up marks the trials the stop cut short TERMINATED, so its count alone
    would call a sweep stopped during its last trials finished (docs/platform.md, "Ray Tune")."""
    searcher = ArmSearcher(spec)  # one reader of the studies for the checks below
    search, ended, trains = _results(spec, results)
    chosen = {arm: choose(found) for arm, found in search.items()}
    # a complete sweep: every search trial, and the confirmations its results asked for
    confirmations = wanted(spec, {arm for arm, choice in chosen.items() if choice is not None}, ended)
    expected = sum(searcher.search_budgets().values()) + sum(confirmations.values())
    outcome = SweepOutcome(spec.name, interrupted=stopped or results.num_terminated + results.num_errors < expected)
    outcome.failed = results.num_errors
    for arm, choice in chosen.items():
        if choice is not None:
            train = trains[(arm, choice.results[0].order)]
            outcome.best[arm] = {"val_acc": choice.val_acc, "test_acc": choice.test_acc, "n": len(choice.results), "train": train}
    # the callback's journal (or, after a resume with nothing left to run, a new one)
    journal = open_journal(spec.folder, tracker)
    if not outcome.interrupted:
        outcome.orphans = searcher.close_orphans()
        journal.append(Event.ORPHANS)  # after every trial's own events: runs still open are orphans
        journal.append(Event.FINISH, best=outcome.best)
    if not journal.drain(verbose=True):  # up to journal.DRAIN_S without progress
        outcome.unsynced = journal.message(spec.name, spec.checkpoints.path)
        print(outcome.unsynced, flush=True)
    close_journal(journal)
    outcome.orphans += journal.orphans
    return outcome
