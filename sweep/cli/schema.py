"""`sweep schema`: the spec's JSON Schema on stdout, for editors that complete and check specs
(README.md, "Sweeps", says how to point one at it)."""

from __future__ import annotations

import argparse
import json

from ..spec.reference import json_schema


def run(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2))
    return 0
