"""The tracking vocabulary: every name the sweep writes to MLflow or its journal, and reads back.

The writer (the Tune callback, the journal, the MLflow tracker) and the readers (the report,
`sweep sync`, the tests) import these names from here and nowhere else, so a tag renamed here is
renamed for all of them. MLflow reserves `mlflow.*` tags; the sweep's own begin with `sweep.`.
Values are plain strings (not Enum members), so they go into JSON, tags and messages as they are.
"""

from __future__ import annotations

from typing import Any, TypedDict

# -- MLflow tags ---------------------------------------------------------------------------------
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own: a child run's parent, nests it in the UI
RUN_NAME_TAG = "mlflow.runName"
ROLE_TAG, PARENT_ROLE = "sweep.role", "parent"  # the sweep's parent run carries sweep.role=parent
TRIAL_TAG = "ray.trial_id"  # the Ray Tune trial a child run records, found again by it
ARM_TAG = "sweep.arm"  # the arm's key, MODEL/RULE
PHASE_TAG = "sweep.phase"  # Phase.SEARCH or Phase.CONFIRM
STUDY_TAG = "sweep.study"  # the arm's Optuna study, <sweep>/<model>/<rule> (search trials)
STUDY_TRIAL_TAG = "sweep.study_trial"  # the Optuna trial number, in its arm's study
CHECKPOINT_TAG = "sweep.checkpoint"  # the trial's latest checkpoint: a path, or an s3:// URI
OUTCOME_TAG = "sweep.outcome"  # one of Outcome, set when the run ends
FAILURES_TAG = "sweep.failures"  # failures so far (each retry from a checkpoint follows one)
ERROR_TAG = "sweep.error"  # the last line of the latest failure's traceback
FAILURE_EVENT_TAG = "sweep.failure_event"  # journal number of the last failure on the run
BEST_TAG_PREFIX = "best."  # best.MODEL/RULE on the parent: the arm's best search trial
# node runs: one per Ray node under the parent, holding MLflow's system metrics (sweep/tuning/system_metrics.py)
NODE_ROLE, NODE_TAG, NODE_IP_TAG, NODE_ID_TAG = "node", "node", "node_ip", "ray.node_id"
CARD_TAG = "card"  # a node run's card (declared, or Ray's name for it), as trials' runs have it (WHERE_TAGS)
NODE_KEY_TAG = "sweep.node"  # what finds a node's run again: "HOST IP", plus the Ray node id where several share those
# MLflow 3's UI opens an experiment in its GenAI view unless it is marked as model training.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}

# -- artifacts -----------------------------------------------------------------------------------
SPEC_ARTIFACT = "sweep_spec.yaml"  # on the parent run, passwords redacted
ERRORS_FOLDER = "errors"  # errors/failure_N.txt: each failure's traceback
REPORT_FOLDER = "report"  # the report's files, on the parent run

# -- per-epoch metrics, logged with step=epoch ---------------------------------------------------
# images_per_s and the epoch's peak memory (trainers/hardware.py) show what the hardware did, beside the curves
CURVES = (
    *("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "epoch_time_s"),
    *("images_per_s", "peak_gpu_memory_mb", "peak_rss_mb"),
)
# in each epoch's result: when the trial reported it (seconds since the epoch, float), the curves'
# time in MLflow; Ray Tune's own `timestamp` is whole seconds, which put a short trial's last
# epoch before its own start
REPORTED_AT = "reported_at"
METRIC, MODE = "val_acc", "max"  # the objective: validation accuracy, never test accuracy
# on the parent run, per arm key: its chosen setting's mean final accuracies, e.g. best_val_acc/small_cnn/sgd
BEST_METRICS = {"val_acc": "best_val_acc/", "test_acc": "best_test_acc/"}


class Phase:
    SEARCH = "search"  # a trial the arm's study asked for
    CONFIRM = "confirm"  # the arm's best setting again, with a new seed


class Outcome:
    """How a trial's run ended (its OUTCOME_TAG). The first three are the trainer's statuses."""

    RUNNING = "running"  # no end recorded: the sweep was interrupted, or is still running
    FINISHED = "finished"
    DIVERGED = "diverged"  # the training loss stopped being finite
    STOPPED_EARLY = "stopped early"  # by the ASHA scheduler
    FAILED = "failed"  # raised after its last retry
    LOST = "lost (driver killed)"  # left open by a driver that died, closed at the end


# -- where a trial ran: the trainable adds these to every result, the tracker tags the run once ----
class TrialPlace(TypedDict):
    ray_node_id: str
    gpu: str  # the CUDA device's name, or "none"
    card: str  # the card label (sweep cluster), or the node's declared card without CUDA
    gpu_share: float  # the fraction of one GPU Ray assigned
    cuda_visible_devices: str
    trial_started_at: float  # time.time() when the trial (or its retry) started


# result key -> MLflow tag; hostname and node_ip are in every Ray Tune result already
WHERE_TAGS = {
    "hostname": NODE_TAG,
    "node_ip": NODE_IP_TAG,
    "ray_node_id": NODE_ID_TAG,
    **{key: key for key in TrialPlace.__annotations__ if key != "ray_node_id"},
}


# -- a trial's config, as the searcher writes it and the trainable, tracker and progress read it --
class TrialConfig(TypedDict):
    arm: str  # Arm.key
    phase: str  # a Phase value
    study_trial: int | None  # Optuna trial number (search trials)
    checkpoint_every: int  # epochs between checkpoints
    checkpoint_every_s: float  # and seconds of training at least between them (0: no limit)
    train: dict[str, Any]  # the TrainConfig, as JSON


# -- journal events, in the order a trial's life writes them ---------------------------------------
class Event:
    SWEEP = "sweep"  # the parent run exists before the first child
    START = "start"  # a trial started: its child run
    EPOCH = "epoch"  # one epoch's result
    FAILURE = "failure"  # a trial raised (retried, or final)
    END = "end"  # a trial ended, with its Outcome
    CHECKPOINT = "checkpoint"  # a trial saved a checkpoint: its URI on the run
    ORPHANS = "orphans"  # close runs a killed driver left open
    FINISH = "finish"  # the sweep's best trials on the parent, which is closed
    EXTEND = "extend"  # `sweep resume --set` raised the budget: the parent reopened with the new spec
