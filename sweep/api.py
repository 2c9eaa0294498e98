"""The Python API, and the one implementation of the sweep commands: `sweep validate`, `run`,
`resume`, `report` and `sync` parse their flags and print (sweep/cli/sweeps.py); what they do is
here, so a notebook's `sweep.run(...)` validates, checks the stores and resolves paths exactly as
the command line does (README.md, "Python API"). Bad input raises UserError before anything
starts or is written.

Ray, MLflow and Optuna are imported inside the functions that need them: `import sweep` and
`sweep validate` load none of them (tests/test_cli.py checks what each command imports).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from . import defaults
from .errors import UserError
from .spec import SweepSpec, apply_override, load_spec, read_saved_spec, validate_spec

if TYPE_CHECKING:
    from .report.contents import SweepReport
    from .tuning.conclude import SweepOutcome


def validate(spec: str | os.PathLike | Mapping, overrides: Iterable[str] = ()) -> SweepSpec:
    """The spec, from a YAML file or a dict of the same fields, with `KEY=VALUE` overrides (the
    CLI's `--set`) applied, validated as `sweep validate` does. Raises UserError."""
    if isinstance(overrides, str):
        raise UserError([f"overrides: a list of KEY=VALUE strings, e.g. [{overrides!r}], not one string"])
    if isinstance(spec, Mapping):
        raw = copy.deepcopy(dict(spec))  # the caller's dict stays as it was
        for item in overrides:
            apply_override(raw, item)
        return validate_spec(raw)
    if isinstance(spec, (str, os.PathLike)):
        return load_spec(Path(spec), list(overrides))
    raise UserError([f"spec: a path to a YAML spec or a dict of its fields, not {type(spec).__name__}"])


def plan(spec: SweepSpec) -> str:
    """What a spec would run, in one line: its arms and trials (`sweep validate` prints it)."""
    arms = len(spec.arms())
    trials = sum(spec.search_budget(arm.rule) for arm in spec.arms())
    low, high = spec.confirm_range
    count = f"{low * arms}" if low == high else f"{low * arms} to {high * arms}"
    confirm = f" + {count} confirmation" if high else ""
    return f"{spec.name}: {arms} arms, {trials} trials ({spec.search.method}){confirm}"


def run(
    spec: str | os.PathLike | Mapping,
    overrides: Iterable[str] = (),
    address: str | None = None,
    status_every: float = defaults.STATUS_EVERY_S,
) -> SweepOutcome:
    """Run a new sweep to its end in this process: on the Ray cluster at `address` (default:
    $RAY_ADDRESS, else a local Ray started and stopped here). A complete sweep's report is written
    to reports/NAME/ and attached (`outcome.report`, `outcome.report_dir`)."""
    from .cluster.stores import check_stores
    from .tuning.driver import check_new, run_sweep
    from .tuning.session import ray_session

    spec = validate(spec, overrides).resolved()
    check_new(spec)  # bad input starts nothing
    check_stores(spec)  # nor does a store that cannot be reached (the cluster profile's server, database, bucket)
    if not (address or os.environ.get("RAY_ADDRESS")):
        _check_data(spec)  # on a local Ray the trials read this machine's data folder
    with ray_session(address):
        outcome = run_sweep(spec, status_every)
    return _finish(outcome, spec)


def _check_data(spec: SweepSpec) -> None:
    """Load the data set once before anything starts, so a missing or corrupt folder is one clear
    error instead of every trial failing through its retries."""
    from trainers.build import load_data
    from trainers.errors import DataNotFoundError

    try:
        load_data(spec.train_config(*spec.arms()[0], spec.seeds[0], {}))
    except DataNotFoundError as err:
        raise UserError([f"dataset: {err}"]) from None


def resume(
    name: str,
    overrides: Iterable[str] | None = None,
    storage: str | os.PathLike | None = None,
    address: str | None = None,
    status_every: float = defaults.STATUS_EVERY_S,
) -> SweepOutcome:
    """Continue a stopped sweep by name (its folder under `storage`, default $SWEEP_CHECKPOINTS,
    else sweeps): the same studies, finished trials kept. `overrides` (`search.trials_per_arm=N`,
    `confirm_seeds=N`) raise the budget of a stopped or finished sweep (sweep/spec/extend.py);
    the report is then redone."""
    if isinstance(overrides, str):
        raise UserError([f"overrides: a list of KEY=VALUE strings, e.g. [{overrides!r}], not one string"])
    from .tuning.driver import find_sweep, resume_sweep
    from .tuning.session import ray_session

    _, spec = find_sweep(name, storage_folder(storage), list(overrides or ()))  # bad input starts nothing
    with ray_session(address):
        outcome = resume_sweep(spec, status_every)
    return _finish(outcome, spec)


def _finish(outcome: SweepOutcome, spec: SweepSpec) -> SweepOutcome:
    """A complete sweep whose events are all in MLflow gets its report (the report reads MLflow)."""
    outcome.storage = spec.checkpoints.path
    if not outcome.interrupted and not outcome.unsynced:
        from .report.write import write_report

        outcome.report_dir = defaults.reports(spec.name)
        outcome.report = write_report(spec.tracking.mlflow_uri, spec.name, outcome.report_dir, spec)
    return outcome


def report(
    name: str, storage: str | os.PathLike | None = None, tracking_uri: str | None = None, out: str | os.PathLike | None = None
) -> SweepReport:
    """A sweep's comparison from MLflow alone (no Ray): `.to_frame()` has a row per run,
    `.cells_frame()` a row per arm. With `out`, its files are written there and attached to the
    sweep's parent run, as `sweep report` does."""
    saved = saved_spec(name, storage)
    uri = tracking_uri_of(saved, tracking_uri)
    if out is None:
        from .report.data import build_report

        return build_report(uri, name)
    from .report.write import write_report

    return write_report(uri, name, Path(out), saved)  # without a saved spec: the parent run's copy


def saved_spec(name: str | None, storage: str | os.PathLike | None) -> SweepSpec | None:
    """The spec a sweep saved in its folder under `storage` (with its stores' passwords, which the
    parent run's copy has redacted), if it is there."""
    saved = storage_folder(storage) / name / defaults.SPEC_FILE if name else None
    return read_saved_spec(saved) if saved is not None and saved.exists() else None


def resolve_tracking_uri(name: str | None, storage: str | os.PathLike | None, explicit: str | None) -> str:
    """Where a sweep's runs are: `explicit` (--tracking-uri), else the spec saved in its folder
    under `storage`, else the default (defaults.MLFLOW_URI_HELP), a SQLite file made absolute."""
    return explicit or tracking_uri_of(saved_spec(name, storage), None)


def tracking_uri_of(saved: SweepSpec | None, explicit: str | None) -> str:
    """resolve_tracking_uri for a caller that has read the saved spec (or found none) already."""
    if explicit:
        return explicit
    return saved.tracking.mlflow_uri if saved else defaults.absolute_sqlite(defaults.mlflow_uri())


def sync(name: str, storage: str | os.PathLike | None = None) -> tuple[int, str]:
    """Apply what a sweep's journal holds and MLflow does not (after the server was unreachable at
    the end of a run). Returns the events replayed, and what is still missing with the command
    that replays it ("" once MLflow has everything)."""
    from .tracking.journal import SYNC_WAIT_S, Journal, backlog
    from .tracking.runs import SweepTracker

    storage = storage_folder(storage)
    folder = storage.resolve() / name
    if not (folder / defaults.SPEC_FILE).exists():
        raise UserError([f"name: no sweep {name!r} in {folder.parent}"])
    left = backlog(folder)
    if left.events:
        journal = Journal(folder, SweepTracker(load_spec(folder / defaults.SPEC_FILE))).start()
        synced = journal.drain(SYNC_WAIT_S)
        journal.close()
        if not synced:
            return left.events, journal.message(name, storage)
    return left.events, ""


def storage_folder(storage: str | os.PathLike | None) -> Path:
    """The checkpoint folder holding sweeps by name: as given, else the default (defaults.CHECKPOINTS_HELP)."""
    return defaults.checkpoints() if storage is None else Path(storage)
