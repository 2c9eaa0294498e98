"""The table each part of the catalogue keeps its entries in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Entries(dict):
    """Entries by their `name`, in the order given; looking up an unknown name raises ValueError
    listing the known ones (the one message a config, a spec and the command line show)."""

    def __init__(self, kind: str, entries: Iterable[Any]):
        super().__init__((entry.name, entry) for entry in entries)
        self.kind = kind

    def __missing__(self, name: str):
        raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self)}")
