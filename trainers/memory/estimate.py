"""How much GPU memory one training trial needs: an estimate made before the trial starts.

`estimate_train_memory(cfg)` sizes a trial's fractional GPU share for the sweep's `gpu: auto`:
small models pack several to a card, large ones get a card of their own. It allocates
no real memory for the model or a batch: the model is built on PyTorch's `meta` device (tensors
with shapes and dtypes but no storage), and one forward pass of a training batch runs there.

What is counted, in bytes (the fields of `MemoryEstimate`):
- `weights`: parameters and buffers (BatchNorm statistics), float32 as the trainer keeps them.
- `gradients`: one gradient per trainable parameter (`p.grad`, float32 also under bf16).
- `optimizer_state`: what the update rule keeps from step to step, found by running one step of
  the real rule on meta stand-ins of the parameters and summing the tensors it holds afterwards:
  the momentum buffer (momentum > 0), SAM's and SAM-GNS's copy of `w`, ASAM's copy of `w` and its
  `T = |w| + eta`; SGD with momentum 0 and UGD keep nothing.
- `activations`: the tensors autograd saves for the backward pass during one forward pass of one
  training batch (the batch itself and the labels included), each storage counted once, the
  parameters (which convolutions and linear layers save too) not at all.
- `evaluation`: the peak of what is alive at once during a no-grad forward pass of one
  `eval_batch_size` batch in eval mode. Evaluation runs while the weights, the last step's
  gradients and the optimizer state are held, but no training activations, so the trial needs the
  larger of `activations` and `evaluation`; at 224 px with small training batches the evaluation
  pass is the larger.
- `data`: the data set, held on the training device as uint8 images and int64 labels.
- `workspace`: an allowance for what the fields above do not see (see WORKSPACE_FRACTION).

`total` = weights + gradients + optimizer_state + max(activations, evaluation) + data + workspace.

Not counted: the CUDA context and the kernels of cuDNN and cuBLAS (about 0.3-0.5 GB per process,
more with cuDNN loaded; the caller adds it once per trial), `torch.compile`'s own buffers (a
compiled forward usually saves less than the eager one counted here), transient copies while the
trial starts (the training split is copied once when the validation split is held out, before
the model exists). Batches are taken at full size, capped at the data set's size.

Where the meta pass differs from a GPU run it takes the GPU's path: attention runs as a fused
kernel (PyTorch picks one on CUDA for these shapes; it saves the output and a log-sum-exp per
query, not the L x L matrix of the math path the meta device would take), and dropout saves a
one-byte mask as CUDA's fused dropout does. With `bf16`, autocast runs the forward in bfloat16:
every float32 tensor saved counts half its bytes and each parameter that is saved counts half its
bytes (autocast's bfloat16 copy of it, kept for the backward pass). That is a simple rule, not
autocast itself: what autocast keeps in float32 (layer norm, softmax, the loss, a ViT's float32
residual stream) is undercounted, so the rule fits convolutional networks better than
transformers.

A model that cannot run on the meta device (an op with no meta kernel, a forward that reads a
value with `.item()`) is built on the CPU instead, and its activations are measured with real
tensors at batch sizes 2 and 4 and extended linearly to the real batch size (activations grow
linearly with the batch; the two points also catch the part that does not).

It is an estimate: expect the peak that `torch.cuda.max_memory_allocated()` reports to land
within about a third of `total - workspace` (tests/test_memory.py checks it on a GPU), and read
the workspace as a margin, not a measurement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from ..build import build_model, build_optimizer
from ..catalogue import get_model_info
from ..config import TrainConfig
from .passes import distinct_bytes, eval_peak_bytes, gpu_kernels, linear_in_batch, saved_bytes, storage_key

GIB = 2**30

# The workspace allowance, as a fraction of weights + gradients + optimizer state + the larger of
# activations and evaluation. It covers what no field sees, each part growing with the rest:
# (1) the backward pass's own temporaries, the gradients with respect to activations (a few
# feature maps of the current layer alive at once, small beside all the maps kept); (2) cuDNN's
# convolution workspace, allocated through PyTorch's caching allocator, which grows with the
# layers' sizes; (3) the caching allocator's rounding (blocks of 512 B, segments of 2 or 20 MiB)
# and fragmentation, which makes memory reserved exceed memory allocated. A fixed fraction is the
# simplest rule that grows with the model and the batch; a quarter is a margin, not a
# measurement: at 0.25 a trial whose real peak comes out 25% above `total - workspace` still fits.
WORKSPACE_FRACTION = 0.25


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory one training trial needs on its device, in bytes (see the module docstring)."""

    weights: int
    gradients: int
    optimizer_state: int
    activations: int  # saved for backward by one training batch's forward pass
    evaluation: int  # peak alive during one no-grad evaluation batch
    data: int  # the data set resident on the device
    workspace: int  # WORKSPACE_FRACTION of the rest: backward temporaries, cuDNN, fragmentation

    @property
    def total(self) -> int:
        """Bytes the trial needs at its peak, the CUDA context not included."""
        return (
            self.weights
            + self.gradients
            + self.optimizer_state
            + max(self.activations, self.evaluation)
            + self.data
            + self.workspace
        )

    @property
    def gib(self) -> float:
        """`total` in GiB."""
        return self.total / GIB

    def __str__(self) -> str:
        parts = ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name) / GIB:.2f}" for f in fields(self))
        return f"{self.gib:.2f} GiB ({parts} GiB; the larger of activations and evaluation counts)"


def estimate_train_memory(cfg: TrainConfig) -> MemoryEstimate:
    """Estimate the device memory a trial of `cfg` needs, without allocating it (module docstring)."""
    shape = cfg.data_shape()
    side = get_model_info(cfg.model).input_size or shape.side
    batch, eval_batch = min(cfg.batch_size, shape.images), min(cfg.eval_batch_size, shape.images)
    try:
        with torch.device("meta"):
            model = build_model(cfg, shape.num_classes, pretrained=False)  # weights change no shape
        with gpu_kernels():
            activations = saved_bytes(model, batch, side, cfg.bf16)
            evaluation = eval_peak_bytes(model, eval_batch, side, cfg.bf16)
    except (NotImplementedError, RuntimeError):  # no meta kernel, or a forward that reads values
        with torch.random.fork_rng(devices=[]):  # initialising weights draws from the global RNG
            model = build_model(cfg, shape.num_classes, pretrained=False)
        activations = linear_in_batch(lambda b: saved_bytes(model, b, side, cfg.bf16), batch)
        evaluation = linear_in_batch(lambda b: eval_peak_bytes(model, b, side, cfg.bf16), eval_batch)

    params = list(model.parameters())
    weights = distinct_bytes([*params, *model.buffers()])
    gradients = sum(p.nbytes for p in params if p.requires_grad)
    optimizer_state = _optimizer_state_bytes(cfg, params)
    data = shape.images * (shape.channels * shape.side**2 + 8)  # uint8 pixels, int64 label
    rest = weights + gradients + optimizer_state + max(activations, evaluation)
    return MemoryEstimate(
        weights=weights,
        gradients=gradients,
        optimizer_state=optimizer_state,
        activations=activations,
        evaluation=evaluation,
        data=data,
        workspace=round(WORKSPACE_FRACTION * rest),
    )


# -- the update rule --------------------------------------------------------------------------------


def _optimizer_state_bytes(cfg: TrainConfig, params: list[Tensor]) -> int:
    """Bytes the update rule holds between steps, after one step on meta stand-ins of `params`."""
    stand_ins = [torch.empty_like(p, device="meta").requires_grad_(p.requires_grad) for p in params]
    trainable = [p for p in stand_ins if p.requires_grad]
    opt = build_optimizer(cfg, stand_ins)

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        for p in trainable:
            p.grad = torch.empty_like(p)
        return torch.zeros((), device="meta")

    opt.step(closure)
    own = {storage_key(p) for p in stand_ins} | {storage_key(p.grad) for p in trainable if p.grad is not None}
    kept = [t for t in _tensors_in(vars(opt)) if storage_key(t) not in own]
    return distinct_bytes(kept)


def _tensors_in(obj, seen: set[int] | None = None) -> Iterator[Tensor]:
    """Every tensor reachable from `obj` through dict values, lists, tuples and sets."""
    seen = set() if seen is None else seen
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (dict, list, tuple, set)) and id(obj) not in seen:
        seen.add(id(obj))
        for item in obj.values() if isinstance(obj, dict) else obj:
            yield from _tensors_in(item, seen)
