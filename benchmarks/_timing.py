"""Side-by-side timing: contenders alternate round by round; medians of the rounds."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def alternate(contenders: dict[str, Callable[[], object]], rounds: int = 7, calls: int = 5, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each contender, over `rounds` rounds that run every contender
    `calls` times in turn (so a slow patch of the machine hits them all alike)."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def machine() -> str:
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, {cuda}"


def table(header: list[str], rows: list[list[object]]) -> str:
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
