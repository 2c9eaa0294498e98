"""GPU cards as a Ray node declares them: model and memory, as node labels.

Ray's own accelerator type is useless for GeForce cards (an RTX 2080 Ti shows up as `G`,
docs/platform.md), so every node started by `sweep cluster` (and the local Ray of the embedded
profile) declares its cards itself, as labels that trials select with `bundle_label_selector`.
A label holds one value per node: a node with two different card models declares the
smaller memory and the card label `mixed`, so a memory restriction never lands a trial on the
smaller card by mistake.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import ray
import torch

CARD_LABEL = "sweep/card"  # the card model, e.g. RTX-2080-Ti
MEMORY_LABEL = "sweep/gpu-memory-gb"  # the card's memory in whole GiB, e.g. 11
MIXED = "mixed"
GIB = 2**30


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
    """This machine's cards, from torch.cuda, else nvidia-smi; none on a machine without either."""
    if torch.cuda.is_available():
        return [
            Card(props.name, round(props.total_memory / GIB))
            for props in map(torch.cuda.get_device_properties, range(torch.cuda.device_count()))
        ]
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        rows = [line.rsplit(",", 1) for line in out.splitlines() if "," in line]
        return [Card(name.strip(), round(float(mib) / 1024)) for name, mib in rows]
    return []


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

    @classmethod
    def from_ray(cls, node: dict) -> NodeCards:
        labels = node.get("Labels") or {}
        return cls(
            node_id=node["NodeID"],
            address=node.get("NodeManagerAddress", ""),
            card=labels.get(CARD_LABEL, ""),
            memory_gb=float(labels.get(MEMORY_LABEL, 0)),
            gpus=float(node.get("Resources", {}).get("GPU", 0)),
        )


def cluster_cards() -> list[NodeCards]:
    """Alive nodes of the connected Ray cluster with their declared cards."""
    return [NodeCards.from_ray(node) for node in ray.nodes() if node.get("Alive")]
