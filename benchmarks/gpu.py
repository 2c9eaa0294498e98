"""The GPU figures, in one run of under 5 minutes on one card:

1. images/s of `resnet18` on CIFAR-shaped synthetic data for sgd and sam_gns, fp32 against bf16
   autocast (channels_last, data resident on the card);
2. the update rules' own cost against the per-parameter loop (figure 2; goal >= 3x on a GPU);
3. aggregate images/s of 1, 2 and 4 concurrent trials sharing the card (fractional packing), with
   the peak memory of each trial.

    python -m benchmarks.gpu            # on a GPU machine
    python -m benchmarks.gpu --device cpu --quick   # the same code path on a CPU, tiny sizes, one
                                                    # torch thread a packed trial

It imports PyTorch and this project's `trainers` only (no Ray, MLflow, Optuna, pydantic or
torchvision), so it runs on a bare GPU machine with PyTorch installed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch
import torch.nn.functional as F

from trainers.models.resnet import BasicBlock, ResNet
from trainers.optim import create_optimizer, frozen_batchnorm_stats

from ._timing import machine, table
from .update_cost import LoopRule, contender


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def trainer(device: str, rule: str, bf16: bool, width: int, batch: int):
    """A resnet18 step function on synthetic CIFAR-shaped data held on the device."""
    torch.manual_seed(0)
    model = ResNet(BasicBlock, [2, 2, 2, 2], 10, width).to(device).to(memory_format=torch.channels_last)
    opt = create_optimizer(rule, model.parameters(), lr=0.1)
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def closure():
        opt.zero_grad(set_to_none=True)
        with (
            frozen_batchnorm_stats(model, getattr(opt, "perturbed", False)),
            torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16),
        ):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        return loss

    return lambda: opt.step(closure)


def images_per_second(step, device: str, batch: int, steps: int) -> float:
    for _ in range(3):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - start)


_barrier = None  # in each trial's process: the start line all trials wait at


def _arrive(barrier, threads: int) -> None:
    """A trial's process as it starts: the barrier (handed over at the start, so no manager
    process: one more interpreter importing torch), and its torch threads (0: torch's default)."""
    global _barrier
    _barrier = barrier
    if threads:
        torch.set_num_threads(threads)


def _trial(args: tuple) -> tuple[float, float]:
    """One of several concurrent trials: its images/s and peak memory (MiB)."""
    device, rule, width, batch, steps = args
    step = trainer(device, rule, False, width, batch)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _barrier.wait()
    rate = images_per_second(step, device, batch, steps)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
    return rate, peak


def packing(device: str, width: int, batch: int, steps: int, threads: int = 0) -> list[list[object]]:
    rows = []
    # CUDA cannot be used in a process forked from one that used it: the trials are forked from a
    # server process that has imported torch and nothing else (once, not once per trial)
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["torch"])
    for trials in (1, 2, 4):
        barrier = context.Barrier(trials)
        with context.Pool(trials, initializer=_arrive, initargs=(barrier, threads)) as pool:
            results = pool.map(_trial, [(device, "sam_gns", width, batch, steps)] * trials)
        rows.append([trials, sum(r for r, _ in results), max(p for _, p in results)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the script, not the card")
    args = parser.parse_args()
    width, batch, steps = (8, 16, 3) if args.quick else (64, 128, 50)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    print(f"# GPU figures on {args.device}, {machine()}")

    rows = []
    for rule in ("sgd", "sam_gns"):
        rates = {
            bf16: images_per_second(trainer(args.device, rule, bf16, width, batch), args.device, batch, steps)
            for bf16 in (False, True)
        }
        rows.append([rule, rates[False], rates[True], rates[True] / rates[False]])
    print(table(["resnet18 rule", "fp32 img/s", "bf16 img/s", "bf16 speed-up"], rows))

    rows = []
    model = ResNet(BasicBlock, [2, 2, 2, 2], 10, width)
    for rule in ("sam", "asam", "sam_gns"):
        params = [p.detach().to(args.device).requires_grad_() for p in model.parameters()]
        loop_params = [p.detach().clone().requires_grad_() for p in params]
        grads = [torch.randn_like(p) * 1e-3 for p in params]
        runs = {
            "ours": contender(create_optimizer(rule, params, lr=0.1), params, grads),
            "loop": contender(LoopRule(rule, loop_params), loop_params, grads),
            "copies": contender(None, params, grads),
        }
        times = {}
        for name, run in runs.items():
            times[name] = 1 / images_per_second(run, args.device, 1, steps * 2)
        own = {name: times[name] - times["copies"] for name in ("ours", "loop")}
        rows.append([rule, own["ours"] * 1e3, own["loop"] * 1e3, own["loop"] / own["ours"]])
    print(table(["rule (resnet18 params)", "ours ms", "loop ms", "loop/ours"], rows))

    # quick: one torch thread a trial (4 trials of a thread per core each, on the 2 cores of a CI
    # machine, spin for seconds)
    packed = packing(args.device, width, batch, steps, 1 if args.quick else 0)
    print(table(["concurrent sam_gns trials", "aggregate img/s", "peak MiB per trial"], packed))


if __name__ == "__main__":
    main()
