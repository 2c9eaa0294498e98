"""Retries for a trial whose reused actor fails before it starts.

With `reuse_actors=True` (sweep/tuning/driver.py) a pending trial is handed a cached actor and
sent its `reset` task. If that task fails (the actor's node died, seen as ActorUnavailableError
while Ray has not yet declared the actor dead), Ray Tune's controller hands the failure to
`_process_trial_failure`, which recovers only RUNNING trials: the trial is errored with its
`retries` unspent. A trial whose new actor fails while it is created is treated as running for
exactly this reason, in `TuneController._actor_failed`; `install()` gives a failed reset the same
treatment, so the trial goes back to the queue and starts on a fresh actor from its last
checkpoint, as any retried trial does (docs/platform.md, "Ray Tune").

This leans on Tune's private controller: the names it needs are checked first, and where a Ray
release lacks one, nothing is patched (and tests/test_recovery.py fails, naming the gap).
"""

from __future__ import annotations

import functools

from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial

_NEEDED = ("_trial_task_failure", "_set_trial_status", "_unstage_trial_with_resources")
_PATCHED = "_sweep_retries_failed_reset"


def install() -> bool:
    """Patch the controller once per process; whether the patch is in place."""
    if getattr(TuneController, _PATCHED, False):
        return True
    if not all(hasattr(TuneController, name) for name in _NEEDED):
        return False
    original = TuneController._trial_task_failure

    @functools.wraps(original)
    def trial_task_failure(self, trial: Trial, exception: Exception):
        resetting = getattr(self, "_resetting_trials", set())
        if trial.status == Trial.PENDING and trial in resetting:
            # as _actor_failed does for an actor that failed while being created: the reset will
            # never resolve, the trial's staged resources are released, and as a running trial it
            # is recovered while it has retries left
            resetting.discard(trial)
            if trial in getattr(self, "_staged_trials", ()):
                self._unstage_trial_with_resources(trial)
            self._set_trial_status(trial, Trial.RUNNING)
        return original(self, trial, exception)

    TuneController._trial_task_failure = trial_task_failure
    setattr(TuneController, _PATCHED, True)
    return True
