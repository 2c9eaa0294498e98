"""The driver's live status: every `--status-every` seconds, the status lines of
sweep/tracking/status.py on the terminal (plain lines, readable in a log file), and the sweep's
state file written for `sweep status`, `sweep list sweeps` and `sweep stop` in other terminals.

A thread of its own reads the journal's new lines at each tick: Tune's loop and the trials never
wait for it, and a tick costs one read of what the journal gained since the last one.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import TextIO

from .. import defaults
from ..redact import redact
from ..spec import SweepSpec
from ..tracking.status import Board, State, read_state, status_lines, write_state


def browse_line(spec: SweepSpec) -> str:
    """How to watch the sweep: its MLflow server's address (with a remote store), or `sweep ui`."""
    uri = spec.tracking.mlflow_uri
    ui = defaults.command("ui", spec.name, spec.checkpoints.path)
    status = defaults.command("status", spec.name, spec.checkpoints.path)
    stop = defaults.command("stop", spec.name, spec.checkpoints.path)
    where = f"MLflow at {redact(uri).rstrip('/')} (experiment {spec.name})" if uri.startswith(("http://", "https://")) else ui
    return f"browse: {where}; status: {status}; stop: {stop}"


class LiveStatus:
    """`with LiveStatus(spec, every) as live: ...; live.state = State.FINISHED`: the state file says
    `running` (with this process's pid and host) from the start, then the state set before the
    way out (`interrupted` if an exception leaves the block)."""

    def __init__(self, spec: SweepSpec, every: float = defaults.STATUS_EVERY_S, out: TextIO | None = None):
        self.spec, self.every, self.out = spec, float(every), out
        self.board = Board.of(spec)
        self.state = State.INTERRUPTED
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one tick at a time: the thread's and the last one
        earlier = read_state(spec.folder) or {}
        now = time.time()
        self._record = {
            "name": spec.name,
            "state": State.RUNNING,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": earlier.get("started", now),  # the sweep's first start
            "session_started": now,
            "runtime_before_s": float(earlier.get("runtime_s", 0.0)),  # earlier drivers' time
            "every_s": self.every or defaults.STATUS_EVERY_S,
        }

    def __enter__(self) -> LiveStatus:
        self.tick(print_lines=False)
        print(browse_line(self.spec), file=self.out or sys.stdout, flush=True)
        self._thread = threading.Thread(target=self._run, name=f"status {self.spec.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._record["state"] = self.state if kind is None else State.INTERRUPTED
        self.tick(print_lines=self.every > 0)

    def _run(self) -> None:
        # with the line off (0) the state file is still written, so other terminals see the driver live
        while not self._stop.wait(self.every or defaults.STATUS_EVERY_S):
            self.tick(print_lines=self.every > 0)

    def tick(self, print_lines: bool) -> None:
        with self._lock:
            self.board.read(self.spec.folder)
            now = time.time()
            runtime = self._record["runtime_before_s"] + now - self._record["session_started"]
            self._record.update(updated=now, runtime_s=runtime, arms={key: _counts(arm) for key, arm in self.board.arms.items()})
            write_state(self.spec.folder, self._record)
            if print_lines:
                text = "\n".join(status_lines(self.spec.name, self.board, self._record, now))
                print(text, file=self.out or sys.stdout, flush=True)


def _counts(arm) -> dict[str, int | float | None]:
    return {
        "running": arm.running,
        "done": arm.done,
        "budget": arm.budget,
        "epochs_done": arm.epochs_done,
        "epochs_planned": arm.epochs_planned,
        "best": arm.best,
    }
