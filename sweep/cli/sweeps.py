"""`sweep validate`, `run`, `resume`, `report`, `sync`: their flags, what they print and their exit
status. What they do is sweep/api.py, which the Python API shares; it is imported when a command
runs, so a command's `--help` loads none of torch, Ray, MLflow or Optuna."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import defaults
from .ops import seconds


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="sweep spec (YAML), e.g. search_spaces/quickstart.yaml")
    add_set_argument(parser, "override a spec field by its dotted path, e.g. --set search.trials_per_arm=2 (repeatable)")


def add_set_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_status_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status-every",
        type=seconds,
        default=defaults.STATUS_EVERY_S,
        metavar="SECONDS",
        help=f"print the sweep's status lines this often (default: {defaults.STATUS_EVERY_S:g}; 0: never)",
    )


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")


def add_run_command(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    add_cluster_arguments(parser)
    add_status_argument(parser)


def add_resume_command(parser: argparse.ArgumentParser) -> None:
    add_resume_arguments(parser)
    add_cluster_arguments(parser)
    add_status_argument(parser)
    add_set_argument(
        parser,
        "raise the sweep's budget and continue it, finished or not: --set search.trials_per_arm=N or "
        "--set confirm_seeds=N (repeatable; no other field can change)",
    )


def add_report_command(parser: argparse.ArgumentParser) -> None:
    add_report_arguments(parser)
    parser.add_argument("--out", type=Path, help="folder for the report's files (default: reports/NAME)")


def add_report_arguments(parser: argparse.ArgumentParser, name_required: bool = True) -> None:
    parser.add_argument("name", nargs=None if name_required else "?", help="the sweep's name")
    parser.add_argument(
        "--storage", type=Path, help=f"checkpoint folder holding the sweep's spec (default: {defaults.CHECKPOINTS_HELP})"
    )
    parser.add_argument("--tracking-uri", help=f"MLflow store (default: the sweep's spec, else {defaults.MLFLOW_URI_HELP})")


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the sweep's name (its folder under --storage)")
    parser.add_argument("--storage", type=Path, help=f"checkpoint folder of the spec (default: {defaults.CHECKPOINTS_HELP})")


def validate(args: argparse.Namespace) -> int:
    from .. import api

    print(f"ok: {api.plan(api.validate(args.spec, args.overrides))}")
    return 0


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..tuning.signals import as_command

    with as_command():  # a stop signal keeps its exit status to the command's end
        return _finish(api.run(args.spec, args.overrides, args.address, status_every=args.status_every))


def resume(args: argparse.Namespace) -> int:
    from .. import api
    from ..tuning.signals import as_command

    with as_command():
        return _finish(
            api.resume(args.name, args.overrides, storage=args.storage, address=args.address, status_every=args.status_every)
        )


def _finish(outcome) -> int:
    from ..report.render import render
    from ..tracking.records import chosen_text
    from ..tuning.signals import exit_status

    if outcome.interrupted:
        resume = defaults.command("resume", outcome.name, outcome.storage)
        if outcome.at_once:  # a second signal cut Tune's shutdown and the journal's drain short
            sync = defaults.command("sync", outcome.name, outcome.storage)
            print(f"Stopped at once; the journal keeps the rest. Continue with: {resume} (or {sync}, for MLflow only)")
        else:
            how = "Stopped by `sweep stop`" if outcome.requested else "Interrupted"
            print(f"{how}; finished trials are kept. Continue with: {resume}")
        return exit_status(outcome.signal)
    for arm, best in sorted(outcome.best.items()):
        print(f"best {arm}: {chosen_text(best)}")
    if outcome.unsynced:  # the end of the sweep (sweep/tuning/conclude.py) printed what is missing and the `sweep sync` command
        print(f"The report reads MLflow: run `sweep report {outcome.name}` once `sweep sync` has replayed the rest")
        return 1
    print("\n" + render(outcome.report, terminal=True))
    print(f"Report files in {outcome.report_dir}/ and on the sweep's parent run; browse with: sweep ui {outcome.name}")
    if outcome.failed:
        print(f"{outcome.failed} trial(s) failed after their retries; see the MLflow runs tagged sweep.outcome=failed")
    return 1 if outcome.failed else 0


def report(args: argparse.Namespace) -> int:
    from .. import api

    out = args.out or defaults.reports(args.name)
    # api.report starts the report's figure process before anything heavy is imported, the text
    # renderer's scipy included (sweep/report/write.py)
    report = api.report(args.name, args.storage, args.tracking_uri, out=out)
    from ..report.render import render

    print(render(report, terminal=True))
    print(f"Written to {out}/ and attached to the parent run under report/")
    return 0


def sync(args: argparse.Namespace) -> int:
    """0 when all of the journal is in MLflow, 1 when the server still is not reachable."""
    from .. import api

    replayed, missing = api.sync(args.name, args.storage)
    if missing:
        print(missing)
        return 1
    print(f"MLflow has every tracking event of sweep {args.name} ({replayed} replayed now)")
    return 0
