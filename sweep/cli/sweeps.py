"""`sweep run`, `sweep resume`, `sweep validate`: the sweep commands of the CLI."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from trainers.build import load_data

from .. import defaults
from ..cluster.stores import check_stores
from ..errors import UserError
from ..report.render import render, write_report
from ..search.space import search_budget
from ..spec import SweepSpec, load_spec
from ..tracking.journal import SYNC_WAIT_S, Journal, backlog
from ..tracking.runs import SweepTracker, chosen_text
from ..tuning.driver import check_new, find_sweep, ray_session, resume_sweep, run_sweep
from ..tuning.signals import exit_status


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="sweep spec (YAML), e.g. search_spaces/quickstart.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field by its dotted path, e.g. --set search.trials_per_arm=2 (repeatable)",
    )


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")


def add_run_command(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    add_cluster_arguments(parser)


def add_resume_command(parser: argparse.ArgumentParser) -> None:
    add_resume_arguments(parser)
    add_cluster_arguments(parser)


def add_report_command(parser: argparse.ArgumentParser) -> None:
    add_report_arguments(parser)
    parser.add_argument("--out", type=Path, help="folder for the report's files (default: reports/NAME)")


def validate(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, args.overrides)
    trials = sum(search_budget(spec, arm.rule) for arm in spec.arms())
    low, high = spec.confirm_range
    count = f"{low * len(spec.arms())}" if low == high else f"{low * len(spec.arms())} to {high * len(spec.arms())}"
    confirm = f" + {count} confirmation" if high else ""
    print(f"ok: {spec.name}: {len(spec.arms())} arms, {trials} trials ({spec.search.method}){confirm}")
    return 0


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, args.overrides).resolved()
    check_new(spec)  # bad input starts nothing
    check_stores(spec)  # nor does a store that cannot be reached (the cluster profile's server, database, bucket)
    if not (args.address or os.environ.get("RAY_ADDRESS")):
        _check_data(spec)  # on a local Ray the trials read this machine's data folder
    with ray_session(args.address):
        outcome = run_sweep(spec)
    return _finish(outcome, spec)


def _check_data(spec: SweepSpec) -> None:
    """Load the data set once before anything starts, so a missing or corrupt folder is one clear
    error (the CLI's, for DataNotFoundError) instead of every trial failing through its retries."""
    cfg = spec.train_config(*spec.arms()[0], spec.seeds[0], {})
    load_data(cfg)


def resume(args: argparse.Namespace) -> int:
    _, spec = find_sweep(args.name, args.storage)  # bad input starts nothing
    with ray_session(args.address):
        outcome = resume_sweep(spec)
    return _finish(outcome, spec)


def _finish(outcome, spec) -> int:
    if outcome.interrupted:
        resume = defaults.command("resume", outcome.name, spec.checkpoints.path)
        if outcome.at_once:  # a second signal cut Tune's shutdown and the journal's drain short
            sync = defaults.command("sync", outcome.name, spec.checkpoints.path)
            print(f"Stopped at once; the journal keeps the rest. Continue with: {resume} (or {sync}, for MLflow only)")
        else:
            print(f"Interrupted; finished trials are kept. Continue with: {resume}")
        return exit_status(outcome.signal)
    for arm, best in sorted(outcome.best.items()):
        print(f"best {arm}: {chosen_text(best)}")
    if outcome.unsynced:  # _conclude printed what is missing and the `sweep sync` command
        print(f"The report reads MLflow: run `sweep report {outcome.name}` once `sweep sync` has replayed the rest")
        return 1
    out = defaults.reports(spec.name)
    print("\n" + render(write_report(spec.tracking.mlflow_uri, spec.name, out, spec.tracking.optuna_storage), terminal=True))
    print(f"Report files in {out}/ and on the sweep's parent run; browse with: sweep ui {spec.name}")
    if outcome.failed:
        print(f"{outcome.failed} trial(s) failed after their retries; see the MLflow runs tagged sweep.outcome=failed")
    return 1 if outcome.failed else 0


def saved_spec(name: str | None, storage: Path) -> SweepSpec | None:
    """The spec a sweep saved in its folder (with its stores' passwords), if it is here."""
    saved = storage / name / defaults.SPEC_FILE if name else None
    return load_spec(saved) if saved is not None and saved.exists() else None


def tracking_uri(name: str | None, storage: Path, explicit: str | None) -> str:
    """Where a sweep's runs are: --tracking-uri, else its saved spec's, else the default
    (defaults.MLFLOW_URI_HELP), a SQLite file made absolute."""
    if explicit:
        return explicit
    saved = storage / name / defaults.SPEC_FILE if name else None
    if saved is not None and saved.exists():
        return load_spec(saved).tracking.mlflow_uri
    return defaults.absolute_sqlite(defaults.mlflow_uri())


def add_report_arguments(parser: argparse.ArgumentParser, name_required: bool = True) -> None:
    parser.add_argument("name", nargs=None if name_required else "?", help="the sweep's name")
    parser.add_argument(
        "--storage",
        type=Path,
        default=defaults.checkpoints(),
        help=f"checkpoint folder holding the sweep's spec (default: {defaults.CHECKPOINTS_HELP})",
    )
    parser.add_argument("--tracking-uri", help=f"MLflow store (default: the sweep's spec, else {defaults.MLFLOW_URI_HELP})")


def report(args: argparse.Namespace) -> int:
    out = args.out or defaults.reports(args.name)
    saved = saved_spec(args.name, args.storage)
    studies = saved.tracking.optuna_storage if saved else None  # else the parent run's copy of the spec
    result = write_report(tracking_uri(args.name, args.storage, args.tracking_uri), args.name, out, studies)
    print(render(result, terminal=True))
    print(f"Written to {out}/ and attached to the parent run under report/")
    return 0


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the sweep's name (its folder under --storage)")
    parser.add_argument(
        "--storage",
        type=Path,
        default=defaults.checkpoints(),
        help=f"checkpoint folder of the spec (default: {defaults.CHECKPOINTS_HELP})",
    )


def sync(args: argparse.Namespace) -> int:
    """Apply what a sweep's journal holds and MLflow does not (after the server was unreachable
    at the end of `sweep run`): 0 when all of it is in MLflow, 1 when the server still is not."""
    folder = args.storage.resolve() / args.name
    if not (folder / defaults.SPEC_FILE).exists():
        raise UserError([f"name: no sweep {args.name!r} in {folder.parent}"])
    left = backlog(folder)
    if left.events:
        journal = Journal(folder, SweepTracker(load_spec(folder / defaults.SPEC_FILE))).start()
        synced = journal.drain(SYNC_WAIT_S)
        journal.close()
        if not synced:
            print(journal.message(args.name, args.storage))
            return 1
    print(f"MLflow has every tracking event of sweep {args.name} ({left.events} replayed now)")
    return 0
