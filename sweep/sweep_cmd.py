"""`sweep run`, `sweep resume`, `sweep validate`: the sweep commands of the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

from .progress import settings
from .spec import SpecError, load_spec


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="sweep spec (YAML), e.g. search_spaces/quickstart.yaml")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a spec field by its dotted path, e.g. --set search.trials_per_arm=2 (repeatable)",
    )


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")


def validate(args: argparse.Namespace) -> int:
    from .space import arm_budget

    spec = load_spec(args.spec, args.overrides)
    trials = sum(arm_budget(spec, rule) for _, rule in spec.arms())
    print(f"ok: {spec.name}: {len(spec.arms())} arms, {trials} trials ({spec.search.method})")
    return 0


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec, args.overrides).resolved()
    from .tune import check_new, ray_session, run_sweep

    check_new(spec)  # bad input starts nothing
    with ray_session(args.address):
        return _finish(run_sweep(spec))


def resume(args: argparse.Namespace) -> int:
    from .tune import find_sweep, ray_session, resume_sweep

    find_sweep(args.name, args.storage)  # bad input starts nothing
    with ray_session(args.address):
        return _finish(resume_sweep(args.name, args.storage))


def _finish(outcome) -> int:
    if outcome.interrupted:
        print(f"Interrupted; finished trials are kept. Continue with: sweep resume {outcome.name}")
        return 130
    for arm, best in sorted(outcome.best.items()):
        print(f"best {arm}: val_acc {best['val_acc']:.2f}%, test_acc {best['test_acc']:.2f}% ({settings(best['train'])})")
    if outcome.failed:
        print(f"{outcome.failed} trial(s) failed after their retries; see the MLflow runs tagged sweep.outcome=failed")
    return 1 if outcome.failed else 0


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the sweep's name (its folder under --storage)")
    parser.add_argument("--storage", type=Path, default=Path("sweeps"), help="checkpoint folder of the spec (default: sweeps)")


__all__ = ["SpecError", "add_cluster_arguments", "add_resume_arguments", "add_run_arguments", "resume", "run", "validate"]
