"""`sweep status NAME` and `sweep stop NAME`: a running sweep as an object, from any terminal (or
machine) that sees its checkpoint folder. The work is in sweep/tracking/status.py, imported when a
command runs (its spec loading needs torch); neither command imports Ray, MLflow or Optuna."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import defaults

STOP_WAIT_S = 300.0  # Tune's clean stop, then up to a minute for MLflow (docs/architecture.md)


def seconds(text: str) -> float:
    """A number of seconds, 0 or more (argparse's type: a bad one exits 2 naming the flag)."""
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more seconds")
    return value


def add_folder_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the sweep's name (its folder under --storage)")
    parser.add_argument(
        "--storage",
        type=Path,
        default=defaults.checkpoints(),
        help=f"checkpoint folder holding the sweep (default: {defaults.CHECKPOINTS_HELP})",
    )


def add_stop_arguments(parser: argparse.ArgumentParser) -> None:
    add_folder_arguments(parser)
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=STOP_WAIT_S,
        metavar="SECONDS",
        help=f"wait this long for the driver to stop (default: {STOP_WAIT_S:g}; 0: ask and return)",
    )


def status(args: argparse.Namespace) -> int:
    from ..tracking.status import State, current_state, read_state, sweep_status

    folder = args.storage.resolve() / args.name
    print("\n".join(sweep_status(folder)))
    what, _ = current_state(read_state(folder))
    if what in (State.STOPPED, State.INTERRUPTED):
        print(f"continue with: {defaults.command('resume', args.name, args.storage)}")
    return 0


def stop(args: argparse.Namespace) -> int:
    """0 once the driver has stopped; 1 when it still runs after --timeout (the request stays)."""
    from ..tracking.status import State, request_stop, wait_stopped

    folder = args.storage.resolve() / args.name
    state = request_stop(folder)
    print(f"asked sweep {args.name} (driver pid {state['pid']} on {state['host']}) to stop", flush=True)
    what = wait_stopped(folder, args.timeout)
    if what == State.RUNNING:
        print(f"still stopping after {args.timeout:g} s; `sweep status {args.name}` shows when it has")
        return 1 if args.timeout > 0 else 0
    print(f"sweep {args.name}: {what}; continue with: {defaults.command('resume', args.name, args.storage)}")
    return 0
