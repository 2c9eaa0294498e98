"""A sweep's status from its own folder: per arm, trials running / done / budget, epochs done of
the planned total and the val_acc of the setting chosen so far (sweep/compare/choice.py, as the
progress lines and the report choose); the sweep's state, elapsed time and ETA. The same
lines are the driver's live status (sweep/tuning/live.py) and `sweep status NAME`.

The numbers come from the journal (journal_files.JOURNAL: every trial's start, epochs and end,
fsync'd by the driver before Tune goes on), so they are exact in another terminal, on another
machine that mounts the checkpoint folder, and after the sweep ended. The state file
(defaults.STATE_FILE) holds what the journal cannot: the driver (pid, host), the sweep's state and
its running time, and the counts `sweep list sweeps` shows without reading every journal.
Imports nothing heavy (no Ray, MLflow or Optuna): docs/architecture.md, Commands.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compare.choice import Result, choose, trial_result
from ..defaults import SPEC_FILE, STATE_FILE, STOP_FILE
from ..errors import UserError
from ..spec import SweepSpec, read_saved_spec
from ..spec.budget import epochs_per_trial, planned_trials
from .journal_files import JOURNAL
from .schema import METRIC, Event, Phase

WINDOW_S = 600.0  # the ETA's epoch rate: the epochs of the last ten minutes before the newest one
SILENT_AFTER = 3  # a running driver writes its state every status interval; this many missed: gone
SILENT_MIN_S = 90.0  # ... and never sooner than this


class State:
    RUNNING = "running"
    STOPPED = "stopped"  # by a signal or `sweep stop`; `sweep resume NAME` continues it
    INTERRUPTED = "interrupted"  # its driver ended at once or died; `sweep resume NAME` continues it
    FINISHED = "finished"


@dataclass
class ArmStatus:
    budget: int  # trials at most (search budget + confirmation seeds)
    epochs: int  # epochs of one trial
    started: set[str] = field(default_factory=set)
    ended: set[str] = field(default_factory=set)
    confirming: set[str] = field(default_factory=set)  # its confirmation trials
    trained: dict[str, int] = field(default_factory=dict)  # trial -> epochs done
    last: dict[str, dict] = field(default_factory=dict)  # running search trial -> its last result
    results: dict[str, Result] = field(default_factory=dict)  # ended search trial -> its end, as the choice reads it

    @property
    def best(self) -> float | None:
        """The val_acc of the setting chosen so far from the ended search trials, by the one choice
        of sweep/compare/choice.py (the progress lines and the report choose the same); None
        before one has finished, or without a validation split."""
        choice = choose(self.results.values())
        return choice.val_acc if choice is not None else None

    @property
    def running(self) -> int:
        return len(self.started - self.ended)

    @property
    def done(self) -> int:
        return len(self.ended)

    @property
    def epochs_done(self) -> int:
        return sum(self.trained.values())

    @property
    def epochs_planned(self) -> int:
        """An ended trial counts the epochs it trained (ASHA may have stopped it early); every other
        trial of the budget, running or not started, its full `epochs`."""
        return sum(self.trained.get(trial, 0) for trial in self.ended) + self.epochs * max(0, self.budget - self.done)


class Board:
    """Per-arm counts fed with journal events; `read` takes the journal's new whole lines."""

    def __init__(
        self, budgets: dict[str, int], epochs: dict[str, int], result_of: Callable[[dict, dict, str], Result] | None = None
    ):
        self.arms = {arm: ArmStatus(budgets[arm], epochs[arm]) for arm in budgets}
        self.result_of = result_of  # (config, last result, outcome) -> Result; None: no choice made
        self.stamps: deque[float] = deque()  # Tune's timestamps of new epochs, within WINDOW_S of the newest
        self._offset, self._newest = 0, 0.0

    @classmethod
    def of(cls, spec: SweepSpec) -> Board:
        return cls(
            planned_trials(spec),
            epochs_per_trial(spec),
            lambda config, result, outcome: trial_result(spec, config, result, outcome),
        )

    def feed(self, event: dict[str, Any]) -> None:
        config, trial = event.get("config") or {}, event.get("trial")
        arm = self.arms.get(config.get("arm"))
        if arm is None or trial is None:
            return
        arm.started.add(trial)
        search = config.get("phase", Phase.SEARCH) == Phase.SEARCH
        if not search:
            arm.confirming.add(trial)
        if event["kind"] == Event.END:
            arm.ended.add(trial)
            last = arm.last.pop(trial, {})
            if search and self.result_of is not None:
                arm.results[trial] = self.result_of(config, last, event.get("outcome"))
        elif event["kind"] == Event.EPOCH:
            result = event.get("result") or {}
            epoch = int(result.get("epoch", 0))
            if epoch > arm.trained.get(trial, 0):  # a resumed trial replays epochs after its checkpoint
                arm.trained[trial] = epoch
                self._stamp(float(result.get("timestamp", time.time())))
            if search:
                arm.last[trial] = {key: result.get(key) for key in (METRIC, "val_loss", "test_acc")}

    def _stamp(self, stamp: float) -> None:
        self.stamps.append(stamp)
        self._newest = max(self._newest, stamp)
        while self.stamps[0] < self._newest - WINDOW_S:  # trials report out of order: a rough trim
            self.stamps.popleft()

    def read(self, folder: Path) -> Board:
        """Feed the journal's whole lines written since the last read."""
        path = Path(folder) / JOURNAL
        if path.exists():
            with open(path, "rb") as reader:
                reader.seek(self._offset)
                for line in reader:
                    if not line.endswith(b"\n"):  # the writer is mid-line: the rest next time
                        break
                    self._offset += len(line)
                    self.feed(json.loads(line))
        return self

    def totals(self) -> dict[str, int]:
        arms = self.arms.values()
        keys = ("running", "done", "budget", "epochs_done", "epochs_planned")
        return {key: sum(getattr(arm, key) for arm in arms) for key in keys}

    def eta(self) -> float | None:
        """Seconds left: the epochs left over the epoch rate of the window (None before two epochs)."""
        total = self.totals()
        recent = [stamp for stamp in self.stamps if stamp >= self._newest - WINDOW_S]
        return eta_seconds(total["epochs_planned"] - total["epochs_done"], recent)

    def confirmations(self) -> int:
        return sum(len(arm.confirming) for arm in self.arms.values())


def eta_seconds(left: int, stamps: list[float]) -> float | None:
    """Epochs `left` at the rate the `stamps` (times of the last window's epochs, all trials
    together) show: (n - 1) epochs in the span from the first to the last. None when unmeasured."""
    if left <= 0:
        return 0.0
    if len(stamps) < 2 or max(stamps) <= min(stamps):
        return None
    rate = (len(stamps) - 1) / (max(stamps) - min(stamps))
    return left / rate


def duration(seconds: float | None) -> str:
    """H:MM:SS, with days in front past one day; ? when unknown."""
    if seconds is None:
        return "?"
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


# -- a sweep's folder ------------------------------------------------------------------------------


def saved_spec(folder: Path) -> SweepSpec:
    """The spec a sweep saved when it started (checked then: not built again here, so listing many
    sweeps stays quick); UserError when the folder holds no sweep."""
    path = Path(folder) / SPEC_FILE
    if not path.exists():
        raise UserError([f"name: no sweep {Path(folder).name!r} in {Path(folder).parent}"])
    return read_saved_spec(path)


def sweep_status(folder: Path) -> list[str]:
    """`sweep status`: the live line's status, from the journal and the state file."""
    spec = saved_spec(folder)
    return status_lines(spec.name, Board.of(spec).read(folder), read_state(folder))


def request_stop(folder: Path) -> dict[str, Any]:
    """Ask a running sweep's driver to stop (it polls for STOP_FILE: sweep/tuning/signals.py); its
    state, or UserError when no driver runs it."""
    state = read_state(folder)
    what, why = current_state(state)
    if what != State.RUNNING:
        raise UserError([f"name: sweep {Path(folder).name!r} is not running ({what}{why})"])
    request = {"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()}
    temp = Path(folder) / f".{STOP_FILE}.tmp"
    temp.write_text(json.dumps(request))
    os.replace(temp, Path(folder) / STOP_FILE)
    return state


def wait_stopped(folder: Path, timeout: float, poll: float = 1.0) -> str:
    """The sweep's state once its driver left `running`, or `running` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        what, _ = current_state(read_state(folder))
        if what != State.RUNNING or time.monotonic() >= deadline:
            return what
        time.sleep(poll)


# -- the state file -----------------------------------------------------------------------------


def read_state(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(folder) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_state(folder: Path, state: dict[str, Any]) -> None:
    """Atomically (a reader never sees half a file): a temporary file, then os.replace."""
    path = Path(folder) / STATE_FILE
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(state, indent=1))
    os.replace(temp, path)


def driver_gone(state: dict[str, Any], now: float | None = None) -> str | None:
    """Why a `running` state's driver is not running any more (None while it is): its pid is not
    alive on this host, or it has not written its state for SILENT_AFTER status intervals."""
    if state.get("state") != State.RUNNING:
        return None
    if state.get("host") == socket.gethostname():
        try:
            os.kill(int(state["pid"]), 0)
        except ProcessLookupError:
            return f"its driver (pid {state['pid']}) is gone"
        except PermissionError:
            pass  # alive, another user's
    silent = (now or time.time()) - float(state.get("updated", 0))
    if silent > max(SILENT_AFTER * float(state.get("every_s") or 30.0), SILENT_MIN_S):
        return f"no word from its driver (pid {state.get('pid')} on {state.get('host')}) for {duration(silent)}"
    return None


def current_state(state: dict[str, Any] | None) -> tuple[str, str]:
    """(state, why) as a reader should take it: a `running` one whose driver is gone is interrupted."""
    if state is None:
        return "unknown", " (no state file: a sweep from before sweep status existed)"
    gone = driver_gone(state)
    return (State.INTERRUPTED, f" ({gone})") if gone else (state.get("state", "unknown"), "")


def elapsed(state: dict[str, Any] | None, now: float | None = None) -> float | None:
    """Time the sweep has run, over all its drivers: earlier sessions, then this one's."""
    if state is None:
        return None
    if state.get("state") == State.RUNNING and driver_gone(state, now) is None:
        return float(state.get("runtime_before_s", 0.0)) + (now or time.time()) - float(state["session_started"])
    return float(state.get("runtime_s", 0.0))


# -- the lines ------------------------------------------------------------------------------------


def status_lines(name: str, board: Board, state: dict[str, Any] | None, now: float | None = None) -> list[str]:
    """The status: one line for the sweep, one per arm, each starting with `status` (grep-able in a
    log). Trials count as running only while a driver runs them."""
    what, why = current_state(state)
    live = what == State.RUNNING
    total = board.totals()
    eta = f", eta {duration(board.eta())}" if live else ""
    running = f"{total['running']} running, " if live else ""
    lines = [
        f"status {name}: {what}{why}, {duration(elapsed(state, now))} elapsed{eta}; "
        f"{running}{total['done']}/{total['budget']} trials, {total['epochs_done']}/{total['epochs_planned']} epochs"
    ]
    for key, arm in board.arms.items():
        best = f"best {METRIC} {arm.best:.2f}" if arm.best is not None else "no setting chosen yet"
        running = f"{arm.running} running, " if live else ""
        lines.append(
            f"status   {key}: {running}{arm.done}/{arm.budget} trials, {arm.epochs_done}/{arm.epochs_planned} epochs, {best}"
        )
    return lines
