"""How the journal reaches MLflow: many epochs of a run per request, independent runs side by side.

The applier reads what the journal holds past its applied offset (up to ROUND events) and applies
it in groups. Events of trials are partitioned by trial: each trial's events stay in order, in one
thread, while up to `workers` trials are applied side by side. A trial's consecutive `epoch` (and
`checkpoint`) events go out as one `log_batch` (SweepTracker.log_epochs), which also carries the
params of its `start` and the outcome of its `end` when those are queued next to them. Events of
no trial (`sweep`, `orphans`, `finish`, `extend`) are barriers: applied alone, after everything
before them and before anything after. So the further the journal is behind, the more each
request carries: a 20-epoch trial applied from a backlog takes three requests (its run, its
epochs with params and outcome, its close).

Durability: the offset (journal_files.write_offset) only ever names a prefix of the journal that
is applied: the start of the earliest event not applied yet, the minimum over the group's trials.
Events after it may be in MLflow already (another trial's, further on); a crash re-applies them,
which the tracker's idempotent methods make harmless (docs/architecture.md, the data path).

Failures: a trial whose request fails is retried from the event that failed, alone (not batched,
so a refusal names its event), after the tracker forgot what it knew of MLflow and rereads each
run's last step: a batch whose answer was lost is not sent twice. A trial's event MLflow refuses
as invalid REFUSE_AFTER times in a row is set aside in REFUSED, and that trial goes on.
"""

from __future__ import annotations

import bisect
import json
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from ..redact import redact
from .journal_files import REFUSED
from .schema import Event

# MLflow on SQLite has no lock of its own: parallel writers in one process get "database is
# locked" (docs/platform.md), so a sqlite:// store is written by one thread; a server by WORKERS.
WORKERS = 8
ROUND = 5000  # events read per round at most: the batch a backlog is applied in
# An event MLflow refuses as invalid (a run deleted in the UI mid-sweep, a value over its limits)
# would be refused forever and hold back every event of its trial after it: after this many
# refusals in a row it is set aside in REFUSED, said on the terminal, and the journal goes on.
REFUSE_AFTER = 3
PERMANENT = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "INVALID_STATE", "BAD_REQUEST"}
RETRY_S = (0.5, 5.0)  # wait after a failed attempt: the first, doubling up to the cap
# A trial's consecutive epochs and checkpoints go out together: the curves, and the latest
# checkpoint as its run's tag (only the latest is kept, by Tune and on the run).
BATCHED = {Event.EPOCH, Event.CHECKPOINT}
# Once new events are in, the applier waits this long for more before it reads, so a live sweep's
# epochs of one run share a request too (each request has a fixed cost: a transaction, a commit,
# the run read back). An epoch reaches MLflow at most this much later; a stopping journal does
# not wait.
LINGER_S = 0.25


def workers_for(uri: str) -> int:
    return WORKERS if uri.startswith(("http://", "https://")) else 1


@dataclass
class Item:
    """One journal event and where its line is."""

    start: int
    end: int
    event: dict[str, Any]


class Lane:
    """One trial's events of a group (or one barrier), applied in order by one thread."""

    def __init__(self, items: list[Item]):
        self.items, self.pos, self.refusals, self.solo = items, 0, 0, False
        self.error: Exception | None = None

    @property
    def done(self) -> bool:
        return self.pos >= len(self.items)


def read_items(reader, start: int, end: int, limit: int) -> list[Item]:
    """The whole lines from byte `start` up to `end`, at most `limit` of them."""
    reader.seek(start)
    items = []
    while start < end and len(items) < limit:
        line = reader.readline()
        if not line.endswith(b"\n"):  # only a whole line is an event
            break
        items.append(Item(start, start + len(line), json.loads(line)))
        start += len(line)
    return items


def groups(items: list[Item]) -> list[list[Lane]]:
    """Lanes by trial, between barriers (each a group of its own)."""
    out: list[list[Lane]] = []
    lanes: dict[str, list[Item]] = {}
    for item in items:
        trial = item.event.get("trial")
        if trial is None:
            if lanes:
                out.append([Lane(v) for v in lanes.values()])
                lanes = {}
            out.append([Lane([item])])
        else:
            lanes.setdefault(trial, []).append(item)
    if lanes:
        out.append([Lane(v) for v in lanes.values()])
    return out


class Applier:
    """Applies a journal (sweep/tracking/journal.py) through its tracker, as the module says."""

    def __init__(self, journal, workers: int):
        self.journal, self.tracker = journal, journal.tracker
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix=f"mlflow-journal {journal.folder.name}")

    def run(self, reader) -> None:
        journal = self.journal
        try:
            while True:
                with journal._cond:
                    journal._cond.wait_for(lambda: journal._stop or journal._applied < journal._end)
                    if journal._stop:
                        return
                if journal._wait(LINGER_S):
                    return
                with journal._cond:
                    start, end, count = journal._applied, journal._end, journal._applied_events
                items = read_items(reader, start, end, ROUND)
                if not items:
                    journal._wait(0.05)
                    continue
                starts = [item.start for item in items]
                for lanes in groups(items):
                    if not self._apply_group(lanes, starts, count):
                        return
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _apply_group(self, lanes: list[Lane], starts: list[int], count: int) -> bool:
        """Apply a group's lanes side by side until all are done, recording the applied prefix
        as it grows; False when the journal stops first."""
        journal, delay = self.journal, RETRY_S[0]
        end = max(lane.items[-1].end for lane in lanes)
        while True:
            futures = {self.pool.submit(self._run_lane, lane) for lane in lanes if not lane.done}
            while futures:
                _, futures = wait(futures, timeout=0.5)
                self._advance(lanes, end, starts, count)
            if journal._stop:
                return False
            failed = [lane for lane in lanes if not lane.done]
            if not failed:
                return True
            self.tracker.reset()  # reread runs and last steps from the server before resending
            retry = False
            for lane in failed:
                permanent = getattr(lane.error, "error_code", None) in PERMANENT
                lane.refusals = lane.refusals + 1 if permanent else 0
                lane.solo = True  # the failed event alone: a refusal names it
                if lane.refusals >= REFUSE_AFTER:
                    self._set_aside(lane.items[lane.pos].event, lane.error)
                    lane.pos, lane.refusals, lane.solo = lane.pos + 1, 0, False
                    delay = RETRY_S[0]  # the journal moved on: the next event starts a fresh backoff
                else:
                    retry = True
            self._advance(lanes, end, starts, count)
            if retry:
                journal.last_error = _first_line(next(lane.error for lane in lanes if not lane.done))
                if journal._wait(delay):
                    return False
                delay = min(2 * delay, RETRY_S[1])

    def _run_lane(self, lane: Lane) -> None:
        """Apply a lane's events from its position; stop at the first failure (kept in the lane)."""
        lane.error = None
        while not lane.done and not self.journal._stop:
            n = 1
            if lane.items[lane.pos].event["kind"] in BATCHED and not lane.solo:  # the trial's next epochs: one request
                while lane.pos + n < len(lane.items) and lane.items[lane.pos + n].event["kind"] in BATCHED:
                    n += 1
                if lane.pos + n < len(lane.items) and lane.items[lane.pos + n].event["kind"] == Event.END:
                    n += 1  # and its end, whose outcome tag rides on the same request
            batch = lane.items[lane.pos : lane.pos + n]
            # a trial's start with its epochs queued behind it: its params ride with their request
            then = lane.items[lane.pos + n].event["kind"] if lane.pos + n < len(lane.items) and not lane.solo else None
            try:
                self._apply(batch, params_follow=then in BATCHED)
            except Exception as err:  # noqa: BLE001 (any failure: keep the event, retry it)
                lane.error = err
                return
            lane.pos, lane.refusals, lane.solo = lane.pos + n, 0, False

    def _apply(self, batch: list[Item], params_follow: bool = False) -> None:
        event = batch[0].event
        if event["kind"] == Event.START and params_follow:
            self.tracker.child(event["trial"], event["config"], defer_params=True)
            return
        if event["kind"] in BATCHED:  # the curves, and the latest checkpoint: the run's state after them all
            results = [item.event["result"] for item in batch if item.event["kind"] == Event.EPOCH]
            uri = next((item.event["uri"] for item in reversed(batch) if item.event["kind"] == Event.CHECKPOINT), "")
            outcome = batch[-1].event["outcome"] if batch[-1].event["kind"] == Event.END else ""
            self.tracker.log_epochs(event["trial"], event["config"], results, checkpoint=uri, outcome=outcome)
            return
        apply = _APPLY.get(event["kind"])
        if apply is None:  # written by a newer version of this module
            warnings.warn(f"{self.journal.path}: skipped unknown event {event['kind']!r} (seq {event['seq']})", stacklevel=1)
            return
        apply(self.journal, event)

    def _advance(self, lanes: list[Lane], end: int, starts: list[int], count: int) -> None:
        """Record the applied prefix: up to the earliest event of the group not applied yet."""
        prefix = min((lane.items[lane.pos].start for lane in lanes if not lane.done), default=end)
        self.journal._advance(prefix, count + bisect.bisect_left(starts, prefix))

    def _set_aside(self, event: dict[str, Any], err: Exception) -> None:
        """Keep a refused event, with MLflow's reason, in REFUSED, and say so once."""
        journal = self.journal
        with journal._cond, open(journal.folder / REFUSED, "a") as out:
            out.write(json.dumps({"event": event, "error": _first_line(err)}) + "\n")
            journal.refused += 1
        trial = f" of trial {event['trial']}" if event.get("trial") else ""
        print(
            f"MLflow refused the {event['kind']} event{trial} (journal event {event.get('seq')}): {_first_line(err)}; "
            f"kept in {journal.folder / REFUSED}, the journal goes on",
            flush=True,
        )


def _close_orphans(journal, event: dict[str, Any]) -> None:
    journal.orphans += journal.tracker.close_orphans()


# How each journal event reaches MLflow (epochs: Applier._apply): every tracker method is idempotent.
_APPLY: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    Event.SWEEP: lambda journal, event: journal.tracker.parent,
    Event.START: lambda journal, event: journal.tracker.child(event["trial"], event["config"]),
    Event.FAILURE: lambda journal, event: journal.tracker.note_failure(
        event["trial"], event["config"], event["error"], final=event["final"], event=event["seq"]
    ),
    Event.END: lambda journal, event: journal.tracker.end_trial(event["trial"], event["config"], event["outcome"]),
    Event.ORPHANS: _close_orphans,
    Event.FINISH: lambda journal, event: journal.tracker.finish(event["best"]),
    Event.EXTEND: lambda journal, event: journal.tracker.reopen(event["spec"]),
}


def _first_line(err: Exception | None) -> str:
    """The error for a message: its first line, short, without a password a URL in it may hold."""
    text = str(err).strip().splitlines()
    return redact(f"{type(err).__name__}: {text[0][:200] if text else ''}")
