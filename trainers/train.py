"""The shared training loop: `fit(cfg, report, state)`.

One function trains one run of a TrainConfig and calls `report(metrics, state)` after every
epoch; it knows nothing of the tuner or the tracker that may stand behind `report` (Ray Tune in a
sweep, a progress bar in `sweep train`, a list's append in tests). `state` is a self-contained
checkpoint (model, optimizer with its momentum buffers, schedule, RNG states, epoch) in CPU
memory: `fit(cfg, state=state)` continues the run exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from .build import build_model, build_optimizer, load_data
from .catalogue import get_model_info
from .config import TrainConfig
from .data import Batches, Split, hold_out, normalization
from .hardware import PeakMemory
from .optim import frozen_batchnorm_stats

Reporter = Callable[[dict[str, Any], dict[str, Any]], None]

# Learning-rate factor for epoch e of E. Cosine annealing to 0 over the whole run, stepped once per
# epoch, is the paper's schedule (Section 5.1).
SCHEDULES: dict[str, Callable[[int, int], float]] = {
    "cosine": lambda e, total: 0.5 * (1.0 + math.cos(math.pi * e / total)),
    "constant": lambda e, total: 1.0,
}


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when a card is visible, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Run:
    """Everything one training run holds, built from a config (and a checkpoint, if resuming)."""

    def __init__(self, cfg: TrainConfig, state: dict[str, Any] | None = None):
        self.cfg = cfg
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        self.device = resolve_device(cfg.device)
        data = load_data(cfg)
        train, val = hold_out(data.train.to(self.device), cfg.val_fraction)
        self.splits: dict[str, Split | None] = {"train": train, "val": val, "test": data.test.to(self.device)}
        torch.manual_seed(cfg.seed)  # initial weights; the data generator below is separate
        self.model = build_model(cfg, data.num_classes).to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # forward passes go through the compiled wrapper; weights, BN freezing and checkpoints
        # stay with the module itself, so a checkpoint loads with or without compile
        self.forward = torch.compile(self.model) if cfg.compile else self.model
        self.optimizer = build_optimizer(cfg, self.model.parameters())
        shape = SCHEDULES[cfg.lr_schedule]
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda epoch: shape(epoch, cfg.epochs))
        self.generator = torch.Generator().manual_seed(cfg.seed)  # shuffling and augmentation
        mean, std = normalization(data, cfg.normalize, cfg.pretrained)
        batch_options = {"mean": mean, "std": std, "out_size": get_model_info(cfg.model).input_size}
        self.train_batches = Batches(
            train, cfg.batch_size, shuffle=True, augment=cfg.augment, generator=self.generator, **batch_options
        )
        self.eval_batches = {
            name: Batches(split, cfg.eval_batch_size, **batch_options)
            for name, split in self.splits.items()
            if name != "train" and split is not None
        }
        self.epoch = 0
        if state is not None:
            self.load_state(state)

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """A checkpoint of the run after `self.epoch` epochs, copied to CPU memory."""
        state = {
            "epoch": self.epoch,
            "config": self.cfg.model_dump(mode="json"),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "data": self.generator.get_state(),
            },
        }
        return _to_cpu(state)

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.generator.set_state(state["rng"]["data"])
        self.epoch = state["epoch"]

    # -- one epoch -------------------------------------------------------------------------------
    def _autocast(self):
        if not self.cfg.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training split; loss and accuracy are those at `w` (first pass), and
        the pass's throughput in training images per second."""
        model, opt = self.model, self.optimizer
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        for x, y in self.train_batches:
            x, first = self._input(x), {}

            def closure():  # called by this step's opt.step only, so it reads this batch
                opt.zero_grad(set_to_none=True)
                # two-pass rules call this again at w + e, where BN statistics must stay still
                with frozen_batchnorm_stats(model, getattr(opt, "perturbed", False)), self._autocast():
                    logits = self.forward(x)  # noqa: B023
                    loss = F.cross_entropy(logits.float(), y)  # noqa: B023
                loss.backward()
                first.setdefault("logits", logits.detach())  # noqa: B023
                return loss

            loss = opt.step(closure)
            loss_sum += loss.detach() * len(y)
            correct += (first["logits"].argmax(1) == y).sum()
        n = len(self.splits["train"])
        # one host synchronisation per epoch, not per step; the clock stops after it, when the
        # device has finished the pass
        loss, acc = loss_sum.item() / n, 100.0 * correct.item() / n
        return {"train_loss": loss, "train_acc": acc, "images_per_s": n / (time.perf_counter() - started)}

    @torch.no_grad()
    def evaluate(self, name: str) -> dict[str, float]:
        """Loss and accuracy (percent) on split `name` ('val' or 'test'), in eval mode."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        for x, y in self.eval_batches[name]:
            with self._autocast():
                logits = self.forward(self._input(x)).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
        n = len(self.splits[name])
        return {f"{name}_loss": loss_sum.item() / n, f"{name}_acc": 100.0 * correct.item() / n}


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {key: _to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(value) for value in obj)
    return obj


def fit(cfg: TrainConfig | dict, report: Reporter | None = None, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train `cfg.epochs` epochs (continuing from `state` when given) and return the last metrics.

    After each epoch `report(metrics, state)` receives `epoch` (1-based), the METRICS (accuracies
    in percent, `lr` the rate used in that epoch, `images_per_s` the training pass's throughput,
    `peak_gpu_memory_mb` on a card or `peak_rss_mb` on the CPU: the epoch's own peak) and `status`: "running", "finished", or
    "diverged" when the training loss stopped being finite, which also ends the run.
    """
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.model_validate(cfg)
    run = Run(cfg, state)
    memory = PeakMemory(run.device)
    metrics: dict[str, Any] = {"epoch": run.epoch, "status": "finished" if run.epoch >= cfg.epochs else "running"}
    while run.epoch < cfg.epochs:
        started = time.perf_counter()
        memory.reset()  # each epoch's own peak, and none from the trial a reused worker ran before
        lr = run.optimizer.param_groups[0]["lr"]
        metrics = run.train_epoch()
        for split in run.eval_batches:
            metrics.update(run.evaluate(split))
        metrics.update(memory.read())
        run.schedule.step()
        run.epoch += 1
        diverged = not math.isfinite(metrics["train_loss"])
        status = "diverged" if diverged else "finished" if run.epoch == cfg.epochs else "running"
        metrics = {"epoch": run.epoch, **metrics, "lr": lr, "epoch_time_s": time.perf_counter() - started, "status": status}
        if report is not None:
            report(metrics, run.state())
        if diverged:
            break
    return metrics
