"""The Ray Tune callback of a sweep: each trial event becomes one journal event, in the driver.

Nothing here waits for MLflow: the journal (sweep/tracking/journal.py) keeps the event on disk and
its thread applies it through the sweep's SweepTracker (sweep/tracking/runs.py).
"""

from __future__ import annotations

from pathlib import Path

from ray.tune import Callback

from .journal import open_journal
from .runs import SweepTracker
from .schema import Event, Outcome


class MlflowTracking(Callback):
    """Ray Tune callback writing the sweep's tracking events to its journal (in `folder`), from
    which the journal's thread feeds a SweepTracker; nothing here waits for MLflow."""

    def __init__(self, tracker: SweepTracker, folder: Path):
        self.tracker, self.folder = tracker, Path(folder)

    def _event(self, kind: str, trial=None, **fields) -> None:
        if trial is not None:
            fields = {"trial": trial.trial_id, "config": trial.config, **fields}
        open_journal(self.folder, self.tracker).append(kind, **fields)

    def setup(self, **info) -> None:
        self._event(Event.SWEEP)  # the parent exists before the first child

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._event(Event.START, trial)  # a trial that fails at once is still on record

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._event(Event.EPOCH, trial, result={key: value for key, value in result.items() if key != "config"})

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        self._event(Event.CHECKPOINT, trial, uri=checkpoint_uri(checkpoint))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        status = (trial.last_result or {}).get("status", Outcome.RUNNING)
        self._event(Event.END, trial, outcome=Outcome.STOPPED_EARLY if status == Outcome.RUNNING else status)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self._event(Event.FAILURE, trial, error=_error_text(trial), final=False)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._event(Event.FAILURE, trial, error=_error_text(trial), final=True)
        self._event(Event.END, trial, outcome=Outcome.FAILED)


def checkpoint_uri(checkpoint) -> str:
    """Where a Tune checkpoint is: its folder, or an s3:// URI in a bucket (docs/architecture.md)."""
    kind = getattr(checkpoint.filesystem, "type_name", "local")
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"


def _error_text(trial) -> str:
    """The trial's traceback as Tune wrote it (error.txt in its folder), if any."""
    path = trial.error_file
    try:
        return Path(path).read_text() if path else ""
    except OSError:
        return ""
