"""`sweep train`: one training run without Ray, from a YAML file and/or one flag per TrainConfig field.

Flags are generated from TrainConfig, so a new field is a new flag with its description as help;
booleans are `--augment` / `--no-augment`, never `type=bool`, and a field of a few values lists
them. Values reach pydantic as the user typed them and are validated once, so a bad value gets the
same one-line message as in a file. TrainConfig reads without torch; the training loop, torch and
MLflow are imported when the command runs, not for its help.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from trainers.config import TrainConfig, describe_errors

from ..errors import UserError
from ..tracking.schema import Outcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file of TrainConfig fields (flags override it)")
    parser.add_argument(
        "--mlflow-uri", help="also log the run's params and curves to this MLflow store, e.g. sqlite:///mlflow.db"
    )
    parser.add_argument("--experiment", default="sweep-train", help="MLflow experiment for --mlflow-uri (default: sweep-train)")
    fields = parser.add_argument_group("training settings (TrainConfig; defaults are the paper's)")
    for name, field in TrainConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = field.get_default(call_default_factory=True)
        help_text = f"{field.description} (default: {readable(default)})"
        if field.annotation is bool:
            fields.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif get_origin(field.annotation) is Literal:
            fields.add_argument(flag, dest=name, default=None, choices=get_args(field.annotation), help=help_text)
        else:
            structured = isinstance(default, (dict, BaseModel))
            fields.add_argument(flag, dest=name, default=None, metavar="YAML" if structured else "VALUE", help=help_text)


def readable(value: Any) -> str:
    """A default as a user would type it: `data`, `{width: 8}`, `None`, never a Python repr such as
    PosixPath('data') or SyntheticData(images=1000, ...)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return str(value)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = {}
    if args.config is not None:
        values = _read_yaml(args.config)
    for name, field in TrainConfig.model_fields.items():
        value = getattr(args, name)
        if value is None:
            continue
        if isinstance(field.get_default(call_default_factory=True), (dict, BaseModel)):
            value = _parse_yaml_value(name, value)  # e.g. --model-options '{width: 8}'
        values[name] = value
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as err:
        raise UserError("; ".join(describe_errors(err))) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as err:
        raise UserError(f"--config {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise UserError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UserError(f"--config {path}: expected a mapping of TrainConfig fields, got {type(loaded).__name__}")
    return loaded


def _parse_yaml_value(name: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(f"{name}: not valid YAML: {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trainers.train import fit

    from ..tracking.records import RunLogger

    cfg = config_from_args(args)
    # delay: a run that fails while loading data prints its error, not an empty bar
    bar = tqdm(total=cfg.epochs, unit="epoch", desc=f"{cfg.optimizer} {cfg.model} {cfg.dataset}", delay=1.0, file=sys.stderr)

    logger = None
    if args.mlflow_uri:
        logger = RunLogger(args.mlflow_uri, args.experiment, cfg.model_dump(mode="json"))

    def report(metrics: dict[str, Any], state: dict[str, Any]) -> None:
        if logger is not None:
            logger(metrics, state)
        bar.update(1)
        bar.set_postfix(
            loss=f"{metrics['train_loss']:.3f}",
            val=f"{metrics.get('val_acc', float('nan')):.1f}",
            test=f"{metrics['test_acc']:.1f}",
            img_s=f"{metrics['images_per_s']:.0f}",
        )

    final = {"status": Outcome.FAILED}
    try:
        final = fit(cfg, report)  # the trainers' input errors reach the CLI, which says them in one line
    finally:
        bar.close()
        if logger is not None:
            logger.end(final["status"])
    val = f"val_acc {final['val_acc']:.2f}%, " if "val_acc" in final else ""
    print(
        f"{final['status']}: {cfg.optimizer} on {cfg.model}/{cfg.dataset}, {final['epoch']} epochs, "
        f"{val}test_acc {final['test_acc']:.2f}%, train_loss {final['train_loss']:.4f}"
    )
    return 0 if final["status"] == Outcome.FINISHED else 1
