"""The sweep's tracking journal: every MLflow write goes through a local file first.

The Tune callback (sweep/tracking/callback.py) appends one JSON line per tracking event to
`mlflow_journal.jsonl` in the sweep's checkpoint folder, flushed and fsync'd before the callback
returns, so nothing a trial reported is lost if MLflow is down or the driver dies. A thread in
the driver applies the events through `SweepTracker`, whose methods are idempotent, each trial's
in order, several trials side by side and many epochs per request while it is behind
(sweep/tracking/applier.py); `mlflow_journal.offset` records the prefix applied, so `sweep resume`
or `sweep sync` continue from there. While MLflow is unreachable the thread retries the events
that failed (short HTTP attempts, a capped backoff between them) and Tune's loop never waits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import defaults
from ..redact import redact
from .applier import RETRY_S, Applier, _first_line, workers_for
from .journal_files import (
    JOURNAL,
    LOCK,
    OFFSET,
    REFUSED,  # noqa: F401 (where refused events are kept, beside the journal)
    Backlog,
    backlog,
    open_for_append,
    read_offset,
    whole_lines,
    write_offset,
)

# The end of a sweep waits for the journal to reach MLflow while events keep going in, and gives up
# after this long without one: a server back within a minute still gets everything before the
# command returns; one that stays down costs the user a minute, then `sweep sync` replays the rest.
DRAIN_S = 60.0
SYNC_WAIT_S = 10.0  # `sweep sync` gives a still-unreachable server this long before it gives up
# One HTTP attempt per call: MLflow's own retries (minutes of backoff, and urllib3 resends a POST
# whose answer was lost, which can double a batch) give way to this module's retry, which rereads
# the run from the server before sending again.
SHORT_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# set_terminated on a server reads the whole run back to print its URL: a request per trial, and
# a line per trial on the sweep's terminal (docs/platform.md)
SHORT_HTTP["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"


class Journal:
    """One sweep's journal: appended to by the Tune callback, applied by a background thread."""

    def __init__(self, folder: Path, tracker, workers: int | None = None):
        self.folder, self.tracker = Path(folder), tracker
        self.workers = workers or workers_for(tracker.uri)
        self.path, self.offset_path = self.folder / JOURNAL, self.folder / OFFSET
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = None  # opened by the first append: `sweep sync` only reads
        self._seq, self._end = whole_lines(self.path)
        self._applied, self._applied_events = read_offset(self.offset_path, self._end)
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.last_error = ""
        self.orphans = 0  # runs closed by an "orphans" event
        self.refused = 0  # events MLflow refused as invalid, set aside in REFUSED

    # -- the writer's side (Tune's thread) --------------------------------------------------

    def append(self, kind: str, **fields: Any) -> None:
        """Write one event, durably, and wake the applier."""
        with self._cond:
            if self._writer is None:
                self._writer = open_for_append(self.path, self._end)
            line = json.dumps({"seq": self._seq, "kind": kind, **fields}, default=str, separators=(",", ":"))
            self._writer.write(line.encode() + b"\n")
            self._writer.flush()
            os.fsync(self._writer.fileno())
            self._seq += 1
            self._end = self._writer.tell()
            self._cond.notify_all()

    # -- the applier ------------------------------------------------------------------------

    def start(self) -> Journal:
        if self._thread is None:
            _short_http(+1)
            self._thread = threading.Thread(target=self._run, name=f"mlflow-journal {self.folder.name}", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        lock = open(self.folder / LOCK, "a")  # noqa: SIM115 (held for the thread's life)
        delay = RETRY_S[0]
        try:
            while not self._lock(lock):  # a `sweep sync` of this sweep in another process
                self.last_error = f"another process holds {self.folder / LOCK} (a `sweep sync` or another driver)"
                if self._wait(delay):
                    return
                delay = min(2 * delay, RETRY_S[1])
            while True:
                try:
                    self.path.touch()  # the writer creates it at its first event, maybe after this
                    with open(self.path, "rb") as reader:
                        return Applier(self, self.workers).run(reader)
                except OSError as err:  # the journal's disk, not MLflow: keep trying all the same
                    self.last_error = _first_line(err)
                    if self._wait(RETRY_S[1]):
                        return
        finally:
            lock.close()

    @staticmethod
    def _lock(lock) -> bool:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _wait(self, seconds: float) -> bool:
        """Sleep, unless told to stop; True when stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self._stop, timeout=seconds)
            return self._stop

    def _advance(self, done: int, events: int) -> None:
        """Record that the journal is applied up to byte `done` (sweep/tracking/applier.py)."""
        with self._cond:
            if done <= self._applied:
                return
            self._applied, self._applied_events, self.last_error = done, events, ""
            self._cond.notify_all()
        write_offset(self.offset_path, done, events)

    # -- waiting for it, and what is left -----------------------------------------------------

    def drain(self, patience: float | None = None, verbose: bool = False) -> bool:
        """Wait until every event is applied, while events keep being applied; give up after
        `patience` seconds (DRAIN_S) without one. True when the journal is all in MLflow."""
        patience = DRAIN_S if patience is None else patience
        last, deadline, told = -1, 0.0, not verbose
        started = time.monotonic()
        while True:
            with self._cond:
                if self._applied >= self._end:
                    return True
                if self._applied != last:
                    last, deadline = self._applied, time.monotonic() + patience
                if time.monotonic() >= deadline:
                    return False
                self._cond.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            if not told and time.monotonic() - started > 2:
                left = self.backlog()
                print(f"Waiting for MLflow at {redact(self.tracker.uri)}: {left.events} tracking events to write", flush=True)
                told = True

    def close(self) -> None:
        """Stop the applier (an HTTP attempt in flight ends within its timeout) and the writer."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=float(SHORT_HTTP["MLFLOW_HTTP_REQUEST_TIMEOUT"]) + 5)
            _short_http(-1)
            self._thread = None
        if self._writer is not None:
            self._writer.close()

    def backlog(self) -> Backlog:
        return backlog(self.folder)

    def message(self, name: str, storage: Path) -> str:
        """What is not in MLflow, where it is kept, and the command that replays it."""
        left = self.backlog()
        command = defaults.command("sync", name, storage)
        why = f" ({self.last_error})" if self.last_error else ""
        return (
            f"{left.events} tracking events ({left.epochs} epochs of {left.trials} trials) are not in MLflow at "
            f"{redact(self.tracker.uri)} yet{why}. They are kept in {self.path}; replay them with: {command}"
        )


# -- one journal per sweep folder in this process: the Tune callback (a new one, or the one Tune
# unpickled on `sweep resume`) and the end of the sweep share it, so one thread applies in order.

_open: dict[Path, Journal] = {}
_open_lock = threading.Lock()


def open_journal(folder: Path, tracker) -> Journal:
    """This process's journal of the sweep in `folder`, its applier started."""
    key = Path(folder).resolve()
    with _open_lock:
        if key not in _open:
            _open[key] = Journal(key, tracker).start()
        return _open[key]


def close_journal(journal: Journal) -> None:
    with _open_lock:
        _open.pop(journal.folder.resolve(), None)
    journal.close()


_http_lock = threading.Lock()
_http_users = 0
_saved_http: dict[str, str | None] = {}


@contextlib.contextmanager
def short_http() -> Iterator[None]:
    """SHORT_HTTP for MLflow calls of this process in the block, as while an applier runs."""
    _short_http(+1)
    try:
        yield
    finally:
        _short_http(-1)


def _short_http(change: int) -> None:
    """Set SHORT_HTTP while any applier runs in this process; then restore the user's values,
    for the report and other MLflow calls after the sweep."""
    global _http_users
    with _http_lock:
        _http_users += change
        if change > 0 and _http_users == 1:
            _saved_http.update({key: os.environ.get(key) for key in SHORT_HTTP})
            os.environ.update(SHORT_HTTP)
        elif change < 0 and _http_users == 0:
            for key, value in _saved_http.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
