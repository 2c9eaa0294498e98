"""The sweep's tracking journal: every MLflow write goes through a local file first.

The Tune callback (sweep/tracking/callback.py) appends one JSON line per tracking event to
`mlflow_journal.jsonl` in the sweep's checkpoint folder, flushed and fsync'd before the callback
returns, so nothing a trial reported is lost if MLflow is down or the driver dies. A thread in
the driver applies the events in order through `SweepTracker`, whose methods are idempotent;
`mlflow_journal.offset` records how far it got, so `sweep resume` or `sweep sync` continue from
there. While MLflow is unreachable the thread retries the same event (short HTTP attempts, a
capped backoff between them) and Tune's loop never waits for the server.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import defaults
from ..redact import redact
from .journal_files import (
    JOURNAL,
    LOCK,
    OFFSET,
    REFUSED,
    Backlog,
    backlog,
    open_for_append,
    read_offset,
    whole_lines,
    write_offset,
)
from .schema import Event

# An event MLflow refuses as invalid (a run deleted in the UI mid-sweep, a value over its limits)
# would be refused forever and hold back every event after it: after this many refusals in a row
# it is set aside in REFUSED, said on the terminal, and the journal goes on.
REFUSE_AFTER = 3
PERMANENT = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE", "BAD_REQUEST"}
# The end of a sweep waits for the journal to reach MLflow while events keep going in, and gives up
# after this long without one: a server back within a minute still gets everything before the
# command returns; one that stays down costs the user a minute, then `sweep sync` replays the rest.
DRAIN_S = 60.0
SYNC_WAIT_S = 10.0  # `sweep sync` gives a still-unreachable server this long before it gives up
RETRY_S = (0.5, 5.0)  # wait after a failed attempt: the first, doubling up to the cap
# One HTTP attempt per call: MLflow's own retries (minutes of backoff, and urllib3 resends a POST
# whose answer was lost, which can double a batch) give way to this module's retry, which rereads
# the run from the server before sending again.
SHORT_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class Journal:
    """One sweep's journal: appended to by the Tune callback, applied by a background thread."""

    def __init__(self, folder: Path, tracker):
        self.folder, self.tracker = Path(folder), tracker
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
                        return self._apply_all(reader)
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

    def _apply_all(self, reader) -> None:
        delay, refusals = RETRY_S[0], 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or self._applied < self._end)
                if self._stop:
                    return
                start = self._applied
            reader.seek(start)
            line = reader.readline()
            if not line.endswith(b"\n"):  # only a whole line is an event
                self._wait(0.05)
                continue
            try:
                self._apply(json.loads(line))
            except Exception as err:  # noqa: BLE001 (any failure: keep the event, retry it)
                self.last_error = _first_line(err)
                self.tracker.reset()  # reread runs and last steps from the server before resending
                refusals = refusals + 1 if getattr(err, "error_code", None) in PERMANENT else 0
                if refusals < REFUSE_AFTER:
                    if self._wait(delay):
                        return
                    delay = min(2 * delay, RETRY_S[1])
                    continue
                self._set_aside(line, err)
            delay, refusals = RETRY_S[0], 0
            with self._cond:
                self._applied, self._applied_events = start + len(line), self._applied_events + 1
                self.last_error = ""
                self._cond.notify_all()
            write_offset(self.offset_path, self._applied, self._applied_events)

    def _set_aside(self, line: bytes, err: Exception) -> None:
        """Keep a refused event, with MLflow's reason, in REFUSED, and say so once."""
        event = json.loads(line)
        with open(self.folder / REFUSED, "a") as out:
            out.write(json.dumps({"event": event, "error": _first_line(err)}) + "\n")
        self.refused += 1
        trial = f" of trial {event['trial']}" if event.get("trial") else ""
        print(
            f"MLflow refused the {event['kind']} event{trial} (journal event {event.get('seq')}): {_first_line(err)}; "
            f"kept in {self.folder / REFUSED}, the journal goes on",
            flush=True,
        )

    def _apply(self, event: dict[str, Any]) -> None:
        apply = _APPLY.get(event["kind"])
        if apply is None:  # written by a newer version of this module
            warnings.warn(f"{self.path}: skipped unknown event {event['kind']!r} (seq {event['seq']})", stacklevel=1)
            return
        apply(self, event)

    def _close_orphans(self, event: dict[str, Any]) -> None:
        self.orphans += self.tracker.close_orphans()

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


# How each journal event reaches MLflow: every tracker method is idempotent (see Journal).
_APPLY: dict[str, Callable[[Journal, dict[str, Any]], None]] = {
    Event.SWEEP: lambda journal, event: journal.tracker.parent,
    Event.START: lambda journal, event: journal.tracker.child(event["trial"], event["config"]),
    Event.EPOCH: lambda journal, event: journal.tracker.log_epoch(event["trial"], event["config"], event["result"]),
    Event.FAILURE: lambda journal, event: journal.tracker.note_failure(
        event["trial"], event["config"], event["error"], final=event["final"], event=event["seq"]
    ),
    Event.END: lambda journal, event: journal.tracker.end_trial(event["trial"], event["config"], event["outcome"]),
    Event.CHECKPOINT: lambda journal, event: journal.tracker.note_checkpoint(event["trial"], event["config"], event["uri"]),
    Event.ORPHANS: Journal._close_orphans,
    Event.FINISH: lambda journal, event: journal.tracker.finish(event["best"]),
    Event.EXTEND: lambda journal, event: journal.tracker.reopen(event["spec"]),
}

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


def _first_line(err: Exception) -> str:
    """The error for a message: its first line, short, without a password a URL in it may hold."""
    text = str(err).strip().splitlines()
    return redact(f"{type(err).__name__}: {text[0][:200] if text else ''}")


_http_lock = threading.Lock()
_http_users = 0
_saved_http: dict[str, str | None] = {}


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
