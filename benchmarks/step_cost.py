"""Figure 1: time per training step of each rule over SGD on the same model and batch (CPU), and
the rule's own share of a step (everything but forward and backward). Floor 2.0, goal <= 2.05.

    python -m benchmarks.step_cost [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from trainers.catalogue import list_optimizers
from trainers.models import create_model
from trainers.optim import create_optimizer, frozen_batchnorm_stats

from ._timing import alternate, machine, table

MODELS = {"small_cnn": {"width": 16}, "resnet18": {"width": 16}}  # resnet18 at a quarter of its width


class StepTimer:
    """One model and batch per rule; a step is the trainer's closure plus `opt.step`, and the
    rule's own time is measured inside the step, around first_step / second_step / the SGD step."""

    def __init__(self, model_name: str, rule: str, batch: int = 64):
        torch.manual_seed(0)
        self.model = create_model(model_name, 10, **MODELS[model_name])
        self.opt = create_optimizer(rule, self.model.parameters(), lr=0.05)
        self.x, self.y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
        self.own = 0.0

    def closure(self):
        self.opt.zero_grad(set_to_none=True)
        with frozen_batchnorm_stats(self.model, getattr(self.opt, "perturbed", False)):
            loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        return loss

    def step(self) -> None:
        if not hasattr(self.opt, "first_step"):  # one pass: closure, then the rule's update
            self.closure()
            start = time.perf_counter()
            self.opt.step()
            self.own += time.perf_counter() - start
            return
        self.closure()
        start = time.perf_counter()
        self.opt.first_step()
        middle = time.perf_counter()
        self.closure()
        end = time.perf_counter()
        self.opt.second_step()
        self.own += (middle - start) + (time.perf_counter() - end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# step cost, {machine()}")
    rows = []
    for model in MODELS:
        timers = {rule: StepTimer(model, rule) for rule in list_optimizers()}
        for t in timers.values():
            t.own = 0.0
        rounds, calls = 9, 5
        times = alternate({rule: t.step for rule, t in timers.items()}, rounds=rounds, calls=calls, warmup=3)
        total_calls = (rounds * calls) + 3
        for rule, t in timers.items():
            own = t.own / total_calls
            rows.append([model, rule, times[rule] * 1e3, times[rule] / times["sgd"], 100 * own / times[rule]])
    print(table(["model", "rule", "ms/step", "x sgd", "own %"], rows))


if __name__ == "__main__":
    main()
