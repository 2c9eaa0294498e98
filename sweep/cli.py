"""The `sweep` command.

Subcommands arrive with their issues (run, resume, report, validate, cluster, ui); each one lives
in this parser so `sweep --help` is the single list of what works today. Bad input exits with
status 2 and one line naming what was wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cluster, sweep_cmd, train_cmd, ui_cmd
from .spec import SpecError

SPECS = Path(__file__).resolve().parent.parent / "search_spaces"  # shipped specs, in the checkout


def _optimizers() -> list[tuple[str, str, str]]:
    from trainers.optim import get_rule, list_optimizers

    return [(name, f"{get_rule(name).passes} pass" + ("es" if get_rule(name).passes > 1 else ""), get_rule(name).summary) for name in list_optimizers()]


def _models() -> list[tuple[str, str, str]]:
    from trainers.models import get_model_info, list_models

    return [(name, f"{get_model_info(name).input_size}px", get_model_info(name).summary) for name in list_models()]


def _datasets() -> list[tuple[str, str, str]]:
    from trainers.data import list_datasets

    return [(name, "", "") for name in list_datasets()]


def _specs() -> list[tuple[str, str, str]]:
    return [(f"search_spaces/{path.name}", "", _summary(path)) for path in sorted(SPECS.glob("*.yaml"))]


def _summary(path: Path) -> str:
    """A shipped spec's first line gives its command; the comment line after it says what it is."""
    lines = path.read_text().splitlines()
    return lines[1].lstrip("# ").strip() if len(lines) > 1 and lines[1].startswith("#") else ""


LISTINGS = {"optimizers": _optimizers, "models": _models, "datasets": _datasets, "specs": _specs}


def _list(args: argparse.Namespace) -> int:
    rows = LISTINGS[args.what]()
    width = max((len(row[0]) for row in rows), default=0)
    for name, detail, summary in rows:
        print(f"{name:<{width}} {detail:<7} {summary}".rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list what a sweep can use")
    listing.add_argument("what", choices=list(LISTINGS), help="which registry to list")
    listing.set_defaults(handler=_list)

    run = commands.add_parser("run", help="run a sweep: Ray Tune trials, Optuna per arm, curves in MLflow")
    sweep_cmd.add_run_arguments(run)
    sweep_cmd.add_cluster_arguments(run)
    run.set_defaults(handler=sweep_cmd.run)

    resume = commands.add_parser("resume", help="continue an interrupted sweep by name")
    sweep_cmd.add_resume_arguments(resume)
    sweep_cmd.add_cluster_arguments(resume)
    resume.set_defaults(handler=sweep_cmd.resume)

    sync = commands.add_parser("sync", help="write to MLflow what a sweep's journal kept while the server was unreachable")
    sweep_cmd.add_resume_arguments(sync)
    sync.set_defaults(handler=sweep_cmd.sync)

    report = commands.add_parser("report", help="comparison table, differences and plots of a sweep, from MLflow")
    sweep_cmd.add_report_arguments(report)
    report.add_argument("--out", type=Path, help="folder for the report's files (default: reports/NAME)")
    report.set_defaults(handler=sweep_cmd.report)

    ui = commands.add_parser("ui", help="browse a sweep in the MLflow UI (served on 127.0.0.1)")
    sweep_cmd.add_report_arguments(ui, name_required=False)
    ui.add_argument("--port", type=int, default=5000, help="port of the local MLflow UI (default: 5000)")
    ui.set_defaults(handler=ui_cmd.run)

    validate = commands.add_parser("validate", help="check a spec without starting anything")
    sweep_cmd.add_run_arguments(validate)
    validate.set_defaults(handler=sweep_cmd.validate)

    cluster.add_parsers(commands)

    train = commands.add_parser("train", help="one training run without Ray (TrainConfig from YAML and flags)")
    train_cmd.add_arguments(train)
    train.set_defaults(handler=train_cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except train_cmd.UsageError as err:
        print(f"sweep {args.command}: {err}", file=sys.stderr)
        return 2
    except SpecError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
