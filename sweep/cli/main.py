"""The `sweep` command.

Every subcommand is declared in COMMANDS, so `sweep --help` is the single list of what works. A
command's arguments and handler live in its own module, which is imported only when that command
runs (or asks for its own help), and its handler only when it runs: no `--help` loads any of torch,
Ray, MLflow or Optuna, `sweep validate` and `sweep list` no Ray, MLflow or Optuna, `sweep train` no
Ray. Bad input exits with status 2 and one line per problem naming what was
wrong: a UserError from any command, and the trainers' own input errors, translated here and
nowhere else.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

from trainers.errors import ConfigError, DataNotFoundError

from ..errors import UserError

DISTRIBUTION = "sam-gns-sweep"  # what `sweep --version` names (pyproject.toml)


@dataclass(frozen=True)
class Command:
    help: str
    example: str  # one command line a user can paste, shown under the command's own help
    arguments: str | None  # "module:function" in this package that adds the command's arguments
    handler: str | None  # "module:function" run with the parsed arguments; None: its actions name their own
    error_prefix: str = ""  # put before each problem line


COMMANDS = {
    "list": Command(
        "list what a sweep can use, or the sweeps (list sweeps)", "sweep list optimizers", "listing:add_arguments", "listing:run"
    ),
    "run": Command(
        "run a sweep: Ray Tune trials, Optuna per arm, curves in MLflow",
        "sweep run search_spaces/quickstart.yaml --set search.trials_per_arm=2",
        "sweeps:add_run_command",
        "sweeps:run",
    ),
    "resume": Command(
        "continue a stopped sweep by name, or extend one with --set search.trials_per_arm=N",
        "sweep resume quickstart --set search.trials_per_arm=8",
        "sweeps:add_resume_command",
        "sweeps:resume",
    ),
    "status": Command(
        "a sweep's progress per arm, while it runs or after (no Ray needed)",
        "sweep status quickstart",
        "ops:add_folder_arguments",
        "ops:status",
    ),
    "stop": Command(
        "stop a running sweep cleanly from another terminal; resumable",
        "sweep stop quickstart --timeout 600",
        "ops:add_stop_arguments",
        "ops:stop",
    ),
    "sync": Command(
        "write to MLflow what a sweep's journal kept while the server was unreachable",
        "sweep sync quickstart",
        "sweeps:add_resume_arguments",
        "sweeps:sync",
    ),
    "report": Command(
        "comparison table, differences and plots of a sweep, from MLflow",
        "sweep report quickstart --out reports/quickstart",
        "sweeps:add_report_command",
        "sweeps:report",
    ),
    "ui": Command(
        "browse a sweep in the MLflow UI, or its Optuna studies with --optuna (served on 127.0.0.1)",
        "sweep ui quickstart --optuna",
        "ui:add_arguments",
        "ui:run",
    ),
    "validate": Command(
        "check a spec without starting anything",
        "sweep validate search_spaces/quickstart.yaml --set train.epochs=2",
        "sweeps:add_run_arguments",
        "sweeps:validate",
    ),
    "schema": Command("print the spec's JSON Schema, for editors", "sweep schema > sweep-spec.schema.json", None, "schema:run"),
    "cluster": Command("start or inspect the Ray nodes of a lab cluster", "sweep cluster status", "cluster:add_arguments", None),
    # its problems name flags and TrainConfig fields, not a spec's field paths: say whose they are
    "train": Command(
        "one training run without Ray (TrainConfig from YAML and flags)",
        "sweep train --dataset digits --model small_cnn --optimizer sam_gns --lr 0.5 --epochs 5",
        "train:add_arguments",
        "train:run",
        "sweep train: ",
    ),
}


def _load(reference: str) -> Callable:
    """`module:function`; the module is named relative to this package ("sweeps", "..cluster.nodes")."""
    module, name = reference.split(":")
    return getattr(importlib.import_module(module if module.startswith(".") else f".{module}", __package__), name)


class _Version(argparse.Action):
    """`--version`: the installed distribution's version, read only when asked (importlib.metadata
    alone would double the start-up of `sweep --help`, benchmarks/RESULTS.md)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs):
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from importlib import metadata

        try:
            version = metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:  # a checkout on the path without its install
            version = "unknown (not installed)"
        print(f"{parser.prog} {version}")  # on stdout, as argparse's own version action
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (`only`) one in which only that command has its arguments: the
    others are names and help lines, and their modules stay unimported. A handler is named, not
    imported: its module loads when the command runs, so no `--help` imports it."""
    parser = argparse.ArgumentParser(prog="sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version, help="print the installed version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(
            name,
            help=command.help,
            description=command.help,
            epilog=f"example:\n  {command.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if only is not None and only != name:
            continue
        if command.arguments is not None:
            _load(command.arguments)(sub)
        if command.handler is not None:
            sub.set_defaults(handler=command.handler)
        sub.set_defaults(error_prefix=command.error_prefix)
    return parser


def problems(err: Exception) -> list[str]:
    """The lines a user error prints: a UserError's own, or a trainers' error in one line."""
    if isinstance(err, UserError):
        return err.problems
    if isinstance(err, DataNotFoundError):
        return [f"dataset: {err}"]
    return [str(err)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # `sweep` takes no option before its command, so the first word names it (or nothing does:
    # `sweep --help`, or a mistyped command, which argparse then refuses with the list)
    args = build_parser(only=argv[0] if argv and not argv[0].startswith("-") else "").parse_args(argv)
    try:
        return _load(args.handler)(args)
    except (UserError, ConfigError, DataNotFoundError) as err:
        for line in problems(err):
            print(args.error_prefix + line, file=sys.stderr)
        return 2


def run() -> int:
    """The console script and `python -m sweep.cli`: `main`, then an exit that skips the
    interpreter's last garbage collections. They walk every object MLflow's store, SQLAlchemy and
    torch created, about 1 s of CPU after each command that imported them (docs/platform.md);
    every file the command wrote is closed by then, so nothing is left for them to finalise."""
    status = main()
    gc.freeze()  # frozen objects are never collected again: the teardown frees them without a search
    return status


if __name__ == "__main__":
    sys.exit(run())
