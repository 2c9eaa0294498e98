"""The `sweep` command.

Every subcommand is declared in this parser, so `sweep --help` is the single list of what works.
Bad input exits with status 2 and one line per problem naming what was wrong: a UserError from
any command, and the trainers' own input errors, translated here and nowhere else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainers.data import get_dataset_info, list_datasets
from trainers.errors import ConfigError, DataNotFoundError
from trainers.models import get_model_info, list_models
from trainers.optim import get_rule, list_optimizers

from ..errors import UserError
from . import cluster
from . import schema as schema_cmd
from . import sweeps as sweep_cmd
from . import train as train_cmd
from . import ui as ui_cmd

SPECS = Path(__file__).resolve().parents[2] / "search_spaces"  # shipped specs, in the checkout


def _optimizers() -> list[tuple[str, str, str]]:
    rules = map(get_rule, list_optimizers())
    return [(rule.name, f"{rule.passes} pass" + ("es" if rule.passes > 1 else ""), rule.summary) for rule in rules]


def _models() -> list[tuple[str, str, str]]:
    infos = map(get_model_info, list_models())
    return [(info.name, f"{info.input_size}px" if info.input_size else "any size", info.summary) for info in infos]


def _datasets() -> list[tuple[str, str, str]]:
    infos = map(get_dataset_info, list_datasets())
    return [(info.name, f"{info.shape_for().side}px", info.summary) for info in infos]


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

    schema = commands.add_parser(
        "schema", help="print the spec's JSON Schema, for editors: sweep schema > sweep-spec.schema.json"
    )
    schema.set_defaults(handler=schema_cmd.run)

    cluster.add_parsers(commands)

    train = commands.add_parser("train", help="one training run without Ray (TrainConfig from YAML and flags)")
    train_cmd.add_arguments(train)
    # its problems name flags and TrainConfig fields, not a spec's field paths: say whose they are
    train.set_defaults(handler=train_cmd.run, error_prefix="sweep train: ")
    return parser


def problems(err: Exception) -> list[str]:
    """The lines a user error prints: a UserError's own, or a trainers' error in one line."""
    if isinstance(err, UserError):
        return err.problems
    if isinstance(err, DataNotFoundError):
        return [f"dataset: {err}"]
    return [str(err)]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UserError, ConfigError, DataNotFoundError) as err:
        for line in problems(err):
            print(getattr(args, "error_prefix", "") + line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
