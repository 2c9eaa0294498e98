"""MLflow: one experiment per sweep, a parent run per sweep, a child run per trial, every epoch once.

Trials only report to Tune; in the driver, `SweepTracker` is the one writer to the tracking store.
A trial's epochs go out in `log_batch` requests with `step=epoch`: one per epoch while the journal
keeps up, many (up to MLflow's 1,000 metrics) while it is behind. A retried or resumed trial
replays epochs after its last checkpoint; those already logged are skipped, so no (metric, step)
point is ever written twice. The Tune callback (sweep/tracking/callback.py) does not call MLflow:
it appends each event to the sweep's journal (sweep/tracking/journal.py), whose threads apply them
through `SweepTracker` (different trials side by side, each trial's in order), whose every method
is idempotent: an MLflow server that is down stalls neither Tune nor the trials, and an event
applied twice (after an outage, a killed driver or `sweep sync`) is written once."""

from __future__ import annotations

import threading
import time
from typing import Any

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_ENTITIES_PER_BATCH

from ..spec import Arm, SweepSpec, dump_spec
from .records import chosen_text, curve_points
from .schema import (
    ARM_TAG,
    BEST_METRICS,
    BEST_TAG_PREFIX,
    CHECKPOINT_TAG,
    CURVES,
    ERROR_TAG,
    ERRORS_FOLDER,
    EXPERIMENT_KIND,
    FAILURE_EVENT_TAG,
    FAILURES_TAG,
    NODE_KEY_TAG,
    NODE_ROLE,
    OUTCOME_TAG,
    PARENT_ROLE,
    PARENT_RUN_TAG,
    PHASE_TAG,
    ROLE_TAG,
    SPEC_ARTIFACT,
    STUDY_TAG,
    STUDY_TRIAL_TAG,
    TRIAL_TAG,
    WHERE_TAGS,
    Outcome,
    Phase,
)


class SweepTracker:
    """The sweep's MLflow records, found again by their tags after a driver restart."""

    _resolving = threading.RLock()  # the experiment and parent, found or created by one thread
    LISTING_PAGE = 1000  # runs per request when the tracker lists the sweep's trial runs

    def __init__(self, spec: SweepSpec):
        self.uri, self.sweep, self._spec_yaml = spec.tracking.mlflow_uri, spec.name, dump_spec(spec, redacted=True)
        from ..search.links import StudyLinks  # optuna, here only: `sweep train` logs through RunLogger without it

        self.links = StudyLinks(spec.tracking.optuna_storage)  # each study trial gets its run's id
        self._summary = {
            "dataset": spec.dataset,
            "models": ",".join(spec.models),
            "optimizers": ",".join(spec.optimizers),
            "method": spec.search.method,
            "trials_per_arm": str(spec.search.trials_per_arm),
            "seeds": ",".join(map(str, spec.seeds)),
            "confirm_seeds": "{}-{}".format(*spec.confirm_range) if spec.looks > 1 else str(spec.confirm_range[0]),
        }
        self.reset()

    def reset(self) -> None:
        """Forget what this tracker knows of MLflow: after a failed request, the runs and their
        last steps are read again from the server, which may or may not have applied it."""
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._parent: str | None = None
        self._runs: dict[str, str] = {}  # Ray trial id -> MLflow run id
        self._logged: dict[str, int] = {}  # Ray trial id -> last epoch in MLflow
        self._placed: set[str] = set()  # Ray trial ids whose run holds the where-tags
        self._open: dict[str, bool] = {}  # Ray trial id -> its run RUNNING, as found or created
        # Ray trial id -> its run in MLflow, read in one listing when first needed: a trial not in
        # it gets its run without a search per trial (None: not read since the last reset)
        self._existing: dict[str, Run] | None = None
        self._unparamed: dict[str, list[Param]] = {}  # Ray trial id -> params its run still needs

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks; clients reconnect
        fresh = object.__new__(type(self))
        fresh.reset()  # what a tracker knows of MLflow is per process: it travels as reset() leaves it
        return {**self.__dict__, **fresh.__dict__}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        with self._resolving:
            return self._experiment()

    def _experiment(self) -> str:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.sweep)
            self._experiment_id = (
                found.experiment_id if found else self.client.create_experiment(self.sweep, tags=EXPERIMENT_KIND)
            )
        return self._experiment_id

    def _find(self, tag: str, value: str) -> Run | None:
        runs = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{tag}` = '{value}'", max_results=1)
        return runs[0] if runs else None

    @property
    def parent(self) -> str:
        with self._resolving:  # two journal threads must not both create the parent
            return self._parent_run()

    def _parent_run(self) -> str:
        if self._parent is None:
            found = self._find(ROLE_TAG, PARENT_ROLE)
            if found is None:
                found = self.client.create_run(self.experiment_id, run_name=f"{self.sweep} (sweep)", tags={ROLE_TAG: PARENT_ROLE})
            if not found.data.params:  # new, or created by a request whose next one failed
                self.client.log_batch(found.info.run_id, params=[Param(k, v) for k, v in self._summary.items()])
                self.client.log_text(found.info.run_id, self._spec_yaml, SPEC_ARTIFACT)
            self._parent = found.info.run_id
        return self._parent

    def node_run(self, key: str, name: str, tags: dict[str, str]) -> str:
        """The run of one Ray node's system metrics under the parent, found again by its key (a
        resumed sweep continues it) and RUNNING, so that MLflow's monitor logs to it."""
        query = f"tags.`{ROLE_TAG}` = '{NODE_ROLE}' and tags.`{NODE_KEY_TAG}` = '{key}'"
        found = self.client.search_runs([self.experiment_id], filter_string=query, max_results=1)
        tags = {PARENT_RUN_TAG: self.parent, ROLE_TAG: NODE_ROLE, NODE_KEY_TAG: key, **tags}
        if not found:
            return self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        run_id = found[0].info.run_id
        self.client.update_run(run_id, status="RUNNING")
        self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        return run_id

    def _trial_runs(self) -> dict[str, Run]:
        """The runs under the parent by Ray trial id, in one paged listing (once per reset)."""
        with self._resolving:
            if self._existing is None:
                query, existing, token = f"tags.`{PARENT_RUN_TAG}` = '{self.parent}'", {}, ""
                while token is not None:
                    page = self.client.search_runs(
                        [self.experiment_id], query, max_results=self.LISTING_PAGE, page_token=token or None
                    )
                    existing.update((run.data.tags[TRIAL_TAG], run) for run in page if TRIAL_TAG in run.data.tags)
                    token = page.token or None
                self._existing = existing
            return self._existing

    def child(self, trial_id: str, config: dict[str, Any], defer_params: bool = False) -> str:
        """The trial's run: found by its Ray trial id, or created under the parent; a search
        trial's run and its Optuna trial name each other (study and number as tags, the run id
        as the study trial's user attribute). With `defer_params` (its epochs are queued behind
        it in the journal) the run's params go out with its next request instead of one of their
        own."""
        if trial_id in self._runs:
            return self._runs[trial_id]
        # A trial the listing does not know has no run: the one writer of trial runs is this
        # journal, and a request whose answer was lost resets the tracker, so the listing is read
        # again before that trial's event is retried.
        found = self._trial_runs().get(trial_id)
        number = config.get("study_trial")
        study = Arm.parse(config["arm"]).study_name(self.sweep)
        if found is None:
            train, phase = config["train"], config.get("phase", Phase.SEARCH)
            confirm = f" confirm seed {train['seed']}" if phase == Phase.CONFIRM else ""
            name = f"{train['optimizer']} {train['model']}{confirm} {trial_id.split('_')[-1]}"
            tags = {PARENT_RUN_TAG: self.parent, TRIAL_TAG: trial_id, ARM_TAG: config["arm"], PHASE_TAG: phase}
            if number is not None:
                tags.update({STUDY_TAG: study, STUDY_TRIAL_TAG: str(number)})
            found = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
            self._existing[trial_id] = found
            self._logged[trial_id] = 0
        else:
            history = self.client.get_metric_history(found.info.run_id, "val_acc")
            self._logged[trial_id] = max((m.step for m in history), default=0)
            if set(WHERE_TAGS.values()) <= set(found.data.tags):
                self._placed.add(trial_id)
        run_id = found.info.run_id
        if not found.data.params:  # new, or created by a request whose next one failed
            params = [Param(key, str(value)) for key, value in sorted(config["train"].items())]
            if defer_params:
                self._unparamed[trial_id] = params
            else:
                self.client.log_batch(run_id, params=params)
        if number is not None:  # once per trial and process; an Optuna error retries the event
            self.links.link(study, int(number), run_id)
        self._runs[trial_id], self._open[trial_id] = run_id, found.info.status == "RUNNING"
        return run_id

    def log_epochs(
        self, trial_id: str, config: dict[str, Any], results: list[dict[str, Any]], checkpoint: str = "", outcome: str = ""
    ) -> int:
        """Log consecutive epochs of a trial in as few requests as MLflow takes (1,000 metrics
        each), and its latest `checkpoint` as a tag with the last (Tune keeps the latest only);
        epochs already there are skipped. With an `outcome`, the trial's end as well: the outcome
        tag rides on the last request and the run is closed. The number of epochs logged."""
        run_id, last = self.child(trial_id, config), self._logged[trial_id]
        # where the trial ran, once: with its first epoch, or later if that request was cut off
        # after MLflow's log_batch had stored the metrics (it commits them before the tags)
        where = [RunTag(k, str(results[0].get(key, ""))) for key, k in WHERE_TAGS.items()] if results else []
        placed = [] if trial_id in self._placed else where
        # a run closed already (a trial restored as unfinished after a killed driver ends again)
        ending = outcome and self._open[trial_id]
        last_tags = ([RunTag(CHECKPOINT_TAG, checkpoint)] if checkpoint else []) + (
            [RunTag(OUTCOME_TAG, outcome)] if ending else []
        )
        new = []
        for result in results:  # a replay in order: only epochs after the last one logged
            if int(result["epoch"]) > last:
                new.append(result)
                last = int(result["epoch"])
        params = self._unparamed.get(trial_id, [])
        if not new and placed + last_tags + params:
            self.client.log_batch(run_id, params=params, tags=placed + last_tags)
            self._placed.update([trial_id] if placed else [])
            self._unparamed.pop(trial_id, None)
        batch: list[Metric] = []
        for i, result in enumerate(new):
            batch += curve_points(result)
            final = i + 1 == len(new)
            if final or len(batch) + len(CURVES) + len(placed) + len(last_tags) + len(params) > MAX_ENTITIES_PER_BATCH:
                self.client.log_batch(run_id, metrics=batch, params=params, tags=placed + (last_tags if final else []))
                self._logged[trial_id], batch, placed, params = int(result["epoch"]), [], [], []
                self._placed.add(trial_id)
                self._unparamed.pop(trial_id, None)
        if ending:
            self.client.set_terminated(run_id, "FAILED" if outcome == Outcome.FAILED else "FINISHED")
            self._open[trial_id] = False
        return len(new)

    def note_failure(self, trial_id: str, config: dict[str, Any], error: str, final: bool, event: int | None = None) -> None:
        """Keep a trial's error in its run: the last line as a tag, the traceback as
        errors/failure_N.txt, and the count of failures (each retry from a checkpoint follows
        one). `event`, the journal's number for this failure, makes a second call a no-op."""
        run_id = self.child(trial_id, config)
        tags = self.client.get_run(run_id).data.tags
        if event is not None and int(tags.get(FAILURE_EVENT_TAG, "-1")) >= event:
            return  # already on the run (journal events reach a run in order)
        failures = int(tags.get(FAILURES_TAG, "0")) + 1
        last = next((line for line in reversed(error.strip().splitlines()) if line.strip()), "unknown error")
        if error:  # before the count: a retried call rewrites the same file
            self.client.log_text(run_id, error, f"{ERRORS_FOLDER}/failure_{failures}.txt")
        batch = [RunTag(FAILURES_TAG, str(failures)), RunTag(ERROR_TAG, last[:500])]
        event_tag = [RunTag(FAILURE_EVENT_TAG, str(event))] if event is not None else []
        self.client.log_batch(run_id, params=self._unparamed.get(trial_id, []), tags=batch + event_tag)
        self._unparamed.pop(trial_id, None)

    def end_trial(self, trial_id: str, config: dict[str, Any], outcome: str) -> None:
        self.log_epochs(trial_id, config, [], outcome=outcome)

    def close_orphans(self) -> int:
        """At the end of a sweep, close child runs still RUNNING: trials the driver had started
        when it was killed and that its last saved state did not know (none ran again)."""
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{self.parent}' and attributes.status = 'RUNNING'"
        )
        orphans = [run for run in found if run.data.tags.get(ROLE_TAG) != NODE_ROLE]  # node runs end with their monitor
        for run in orphans:
            self.client.set_tag(run.info.run_id, OUTCOME_TAG, Outcome.LOST)
            self.client.set_terminated(run.info.run_id, "KILLED")
        self._open = dict.fromkeys(self._open, False)  # every trial's run is closed now
        return len(orphans)

    def reopen(self, spec_yaml: str) -> None:
        """A sweep extended on resume (its budget raised): the parent holds the new spec and runs
        again until `finish`. Its params stay the sweep's at its start (MLflow never changes a
        param); the report reads the spec artifact."""
        self.client.log_text(self.parent, spec_yaml, SPEC_ARTIFACT)
        self.client.update_run(self.parent, status="RUNNING")

    def finish(self, best: dict[str, dict[str, Any]]) -> None:
        """Record each arm's chosen setting (sweep/compare/choice.py) on the parent run and close
        it: the setting in words as a best.* tag, its mean final val_acc and test_acc as metrics
        (best_val_acc/MODEL/RULE, ...), which the runs table sorts and charts. A metric already
        there with the same value is not logged again, so the event stays idempotent; a sweep
        extended later adds a point with its new value."""
        tags = [RunTag(f"{BEST_TAG_PREFIX}{arm}", chosen_text(b)) for arm, b in best.items()]
        have, stamp = self.client.get_run(self.parent).data.metrics, int(time.time() * 1000)
        metrics = [
            Metric(prefix + arm, float(b[key]), stamp, 0)
            for arm, b in best.items()
            for key, prefix in BEST_METRICS.items()
            if b.get(key) is not None and have.get(prefix + arm) != float(b[key])
        ]
        self.client.log_batch(self.parent, metrics=metrics, tags=tags)
        self.client.set_terminated(self.parent, "FINISHED")
