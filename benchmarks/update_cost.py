"""Figure 2: the update rules' own cost (everything in a step but forward and backward) against a
straightforward per-parameter loop of the same rules, as the popular SAM wrapper writes them, on
the parameter lists of resnet18 and densenet121; and the bytes each allocates per step.

    python -m benchmarks.update_cost [--threads 2] [--device cpu|cuda]

Goals: CPU never slower than the loop, no allocation per step (buffers reused);
GPU >= 3x over the loop (benchmarks/gpu.py runs this on a card).
"""

from __future__ import annotations

import argparse

import torch

from trainers.models import create_model
from trainers.optim import create_optimizer

from ._timing import alternate, machine, table

EPS = 1e-12


class LoopRule:
    """The same arithmetic, one small kernel per parameter (the reference the issue names)."""

    def __init__(self, rule: str, params, lr=0.1, rho=0.05, eta=0.01):
        self.rule, self.params, self.rho, self.eta = rule, list(params), rho, eta
        self.sgd = torch.optim.SGD(self.params, lr=lr, momentum=0.9, weight_decay=5e-4, foreach=False)
        self.e: dict = {}

    @torch.no_grad()
    def first_step(self):
        if self.rule == "asam":
            t = [p.abs() + self.eta for p in self.params]
            norm = torch.norm(torch.stack([(ti * p.grad).norm(2) for ti, p in zip(t, self.params)]), 2)
            for ti, p in zip(t, self.params):
                self.e[p] = self.rho * ti * ti * p.grad / (norm + EPS)
                p.add_(self.e[p])
        else:
            norm = torch.norm(torch.stack([p.grad.norm(2) for p in self.params]), 2)
            for p in self.params:
                self.e[p] = p.grad * (self.rho / (norm + EPS))
                p.add_(self.e[p])
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def second_step(self):
        for p in self.params:
            p.sub_(self.e[p])
        if self.rule == "sam_gns":
            norm = torch.norm(torch.stack([p.grad.norm(2) for p in self.params]), 2)
            for p in self.params:
                p.grad.div_(norm + EPS)
        self.sgd.step()


def parameter_list(model_name: str, device: str) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    return list(create_model(model_name, 10).to(device).parameters())


def contender(opt, params, grads):
    """One update with fresh copies of `grads` as both passes' gradients (no forward or backward;
    the rules scale gradients in place, so each pass gets its own copy). `opt=None` only copies,
    to measure what the copies cost and take it out of the figures."""
    buffers = [torch.empty_like(g) for g in grads]

    def give_gradients():
        torch._foreach_copy_(buffers, grads)
        for p, b in zip(params, buffers):
            p.grad = b

    def run():
        give_gradients()
        if opt is not None:
            opt.first_step()
        give_gradients()
        if opt is not None:
            opt.second_step()

    return run


def allocated_bytes(fn) -> int:
    """Bytes allocated while `fn` runs (the profiler's memory events, CPU and CUDA)."""
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if torch.cuda.is_available() else []
    )
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        fn()
    return sum(max(e.self_cpu_memory_usage, 0) + max(getattr(e, "self_device_memory_usage", 0), 0) for e in prof.key_averages())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# update rules' own cost on {args.device}, {machine()}")
    rows = []
    for model in ("resnet18", "densenet121"):
        for rule in ("sam", "asam", "sam_gns"):
            ours_params, loop_params = parameter_list(model, args.device), parameter_list(model, args.device)
            grads = [torch.randn_like(p) * 1e-3 for p in ours_params]
            ours = contender(create_optimizer(rule, ours_params, lr=0.1), ours_params, grads)
            loop = contender(LoopRule(rule, loop_params), loop_params, grads)
            sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
            copies = contender(None, ours_params, grads)
            # the lambdas run inside alternate(), within this iteration
            times = alternate(
                {"ours": lambda: (ours(), sync()), "loop": lambda: (loop(), sync()), "copies": lambda: (copies(), sync())},  # noqa: B023
                rounds=7,
                calls=3,
            )
            own = {name: times[name] - times["copies"] for name in ("ours", "loop")}
            size = sum(p.numel() * p.element_size() for p in ours_params)
            extra = allocated_bytes(copies)
            rows.append(
                [
                    model,
                    rule,
                    len(ours_params),
                    own["ours"] * 1e3,
                    own["loop"] * 1e3,
                    own["loop"] / own["ours"],
                    (allocated_bytes(ours) - extra) / size,
                    (allocated_bytes(loop) - extra) / size,
                ]
            )
    print(
        table(
            ["params of", "rule", "tensors", "ours ms", "loop ms", "loop/ours", "ours alloc x params", "loop alloc x params"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
