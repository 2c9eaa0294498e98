"""Peak memory of one epoch: `peak_gpu_memory_mb` on a CUDA device, `peak_rss_mb` on the CPU.

Both peaks are reset when an epoch starts, so each epoch's value is its own and a worker that
Ray reuses for the next trial (docs/architecture.md) does not carry the previous trial's peak.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from pathlib import Path

import torch

MIB = 2**20
_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


class PeakMemory:
    """Call `reset()` when an epoch starts and `read()` when it ends."""

    def __init__(self, device: torch.device):
        self.device = device

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _reset_rss_peak()

    def read(self) -> dict[str, float]:
        if self.device.type == "cuda":
            return {"peak_gpu_memory_mb": torch.cuda.max_memory_allocated(self.device) / MIB}
        return {"peak_rss_mb": rss_peak_mb()}


def _reset_rss_peak() -> None:
    """Linux resets the process's VmHWM (its peak resident set) to the current one when "5" is
    written to /proc/self/clear_refs (proc(5)); elsewhere there is nothing to reset."""
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")


def rss_peak_mb() -> float:
    """The process's peak resident set in MiB since the last reset (VmHWM), or, without
    /proc/self/status, getrusage's maximum, which is then the process's lifetime peak."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / MIB if sys.platform == "darwin" else peak / 1024
