"""The Ray trial: validate the config once, restore the checkpoint if any, call trainers.fit.

Each epoch's metrics go to Ray Tune with `tune.report`, with a checkpoint every `checkpoint_every`
epochs (at most one per `checkpoint_every_s` seconds) and at the end, so a retried or resumed
trial continues from its last checkpoint. MLflow logging happens in the driver
(sweep/tracking/runs.py), which keeps the SQLite store single-writer.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from trainers.config import TrainConfig
from trainers.train import fit

from ..cluster.cards import CARD_LABEL, card_label
from ..cluster.placement import allocator_fraction
from ..tracking.schema import REPORTED_AT, Outcome, TrialConfig, TrialPlace

STATE_FILE = "state.pt"
# Test hook for the retry path: when the file this variable names exists and holds an
# epoch number, the first trial to finish that epoch deletes the file and fails before reporting.
FAULT_ENV = "SWEEP_FAULT_FILE"


def _maybe_fail(epoch: int) -> None:
    plan = Path(os.environ.get(FAULT_ENV, "")) if os.environ.get(FAULT_ENV) else None
    if plan is None or not plan.exists() or plan.read_text().strip() != str(epoch):
        return
    try:
        plan.unlink()  # one fault only, even with trials in parallel
    except FileNotFoundError:
        return
    raise RuntimeError(f"injected fault after epoch {epoch} ({FAULT_ENV})")


def where_am_i() -> TrialPlace:
    """The trial's node, card and GPU share, for its run's tags (so placement can be checked
    from MLflow). Without CUDA the card is the one the node declares (logical GPUs in tests)."""
    context = ray.get_runtime_context()
    share = context.get_assigned_resources().get("GPU", 0.0)
    declared = context.get_node_labels().get(CARD_LABEL, "none")
    return TrialPlace(
        ray_node_id=context.get_node_id(),
        gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
        card=card_label(torch.cuda.get_device_name()) if torch.cuda.is_available() else declared,
        gpu_share=share,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        trial_started_at=time.time(),
    )


def cap_gpu_memory(share: float) -> None:
    """Hold the trial's allocator to its share of the card, so a trial that outgrows it fails
    alone with an out-of-memory error (Ray's fractions are not memory caps). Set on every trial:
    a reused worker may hold an earlier trial's cap."""
    if torch.cuda.is_available() and share > 0:
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        torch.cuda.set_per_process_memory_fraction(allocator_fraction(share, total))


def checkpoint_due(epoch: int, status: str, every: int, every_s: float, since_s: float) -> bool:
    """Whether this epoch's report carries a checkpoint: the last epoch's always (finished or
    diverged), else every `every` epochs once `every_s` seconds have passed since the last one.
    Each checkpoint makes Tune save the whole experiment's state (docs/platform.md, "Ray Tune")."""
    return status != Outcome.RUNNING or (epoch % every == 0 and since_s >= every_s)


def train_trial(config: TrialConfig) -> None:
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # no line per checkpoint in the terminal
    cfg = TrainConfig.model_validate(config["train"])
    every, every_s = config.get("checkpoint_every", 1), config.get("checkpoint_every_s", 0.0)  # absent: a sweep saved before
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, weights_only=True)
    where = where_am_i()
    cap_gpu_memory(where["gpu_share"])
    restored = state["epoch"] if state is not None else 0  # in each result, to tell resume from restart
    saved_at = time.monotonic()  # the trial's start counts as its last checkpoint

    def report(metrics: dict[str, Any], state: dict[str, Any]) -> None:
        nonlocal saved_at
        _maybe_fail(metrics["epoch"])
        metrics = {
            **metrics,
            **where,
            "restored_from_epoch": restored,
            REPORTED_AT: time.time(),
        }
        if not checkpoint_due(metrics["epoch"], metrics["status"], every, every_s, time.monotonic() - saved_at):
            tune.report(metrics)
            return
        saved_at = time.monotonic()
        with tempfile.TemporaryDirectory() as folder:
            torch.save(state, Path(folder) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    fit(cfg, report, state)
