"""The `sweep` command.

Subcommands arrive with their issues (run, resume, report, validate, cluster, ui); each one lives
in this parser so `sweep --help` is the single list of what works today. Bad input exits with
status 2 and one line naming what was wrong.
"""

from __future__ import annotations

import argparse
import sys

from . import train_cmd


def _list(args: argparse.Namespace) -> int:
    if args.what == "optimizers":
        from trainers.optim import get_rule, list_optimizers

        rows = [(name, f"{get_rule(name).passes} pass", get_rule(name).summary) for name in list_optimizers()]
    elif args.what == "models":
        from trainers.models import get_model_info, list_models

        rows = [(name, f"{get_model_info(name).input_size}px", get_model_info(name).summary) for name in list_models()]
    else:
        from trainers.data import list_datasets

        rows = [(name, "", "") for name in list_datasets()]
    for row in rows:
        print(f"{row[0]:<20} {row[1]:<7} {row[2]}".rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list what a sweep can use")
    listing.add_argument("what", choices=["optimizers", "models", "datasets"], help="which registry to list")
    listing.set_defaults(handler=_list)

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


if __name__ == "__main__":
    sys.exit(main())
