"""`sweep list WHAT`: the update rules, models and data sets (from trainers/catalogue/, which
imports no torch), the shipped specs, and the sweeps in a checkpoint folder (from their own files:
no Ray, MLflow or Optuna)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from trainers.catalogue import get_dataset_info, get_model_info, get_rule, list_datasets, list_models, list_optimizers

from .. import defaults

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


def _sweeps(storage: Path) -> list[tuple[str, str, str]]:
    """Each sweep in the checkpoint folder: name, state, then arms, trials done/budget (as its
    driver last wrote them), when it started and where its stores are (passwords redacted)."""
    from ..redact import redact
    from ..tracking.status import current_state, read_state, saved_spec

    rows = []
    for folder in sorted(path.parent for path in Path(storage).resolve().glob(f"*/{defaults.SPEC_FILE}")):
        spec, state = saved_spec(folder), read_state(folder)
        what, _ = current_state(state)
        arms = (state or {}).get("arms", {})
        done, budget = (sum(arm[key] for arm in arms.values()) for key in ("done", "budget"))
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(state["started"])) if state else "?"
        tracking = spec.tracking
        stores = f"checkpoints {spec.checkpoints.storage or spec.checkpoints.path}, mlflow {redact(tracking.mlflow_uri)}, "
        stores += f"optuna {redact(tracking.optuna_storage)}"
        trials = f"{done}/{budget} trials" if arms else "? trials"
        rows.append((spec.name, what, f"{len(spec.arms())} arms, {trials}, started {started}; {stores}"))
    return rows


LISTINGS = {"optimizers": _optimizers, "models": _models, "datasets": _datasets, "specs": _specs, "sweeps": _sweeps}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=list(LISTINGS), help="what to list: a registry, the shipped specs, or the sweeps")
    parser.add_argument(
        "--storage",
        type=Path,
        default=defaults.checkpoints(),
        help=f"checkpoint folder of `sweep list sweeps` (default: {defaults.CHECKPOINTS_HELP})",
    )


def run(args: argparse.Namespace) -> int:
    rows = LISTINGS[args.what](args.storage) if args.what == "sweeps" else LISTINGS[args.what]()
    width = max((len(row[0]) for row in rows), default=0)
    detail_width = max([7, *(len(row[1]) for row in rows)])
    if not rows and args.what == "sweeps":
        print(f"no sweeps in {args.storage.resolve()}")
    for name, detail, summary in rows:
        print(f"{name:<{width}} {detail:<{detail_width}} {summary}".rstrip())
    return 0
