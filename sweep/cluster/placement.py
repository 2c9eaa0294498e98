"""Where each model's trials may run and how much of a card they take.

The spec gives each model a GPU fraction (or `auto`), and may restrict it to card models or to a
minimum card memory. At the start of a sweep these are resolved against the cards the cluster's
nodes declare (sweep/cluster/cards.py) into one Ray placement per model: a bundle of CPUs and a GPU
fraction, and a label selector naming the cards it may use. A spec that no node can satisfy is
rejected before any trial starts.

`gpu: auto` sizes the share from an estimate of the trial's memory (trainers/memory/: a dry
forward pass on PyTorch's meta device, nothing allocated) plus the CUDA context every process
pays: a card of M GiB takes floor(M / need) such trials, at most MAX_PER_CARD. Ray's fraction is
one number for every node, so it is sized on the smallest card the model may use; cards too
small for even one trial are left out by the selector.

Fractions are logical in Ray (docs/platform.md); each trial caps its own allocator to its share
less the context (`allocator_fraction`), so a trial that outgrows it fails alone with an
out-of-memory error instead of starving its neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ray import tune

from trainers.memory import estimate_train_memory

from ..errors import UserError
from ..spec import SweepSpec
from .cards import CARD_LABEL, GIB, NodeCards, card_label

CONTEXT_GB = 0.5  # CUDA context, cuBLAS/cuDNN handles: per process, outside the caching allocator
MAX_PER_CARD = 8  # `gpu: auto` packs at most this many trials on a card: cores and bandwidth run out first


@dataclass(frozen=True)
class Placement:
    model: str
    cpus: float
    gpu: float  # fraction of one card per trial
    cards: tuple[str, ...] = ()  # card labels the trials may use; () for any node
    need_gb: float | None = None  # estimated memory per trial, with `gpu: auto`

    def factory(self) -> tune.PlacementGroupFactory:
        bundle = {"CPU": self.cpus, "GPU": self.gpu}
        if not self.cards:
            return tune.PlacementGroupFactory([bundle])
        # label selectors, not custom resources: `in(...)` lets several card models qualify
        return tune.PlacementGroupFactory([bundle], bundle_label_selector=[{CARD_LABEL: f"in({','.join(self.cards)})"}])

    def describe(self) -> str:
        where = f" on {', '.join(self.cards)}" if self.cards else ""
        need = f" (needs ~{self.need_gb:.1f} GB)" if self.need_gb is not None else ""
        return f"{self.model}: {self.cpus:g} CPU, {self.gpu:.3g} GPU{where}{need}"


class PlacementByModel:
    """`tune.with_resources` callable: a trial's placement, chosen by its model."""

    def __init__(self, placements: dict[str, Placement]):
        self.placements = placements

    def __call__(self, config: dict) -> tune.PlacementGroupFactory:
        return self.placements[config["train"]["model"]].factory()


def allocator_fraction(share: float, card_bytes: int, context_gb: float = CONTEXT_GB) -> float:
    """The fraction of a card's memory a trial's caching allocator may hold: its share of the
    card less the CUDA context it pays outside the allocator (for
    `torch.cuda.set_per_process_memory_fraction`). A whole card is not capped."""
    if share >= 1:
        return 1.0
    usable = share * card_bytes - context_gb * GIB
    if usable <= 0:
        raise ValueError(
            f"a GPU share of {share:g} of a {card_bytes / GIB:.1f} GB card leaves nothing after the "
            f"{context_gb:g} GB CUDA context; give the model a larger resources gpu fraction"
        )
    return usable / card_bytes


def need_gb(spec: SweepSpec, model: str) -> float:
    """Estimated GPU memory of one trial of `model`, the most any of the spec's rules needs."""
    configs = [spec.train_config(model, rule, spec.seeds[0], {}) for rule in spec.optimizers]
    return max(estimate_train_memory(cfg).total for cfg in configs) / GIB + CONTEXT_GB


def plan(spec: SweepSpec, nodes: list[NodeCards]) -> dict[str, Placement]:
    """Each model's placement on this cluster. Raises UserError naming the field that no node
    can satisfy."""
    return {model: _place(spec, model, nodes) for model in spec.models}


def _place(spec: SweepSpec, model: str, nodes: list[NodeCards]) -> Placement:
    wanted = spec.resources.for_model(model)
    field = f"resources.models.{model}" if model in spec.resources.models else "resources"
    gpu_nodes = [node for node in nodes if node.gpus > 0]
    restricted = bool(wanted.cards) or wanted.min_gpu_memory_gb is not None
    if wanted.gpu == 0:  # the spec refuses restrictions without a GPU share
        return Placement(model, wanted.cpus, 0.0)
    declared = [node for node in gpu_nodes if node.card]
    if (restricted or wanted.gpu == "auto") and gpu_nodes and not declared:
        raise UserError(
            [
                f"{field}: no node declares its cards; start nodes with `sweep cluster head/join` (or give gpu a fraction without restrictions)"
            ]
        )
    eligible = declared
    if wanted.cards:
        names = {card_label(card) for card in wanted.cards}
        eligible = [node for node in eligible if node.card in names]
        if not eligible:
            raise UserError([f"{field}.cards: no node has {', '.join(sorted(names))} ({_inventory(declared)})"])
    if wanted.min_gpu_memory_gb is not None:
        eligible = [node for node in eligible if node.memory_gb >= wanted.min_gpu_memory_gb]
        if not eligible:
            raise UserError(
                [f"{field}.min_gpu_memory_gb: no card has {wanted.min_gpu_memory_gb:g} GB or more ({_inventory(declared)})"]
            )
    if wanted.gpu != "auto":
        cards = tuple(sorted({node.card for node in eligible})) if restricted else ()
        return Placement(model, wanted.cpus, wanted.gpu, cards)
    if not gpu_nodes:  # a machine without GPUs: the trials train on its CPUs
        return Placement(model, wanted.cpus, 0.0)
    need = need_gb(spec, model)
    fits = [node for node in eligible if node.memory_gb >= need]
    if not fits:
        raise UserError(
            [f"{field}.gpu: auto: a {model} trial needs ~{need:.1f} GB; no card is that large ({_inventory(eligible)})"]
        )
    per_card = min(MAX_PER_CARD, math.floor(min(node.memory_gb for node in fits) / need))
    # a selector only where it leaves cards out: too small, or not among those asked for
    cards = tuple(sorted({node.card for node in fits})) if restricted or len(fits) < len(declared) else ()
    return Placement(model, wanted.cpus, 1.0 / per_card, cards, need_gb=need)


def _inventory(nodes: list[NodeCards]) -> str:
    cards = sorted({f"{node.card} {node.memory_gb:g} GB" for node in nodes})
    return "cards: " + (", ".join(cards) if cards else "none declared")
