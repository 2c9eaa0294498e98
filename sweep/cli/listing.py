"""`sweep list WHAT`: the registries (update rules, models, data sets) and the shipped specs.

A registry is imported when it is listed (the trainers' registries import torch), so `sweep list
specs` and `sweep list --help` answer without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SPECS = Path(__file__).resolve().parents[2] / "search_spaces"  # shipped specs, in the checkout


def _optimizers() -> list[tuple[str, str, str]]:
    from trainers.optim import get_rule, list_optimizers

    rules = map(get_rule, list_optimizers())
    return [(rule.name, f"{rule.passes} pass" + ("es" if rule.passes > 1 else ""), rule.summary) for rule in rules]


def _models() -> list[tuple[str, str, str]]:
    from trainers.models import get_model_info, list_models

    infos = map(get_model_info, list_models())
    return [(info.name, f"{info.input_size}px" if info.input_size else "any size", info.summary) for info in infos]


def _datasets() -> list[tuple[str, str, str]]:
    from trainers.data import get_dataset_info, list_datasets

    infos = map(get_dataset_info, list_datasets())
    return [(info.name, f"{info.shape_for().side}px", info.summary) for info in infos]


def _specs() -> list[tuple[str, str, str]]:
    return [(f"search_spaces/{path.name}", "", _summary(path)) for path in sorted(SPECS.glob("*.yaml"))]


def _summary(path: Path) -> str:
    """A shipped spec's first line gives its command; the comment line after it says what it is."""
    lines = path.read_text().splitlines()
    return lines[1].lstrip("# ").strip() if len(lines) > 1 and lines[1].startswith("#") else ""


LISTINGS = {"optimizers": _optimizers, "models": _models, "datasets": _datasets, "specs": _specs}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=list(LISTINGS), help="which registry to list")


def run(args: argparse.Namespace) -> int:
    rows = LISTINGS[args.what]()
    width = max((len(row[0]) for row in rows), default=0)
    for name, detail, summary in rows:
        print(f"{name:<{width}} {detail:<7} {summary}".rstrip())
    return 0
