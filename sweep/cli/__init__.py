"""The `sweep` command: the parser, one module per group of subcommands, and the one place where
bad input becomes one line per problem and exit status 2.

May import every other package of `sweep`; nothing imports it but the console script and tests.
"""

from .main import build_parser, main, problems, run

__all__ = ["build_parser", "main", "problems", "run"]
