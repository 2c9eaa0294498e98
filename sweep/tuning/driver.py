"""Build and run the sweep's Tuner: one Tune run over all arms, resumable by name.

Resources per trial, the failure policy (retry from the last checkpoint), the optional ASHA
scheduler, the arm-by-arm Optuna searcher and the MLflow and progress callbacks are all set here,
so the tuner's API is in one file (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pyarrow.fs
import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback

from ..cluster import placement
from ..cluster.cards import cluster_cards, detect_cards, node_labels
from ..cluster.nodes import use_cluster_token
from ..cluster.stores import check_shared_folder, check_stores, s3_filesystem
from ..compare.choice import Result, choose
from ..compare.seeds import Ended, wanted
from ..defaults import SPEC_FILE, command
from ..errors import UserError
from ..search import space
from ..search.searcher import ArmSearcher
from ..spec import Arm, SweepSpec, dump_spec, load_spec
from ..tracking.callback import MlflowTracking
from ..tracking.journal import close_journal, open_journal
from ..tracking.runs import SweepTracker
from ..tracking.schema import METRIC, MODE, Event, Outcome, Phase
from .progress import Progress, trial_result
from .scheduler import build_scheduler
from .signals import StopNow, StopSignals
from .system_metrics import node_monitors
from .trainable import train_trial

PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"
_USERS_ENV = frozenset(os.environ)  # a value the user set before starting wins over ours


@dataclass
class SweepOutcome:
    name: str
    interrupted: bool
    best: dict[str, dict] = field(default_factory=dict)  # arm key -> its chosen setting's mean val_acc, test_acc, n, train
    failed: int = 0
    orphans: int = 0  # runs and study trials left open by a killed driver, closed at the end
    unsynced: str = ""  # what is not in MLflow yet and how to replay it; empty when all is there
    signal: int | None = None  # the stop signal that came (SIGINT, SIGTERM, SIGHUP), if any
    at_once: bool = False  # a second signal ended it without waiting for Tune's shutdown or MLflow


def _quiet() -> None:
    """Keep the terminal for the sweep's own progress lines."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # one checkpoint per epoch of short trials makes Tune warn about snapshot frequency
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # MLflow holds the curves: no CSV and TensorBoard copy of every result written by the
    # driver; its result.json stays (JsonLoggerCallback in run_sweep)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Trials without a validation split (val_fraction 0, the paper's protocol) report no val_acc,
    # which Tune's check of the objective would take for a broken trainable; the spec allows it
    # only where nothing is chosen or stopped on it.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Connect to the cluster at `address` (or $RAY_ADDRESS), else start a local Ray; shut it
    down on the way out, so the command's workers end with it."""
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        use_cluster_token()  # a cluster started by `sweep cluster head` refuses clients without it
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        # address="local": never attach to a stale cluster record (docs/platform.md); no dashboard;
        # this machine's cards declared as a cluster node would, for placement by card
        labels = node_labels(detect_cards())
        ray.init(address="local", include_dashboard=False, labels=labels, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


def _trainable(spec: SweepSpec):
    """The trial with its resources, each model placed on the cards of the connected cluster."""
    placements = placement.plan(spec, cluster_cards())
    for where in placements.values():
        print(f"placement {where.describe()}", flush=True)
    # With a custom searcher Tune keeps one trial pending at a time, so a cluster of many slots
    # fills one actor start after another (seen: four 0.25-GPU trials ran one at a time). Let it
    # queue as many as the cluster could run at once, unless the user capped it.
    if not spec.max_concurrent and PENDING_ENV not in _USERS_ENV:
        os.environ[PENDING_ENV] = str(_slots(placements.values()))
    return tune.with_resources(train_trial, placement.PlacementByModel(placements))


def _slots(placements) -> int:
    """How many trials the connected cluster could run at once, for the most packable model."""
    total = ray.cluster_resources()
    return max(
        1,
        *(int(min(total.get("CPU", 1) / p.cpus, total.get("GPU", 0) / p.gpu if p.gpu else float("inf"))) for p in placements),
    )


def _trial_name(trial) -> str:
    arm = Arm.parse(trial.config["arm"])
    return f"{arm.model}-{arm.rule}-{trial.trial_id}"


def planned_trials(spec: SweepSpec) -> dict[str, int]:
    """Per arm key, the trials the arm runs at most: its search budget, then its confirmation
    seeds (which run only when its search completed a trial; with adaptive seeds, up to max)."""
    return {arm.key: space.search_budget(spec, arm.rule) + spec.confirm_range[1] for arm in spec.arms()}


def check_new(spec: SweepSpec) -> None:
    """A new sweep's name must be new in its checkpoint folder (checked before Ray starts)."""
    folder = spec.folder
    if folder.exists():
        resume = command("resume", spec.name, spec.checkpoints.path)
        raise UserError([f"name: sweep {spec.name!r} already exists in {folder}; `{resume}` continues it"])


def tune_storage(spec: SweepSpec) -> tuple[str, pyarrow.fs.FileSystem | None]:
    """Where Ray Tune keeps results and checkpoints: the checkpoint folder, or the S3 bucket
    (pyarrow takes the path without its scheme)."""
    if spec.checkpoints.storage is None:
        return str(spec.checkpoints.path), None
    return spec.checkpoints.storage.removeprefix("s3://").rstrip("/"), s3_filesystem(spec.checkpoints)


def find_sweep(name: str, storage: Path) -> tuple[Path, SweepSpec]:
    """The folder and spec of a sweep to resume (checked before Ray starts)."""
    folder = Path(storage).resolve() / name
    if not (folder / SPEC_FILE).exists():
        raise UserError([f"name: no sweep {name!r} to resume in {folder.parent}"])
    spec = load_spec(folder / SPEC_FILE)
    check_stores(spec)
    path, filesystem = tune_storage(spec)
    if not tune.Tuner.can_restore(f"{path}/{name}", storage_filesystem=filesystem):
        raise UserError([f"name: no sweep {name!r} to resume in {folder.parent}"])
    return folder, spec


def run_sweep(spec: SweepSpec) -> SweepOutcome:
    """Start a new sweep in the current Ray session."""
    check_new(spec)
    check_shared_folder(spec.checkpoints)
    trainable = _trainable(spec)  # a placement no node can satisfy stops here, before anything is written
    folder = spec.folder
    _quiet()
    folder.mkdir(parents=True)
    (folder / SPEC_FILE).write_text(dump_spec(spec))  # what `sweep resume` reads
    tracker = SweepTracker(spec)
    planned = planned_trials(spec)
    scheduler = build_scheduler(spec)
    storage_path, filesystem = tune_storage(spec)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=ArmSearcher(spec),
            scheduler=scheduler,
            num_samples=sum(planned.values()),
            max_concurrent_trials=spec.max_concurrent or None,
            reuse_actors=True,  # a trial starts in a warm worker: no new process, no torch import
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=storage_path,
            storage_filesystem=filesystem,
            failure_config=tune.FailureConfig(max_failures=spec.retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[MlflowTracking(tracker, folder), Progress(planned, spec), JsonLoggerCallback()],
            verbose=0,
        ),
    )
    return _fit(spec, tracker, tuner)


def resume_sweep(spec: SweepSpec) -> SweepOutcome:
    """Continue an interrupted sweep (its spec as `find_sweep` read it): same studies, finished
    trials kept, unfinished ones resumed."""
    check_shared_folder(spec.checkpoints)
    _quiet()
    path, filesystem = tune_storage(spec)
    tuner = tune.Tuner.restore(
        f"{path}/{spec.name}",
        trainable=_trainable(spec),
        storage_filesystem=filesystem,
        resume_unfinished=True,
        resume_errored=True,
    )
    return _fit(spec, SweepTracker(spec), tuner)


def _fit(spec: SweepSpec, tracker: SweepTracker, tuner: tune.Tuner) -> SweepOutcome:
    """Run the Tuner and end the sweep, SIGTERM and SIGHUP stopping both as Ctrl-C does."""
    with StopSignals() as stops:
        try:
            with node_monitors(spec):  # each node's utilisation, for as long as the trials run
                results = stops.fit(tuner)
            outcome = _conclude(spec, tracker, results)
        except StopNow:  # what the trials reported is in the journal, fsync'd per event
            outcome = SweepOutcome(spec.name, interrupted=True, at_once=True)
        outcome.signal = stops.received
        return outcome


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


def _conclude(spec: SweepSpec, tracker: SweepTracker, results: tune.ResultGrid) -> SweepOutcome:
    searcher = ArmSearcher(spec)  # one reader of the studies for the checks below
    search, ended, trains = _results(spec, results)
    chosen = {arm: choose(found) for arm, found in search.items()}
    # a complete sweep: every search trial, and the confirmations its results asked for
    confirmations = wanted(spec, {arm for arm, choice in chosen.items() if choice is not None}, ended)
    expected = sum(searcher.search_budgets().values()) + sum(confirmations.values())
    outcome = SweepOutcome(spec.name, interrupted=results.num_terminated + results.num_errors < expected)
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
