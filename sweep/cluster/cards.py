"""GPU cards as a Ray node declares them: model and memory, as node labels.

Ray's own accelerator type is useless for GeForce cards in some Ray versions (an RTX 2080 Ti
shows up as `G`, docs/platform.md) and never gives the memory, so every node started by `sweep
cluster` (and the local Ray of the embedded profile) declares its cards itself, as labels that
trials select with `bundle_label_selector`; Ray's type is shown only where it names a model and
the node declared nothing.
A label holds one value per node: a node with two different card models declares the
smaller memory and the card label `mixed`, so a memory restriction never lands a trial on the
smaller card by mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pynvml
import ray
import torch

CARD_LABEL = "sweep/card"  # the card model, e.g. RTX-2080-Ti
MEMORY_LABEL = "sweep/gpu-memory-gb"  # the card's memory in whole GiB, e.g. 11
MIXED = "mixed"
GIB = 2**30
RAY_TYPE_LABEL, RAY_TYPE_RESOURCE = "ray.io/accelerator-type", "accelerator_type:"  # Ray's own names


@dataclass(frozen=True)
class Card:
    model: str  # as the driver names it, e.g. "NVIDIA GeForce RTX 2080 Ti"
    memory_gb: float  # GiB

    @property
    def label(self) -> str:
        return card_label(self.model)

    def __str__(self) -> str:
        return f"{self.label} {self.memory_gb:g} GB"


def card_label(model: str) -> str:
    """A card model as a Ray label value: letters, digits, `-_.`, at most 63 characters. The
    vendor prefix is dropped so that `--card "RTX 2080 Ti"` and the driver's name agree."""
    name = re.sub(r"^(NVIDIA\s+)?(GeForce\s+)?", "", model.strip(), flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9_.]+", "-", name).strip("-_.")[:63].strip("-_.") or "unknown"


def parse_card(text: str) -> Card:
    """`MODEL:GB`, e.g. `RTX 2080 Ti:11` (the `--card` flag)."""
    model, sep, memory = text.rpartition(":")
    try:
        gb = float(memory)
    except ValueError:
        gb = -1.0
    if not sep or not model.strip() or not gb > 0:
        raise ValueError(f"--card {text}: expected MODEL:GB with GB > 0, e.g. 'RTX 2080 Ti:11'")
    return Card(model.strip(), gb)


def detect_cards() -> list[Card]:
    """This machine's cards, from torch.cuda (the cards CUDA_VISIBLE_DEVICES leaves), else from
    the driver through nvidia-ml-py; none on a machine without a driver."""
    if torch.cuda.is_available():
        return [
            Card(props.name, round(props.total_memory / GIB))
            for props in map(torch.cuda.get_device_properties, range(torch.cuda.device_count()))
        ]
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:  # no driver, or no card
        return []
    try:
        handles = map(pynvml.nvmlDeviceGetHandleByIndex, range(pynvml.nvmlDeviceGetCount()))
        return [Card(_text(pynvml.nvmlDeviceGetName(h)), round(pynvml.nvmlDeviceGetMemoryInfo(h).total / GIB)) for h in handles]
    finally:
        pynvml.nvmlShutdown()


def _text(name: str | bytes) -> str:
    return name.decode() if isinstance(name, bytes) else name  # older nvidia-ml-py returns bytes


def ray_card(node: dict) -> str:
    """The card model Ray itself found on a node (its accelerator-type label, or the older
    `accelerator_type:X` resource) as a card label, when it is a model's name and not a bare
    letter such as the `G` some Ray versions give GeForce cards; "" otherwise."""
    name = (node.get("Labels") or {}).get(RAY_TYPE_LABEL, "")
    if not name:
        name = next((key[len(RAY_TYPE_RESOURCE) :] for key in node.get("Resources", {}) if key.startswith(RAY_TYPE_RESOURCE)), "")
    return card_label(name.replace("-", " ")) if len(name) > 1 else ""  # GeForce-RTX-2080-Ti: RTX-2080-Ti


def node_labels(cards: list[Card]) -> dict[str, str]:
    """The labels a node with these cards declares (none without cards)."""
    if not cards:
        return {}
    models = {card.label for card in cards}
    return {
        CARD_LABEL: models.pop() if len(models) == 1 else MIXED,
        MEMORY_LABEL: f"{min(card.memory_gb for card in cards):g}",
    }


@dataclass(frozen=True)
class NodeCards:
    """One alive node of a running cluster, as `sweep cluster status` and placement see it."""

    node_id: str
    address: str
    card: str  # card label, "" when the node declared none
    memory_gb: float  # 0 when undeclared
    gpus: float  # GPUs Ray schedules on the node
    ray_card: str = ""  # the card as Ray names it (ray_card), shown where the node declared none

    @classmethod
    def from_ray(cls, node: dict) -> NodeCards:
        labels = node.get("Labels") or {}
        return cls(
            node_id=node["NodeID"],
            address=node.get("NodeManagerAddress", ""),
            card=labels.get(CARD_LABEL, ""),
            memory_gb=float(labels.get(MEMORY_LABEL, 0)),
            gpus=float(node.get("Resources", {}).get("GPU", 0)),
            ray_card=ray_card(node),
        )


def cluster_cards() -> list[NodeCards]:
    """Alive nodes of the connected Ray cluster with their declared cards."""
    return [NodeCards.from_ray(node) for node in ray.nodes() if node.get("Alive")]
