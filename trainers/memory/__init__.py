"""How much GPU memory one training trial needs, estimated on PyTorch's meta device (for the
sweep's `gpu: auto`; trainers/memory/estimate.py explains what is counted)."""

from .estimate import GIB, WORKSPACE_FRACTION, MemoryEstimate, estimate_train_memory

__all__ = ["GIB", "WORKSPACE_FRACTION", "MemoryEstimate", "estimate_train_memory"]
