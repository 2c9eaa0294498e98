"""The one error type for bad input, whatever its source: a spec, a flag, a name, a store.

A `UserError` holds one line per problem, each naming what was wrong and where (a spec's field
path, a flag, a file), and nothing has been started or written when it is raised. The command
line prints its lines and exits with status 2 (sweep/cli/__init__.py); the trainers' own input
errors are translated into it there, once.
"""

from __future__ import annotations


class UserError(ValueError):
    """Input that cannot be run; `problems` holds one `where: what` line each."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
