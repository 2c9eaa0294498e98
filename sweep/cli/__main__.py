"""`python -m sweep.cli`: the same as the `sweep` console script."""

import sys

from .main import run

sys.exit(run())
