"""The `sweep` command.

Subcommands arrive with their issues (run, resume, train, report, validate, cluster, ui); each
one lives in this parser so `sweep --help` is the single list of what works today.
"""

from __future__ import annotations

import argparse
import sys

from trainers.optim import get_rule, list_optimizers


def _list(args: argparse.Namespace) -> int:
    for name in list_optimizers():
        rule = get_rule(name)
        print(f"{name:<8} {rule.passes} pass{'es' if rule.passes > 1 else '  '}  {rule.summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list what a sweep can use")
    listing.add_argument("what", choices=["optimizers"], help="which registry to list")
    listing.set_defaults(handler=_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
