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
from pathlib import Path

import optuna
import pyarrow.fs
import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback

from ..cluster import placement
from ..cluster.cards import cluster_cards
from ..cluster.stores import check_shared_folder, check_stores, s3_filesystem
from ..defaults import SPEC_FILE, STATUS_EVERY_S, STOP_FILE, TUNE_SETTINGS, command
from ..errors import UserError
from ..search.generator import ArmSearch
from ..spec import Arm, SweepSpec, dump_spec, load_spec
from ..spec.budget import planned_trials
from ..spec.extend import extended
from ..tracking.callback import MlflowTracking
from ..tracking.journal import open_journal
from ..tracking.runs import SweepTracker
from ..tracking.schema import METRIC, MODE, Event
from ..tracking.status import Board, State, current_state, read_state
from .conclude import SweepOutcome, conclude
from .live import LiveStatus
from .progress import Progress
from .recovery import install as retry_failed_resets
from .scheduler import build_scheduler
from .signals import StopNow, StopSignals, armed
from .system_metrics import node_monitors
from .trainable import train_trial

PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"  # set per sweep from its slots (_trainable)


@contextlib.contextmanager
def tune_settings() -> Iterator[None]:
    """TUNE_SETTINGS (and the pending-trial limit `_trainable` sets) for one sweep, and the
    environment as it was afterwards: a notebook's or a test's next Tune experiment in the same
    process gets Tune's defaults back, its result.json files included (docs/platform.md)."""
    names = [*TUNE_SETTINGS, PENDING_ENV]
    before = {name: os.environ.get(name) for name in names}
    for name, value in TUNE_SETTINGS.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


QUIET_LOGGERS = (
    "mlflow.system_metrics",  # the driver's node monitor (sweep/tuning/system_metrics.py) says when it starts and stops
    "mlflow.store.db.utils",  # a new SQLite store's table creation: two lines of MLflow's own
)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Keep the terminal for the sweep's own progress lines while it runs: Optuna's trial lines
    and MLflow's notices at WARNING (a stricter level the user chose stays), and the levels as
    they were afterwards, so a notebook's next Optuna study prints its trials again."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels, verbosity = [logger.level for logger in loggers], optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _trainable(spec: SweepSpec):
    """The trial with its resources, each model placed on the cards of the connected cluster."""
    placements = placement.plan(spec, cluster_cards())
    for where in placements.values():
        print(f"placement {where.describe()}", flush=True)
    # With a custom searcher Tune keeps one trial pending at a time, so a cluster of many slots
    # fills one actor start after another (seen: four 0.25-GPU trials ran one at a time). Let it
    # queue as many as the cluster could run at once, unless the user capped it.
    if not spec.max_concurrent and PENDING_ENV not in os.environ:  # inside tune_settings: the user's value wins
        os.environ[PENDING_ENV] = str(_slots(placements.values()))
    return tune.with_resources(train_trial, placement.PlacementByModel(placements))


def _queued(spec: SweepSpec) -> int:
    """Trials the searcher suggests beyond `max_concurrent`: one where the cluster cannot run more
    than `max_concurrent` at once anyway. That trial waits as pending and takes the first actor a
    finished trial frees, so the searcher's tell and ask for it are not in the slot's gap between
    two trials (benchmarks/RESULTS.md, "Short-trial sweep"); without it, the ConcurrencyLimiter
    asks only after a trial has ended. Where `max_concurrent` is below what the cluster could run,
    it is the cap and nothing waits beyond it."""
    if not spec.max_concurrent:
        return 0  # Tune already keeps TUNE_MAX_PENDING_TRIALS_PG trials pending (_trainable)
    return int(spec.max_concurrent >= _slots(placement.plan(spec, cluster_cards()).values()))


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


def find_sweep(name: str, storage: Path, overrides: list[str] = ()) -> tuple[Path, SweepSpec]:
    """The folder and spec of a sweep to resume (checked before Ray starts), its budget raised by
    `overrides` (sweep/spec/extend.py says which fields may change)."""
    folder = Path(storage).resolve() / name
    if not (folder / SPEC_FILE).exists():
        raise UserError([f"name: no sweep {name!r} to resume in {folder.parent}"])
    state = read_state(folder)
    if current_state(state)[0] == State.RUNNING:  # two drivers on one Tune run would undo each other
        stop = command("stop", name, storage)
        raise UserError([f"name: sweep {name!r} is running (driver pid {state['pid']} on {state['host']}); `{stop}` first"])
    spec = saved = load_spec(folder / SPEC_FILE)
    if overrides:
        spec = extended(saved, folder / SPEC_FILE, list(overrides))
        grows = spec.search.trials_per_arm != saved.search.trials_per_arm
        if grows and Board.of(saved).read(folder).confirmations():
            raise UserError(
                [
                    "search.trials_per_arm: the sweep has trained confirmation seeds of its chosen settings, "
                    "which more search trials could change; raise confirm_seeds, or start a new sweep"
                ]
            )
    check_stores(spec)
    path, filesystem = tune_storage(spec)
    if not tune.Tuner.can_restore(f"{path}/{name}", storage_filesystem=filesystem):
        raise UserError([f"name: no sweep {name!r} to resume in {folder.parent}"])
    return folder, spec


@tune_settings()
@quiet_libraries()
def run_sweep(spec: SweepSpec, status_every: float = STATUS_EVERY_S) -> SweepOutcome:
    """Start a new sweep in the current Ray session."""
    check_new(spec)
    check_shared_folder(spec.checkpoints)
    trainable = _trainable(spec)  # a placement no node can satisfy stops here, before anything is written
    folder = spec.folder
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
            search_alg=ArmSearch(spec, _queued(spec)),  # its budget can grow on resume (sweep/search/generator.py)
            scheduler=scheduler,
            num_samples=sum(planned.values()),
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
    return _fit(spec, tracker, tuner, status_every)


@tune_settings()
@quiet_libraries()
def resume_sweep(spec: SweepSpec, status_every: float = STATUS_EVERY_S) -> SweepOutcome:
    """Continue a stopped or interrupted sweep (its spec as `find_sweep` read it): same studies,
    finished trials kept, unfinished ones resumed. A spec whose budget `find_sweep` raised
    extends the sweep, finished or not: saved first (the restored searcher reads it), then the
    parent run reopened with it, through the journal."""
    check_shared_folder(spec.checkpoints)
    folder = spec.folder
    (folder / STOP_FILE).unlink(missing_ok=True)  # a stop request was for the driver it stopped
    tracker = SweepTracker(spec)
    if spec != load_spec(folder / SPEC_FILE):
        temp = folder / f".{SPEC_FILE}.tmp"
        temp.write_text(dump_spec(spec))
        os.replace(temp, folder / SPEC_FILE)
        open_journal(folder, tracker).append(Event.EXTEND, spec=dump_spec(spec, redacted=True))
    path, filesystem = tune_storage(spec)
    tuner = tune.Tuner.restore(
        f"{path}/{spec.name}",
        trainable=_trainable(spec),
        storage_filesystem=filesystem,
        resume_unfinished=True,
        resume_errored=True,
    )
    return _fit(spec, tracker, tuner, status_every)


def _fit(spec: SweepSpec, tracker: SweepTracker, tuner: tune.Tuner, status_every: float) -> SweepOutcome:
    """Run the Tuner and end the sweep, SIGTERM, SIGHUP and `sweep stop` stopping both as Ctrl-C
    does, with the live status lines and the state file throughout."""
    retry_failed_resets()  # a pending trial whose reused actor died keeps its retries
    live = LiveStatus(spec, status_every)
    with StopSignals(spec.folder / STOP_FILE) as stops:
        try:
            with live:  # inside the signals' care: a second signal while it ends is still StopNow
                with node_monitors(spec):  # each node's utilisation, for as long as the trials run
                    results = stops.fit(tuner)
                stopped = stops.received is not None
                outcome = conclude(spec, tracker, results, stopped)
                ended = State.STOPPED if stopped else State.INTERRUPTED
                live.state = ended if outcome.interrupted else State.FINISHED
            if stops.received is not None:
                # A stopped sweep's Ray ends here, still in the signals' care: its shutdown takes
                # seconds, and a second signal in them must end the command at once too, not find
                # the handler Ray left (a bare exit with the signal's number, or a kill).
                armed(ray.shutdown)
        except StopNow:  # what the trials reported is in the journal, fsync'd per event
            outcome = SweepOutcome(spec.name, interrupted=True, at_once=True)
        outcome.signal, outcome.requested = stops.received, stops.requested
    (spec.folder / STOP_FILE).unlink(missing_ok=True)
    return outcome
