"""The journal's files in a sweep's folder: whole JSON lines, the applied offset, the backlog.

`mlflow_journal.jsonl` holds one tracking event per line, written whole (a torn last line from a
driver killed mid-write is cut before the next append); `mlflow_journal.offset` records how many
bytes and events MLflow has; the difference is the backlog `sweep sync` replays.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .schema import Event

JOURNAL, OFFSET, LOCK = "mlflow_journal.jsonl", "mlflow_journal.offset", "mlflow_journal.lock"
REFUSED = "mlflow_journal.refused.jsonl"  # events MLflow refused as invalid, kept with the reason


@dataclass
class Backlog:
    """Journal events not in MLflow yet."""

    events: int = 0
    epochs: int = 0
    trials: int = 0


def backlog(folder: Path) -> Backlog:
    """Count the events of a sweep's journal past its applied offset."""
    path = Path(folder) / JOURNAL
    if not path.exists():
        return Backlog()
    start, _ = read_offset(Path(folder) / OFFSET, path.stat().st_size)
    left, trials = Backlog(), set()
    with open(path, "rb") as reader:
        reader.seek(start)
        for line in reader:
            if not line.endswith(b"\n"):
                break
            event = json.loads(line)
            left.events += 1
            left.epochs += event["kind"] == Event.EPOCH
            if event.get("trial"):
                trials.add(event["trial"])
    left.trials = len(trials)
    return left


def open_for_append(path: Path, end: int):
    """Append mode, after cutting a torn last line (a driver killed mid-write) that no callback
    ever returned from: the journal holds whole lines only, up to `end`."""
    if path.exists() and path.stat().st_size > end:
        with open(path, "r+b") as file:
            file.truncate(end)
    return open(path, "ab")  # kept open while the sweep runs


def whole_lines(path: Path) -> tuple[int, int]:
    """(count, end in bytes) of the journal's whole lines."""
    count = end = 0
    if path.exists():
        with open(path, "rb") as file:
            for line in file:
                if not line.endswith(b"\n"):
                    break
                count, end = count + 1, end + len(line)
    return count, end


def read_offset(path: Path, size: int) -> tuple[int, int]:
    """(bytes, events) already applied; from the start if the offset is missing or does not fit
    the journal (re-applying is harmless)."""
    try:
        saved = json.loads(path.read_text())
        done, events = int(saved["bytes"]), int(saved["events"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0
    return (done, events) if 0 <= done <= size else (0, 0)


def write_offset(path: Path, done: int, events: int) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps({"bytes": done, "events": events}))
    os.replace(temp, path)  # no fsync: an offset that lags only means harmless re-applying
