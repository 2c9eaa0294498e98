"""End-to-end sweeps on a real local Ray (logical GPUs), real MLflow (SQLite) and real Optuna.

One Ray session for the module: starting Ray costs seconds (docs/platform.md).
"""

import json
import logging
import os

import optuna
import pytest
import ray
from mlflow.tracking import MlflowClient

from helpers.fake_sweep import ray_sweep_spec
from helpers.figures import logged_epochs, record
from sweep.defaults import TUNE_SETTINGS
from sweep.spec import Arm
from sweep.tuning.driver import PENDING_ENV, QUIET_LOGGERS, run_sweep
from sweep.tuning.trainable import FAULT_ENV

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fault_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fault") / "plan"


@pytest.fixture(scope="module", autouse=True)
def ray_session(fault_file):
    # workers inherit the driver's environment at start: the fault hook is armed per test by
    # writing the plan file, never by changing the environment later
    os.environ[FAULT_ENV] = str(fault_file)
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False)
    yield
    ray.shutdown()
    del os.environ[FAULT_ENV]


def tiny_spec(tmp_path, name, **overrides):
    fields = {
        "train": {"epochs": 2, "batch_size": 64, "model_options": {"width": 4}},
        "search": {
            "method": "optuna",
            "trials_per_arm": 2,
            "space": {"lr": {"low": 0.01, "high": 0.5, "log": True}, "rho": {"low": 0.01, "high": 0.2, "log": True}},
        },
    }
    return ray_sweep_spec(tmp_path, name, **{**fields, **overrides})


def runs(spec):
    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    found = client.search_runs([experiment.experiment_id])
    parents = [r for r in found if r.data.tags.get("sweep.role") == "parent"]
    children = [r for r in found if "ray.trial_id" in r.data.tags]  # not the node runs
    return client, experiment, parents, children


def steps(client, run, key="test_acc"):
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, key))


def test_tiny_sweep_logs_one_parent_four_children_and_an_optuna_study_per_arm(tmp_path, monkeypatch):
    spec = tiny_spec(tmp_path, "tiny")
    for name in TUNE_SETTINGS:  # the sweep's settings of Tune hold while it runs only (docs/platform.md)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(PENDING_ENV, "3")  # one the user set is theirs, and kept
    for name in QUIET_LOGGERS:  # so are the libraries' log levels: quiet while the sweep runs only
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    optuna.logging.set_verbosity(optuna.logging.INFO)
    outcome = run_sweep(spec)
    assert {name: os.environ.get(name) for name in [*TUNE_SETTINGS, PENDING_ENV]} == {
        **dict.fromkeys(TUNE_SETTINGS),
        PENDING_ENV: "3",
    }
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
    assert {logging.getLogger(name).level for name in QUIET_LOGGERS} == {logging.NOTSET}
    assert not outcome.interrupted and outcome.failed == 0
    assert set(outcome.best) == {"small_cnn/sgd", "small_cnn/sam_gns"}

    client, experiment, parents, children = runs(spec)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    assert parent.data.params["optimizers"] == "sgd,sam_gns"
    assert "sweep_spec.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    best = outcome.best["small_cnn/sam_gns"]
    assert parent.data.tags["best.small_cnn/sam_gns"].startswith(
        f"val_acc {best['val_acc']:.2f}%, test_acc {best['test_acc']:.2f}% over 1 seed (lr "
    )

    assert len(children) == 4
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "epoch_time_s"):
            assert steps(client, child, key) == [1, 2], key  # every epoch exactly once
        for key in ("images_per_s", "peak_rss_mb"):  # what the hardware did, every epoch (no CUDA here)
            history = client.get_metric_history(child.info.run_id, key)
            assert sorted(m.step for m in history) == [1, 2] and all(m.value > 0 for m in history), key
        # each point's time is when the trial reported its epoch, to the millisecond: after the
        # trial started, the second epoch after the first (Tune's own timestamp is whole seconds)
        stamps = [m.timestamp for m in sorted(client.get_metric_history(child.info.run_id, "val_acc"), key=lambda m: m.step)]
        assert float(child.data.tags["trial_started_at"]) * 1000 <= stamps[0] < stamps[1], stamps
        params = child.data.params
        assert {"optimizer", "model", "dataset", "lr", "rho", "momentum", "weight_decay", "batch_size", "epochs", "seed"} <= set(
            params
        )
        # each trial held half of one of the two logical GPUs Ray was given
        assert child.data.tags["cuda_visible_devices"] in ("0", "1")
        assert child.data.tags["ray.trial_id"] and child.data.tags["sweep.arm"].endswith(params["optimizer"])
    assert sorted(c.data.tags["sweep.arm"] for c in children) == ["small_cnn/sam_gns"] * 2 + ["small_cnn/sgd"] * 2
    assert len({c.data.params["lr"] for c in children}) == 4  # Optuna proposed four settings

    storage = optuna.storages.RDBStorage(spec.tracking.optuna_storage)
    for rule in ("sgd", "sam_gns"):
        study = optuna.load_study(study_name=Arm("small_cnn", rule).study_name("tiny"), storage=storage)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(complete) == 2
        assert ("rho" in complete[0].params) == (rule == "sam_gns")  # SGD's budget never spent on rho
        # the value Optuna saw is the trial's final validation accuracy, as logged
        for trial in complete:
            (child,) = [c for c in children if c.data.tags["ray.trial_id"] == trial.user_attrs["ray_trial_id"]]
            assert trial.value == child.data.metrics["val_acc"]


def test_a_failed_trial_is_retried_from_its_checkpoint_without_duplicate_epochs(tmp_path, fault_file):
    # checkpoints every 2 epochs, fault after epoch 4: the retry restores epoch 2 and replays
    # epoch 3, which MLflow already holds
    spec = tiny_spec(
        tmp_path,
        "faulty",
        optimizers=["sam_gns"],
        train={"epochs": 4, "batch_size": 64, "model_options": {"width": 4}},
        search={"method": "optuna", "trials_per_arm": 1, "space": {"lr": 0.3, "rho": 0.05}},
        checkpoints={"path": str(tmp_path / "sweeps"), "every": 2},
        retries=1,
    )
    fault_file.write_text("4")
    outcome = run_sweep(spec)
    assert not fault_file.exists()  # the fault fired
    assert outcome.failed == 0 and not outcome.interrupted

    client, _, _, (child,) = runs(spec)
    assert child.info.status == "FINISHED"
    assert child.data.tags["sweep.failures"] == "1" and "injected fault after epoch 4" in child.data.tags["sweep.error"]
    assert [a.path for a in client.list_artifacts(child.info.run_id, "errors")] == ["errors/failure_1.txt"]
    assert steps(client, child) == [1, 2, 3, 4]
    assert steps(client, child, "val_acc") == [1, 2, 3, 4]

    trial_dir = next((tmp_path / "sweeps" / "faulty").glob("small_cnn-sam_gns-*"))
    results = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    # Tune's own result.json: the rows it had synced when the retry restored it (epochs 1-2, or
    # 1-3 when it synced once more before the fault), then the retry's
    epochs = [r["epoch"] for r in results]
    assert epochs[-2:] == [3, 4] and sorted(set(epochs)) == [1, 2, 3, 4], epochs
    assert results[-1]["restored_from_epoch"] == 2  # resumed after epoch 2, not restarted
    # the replayed epoch 3 is the epoch 3 MLflow already had from the first try: training is deterministic
    (logged,) = [m.value for m in client.get_metric_history(child.info.run_id, "val_acc") if m.step == 3]
    assert results[-2]["val_acc"] == logged
    _, lost, doubled = logged_epochs(client, [child], 4)
    # the fault came before epoch 4 was reported: epochs after the restored checkpoint, up to 3, ran twice
    record(
        "trainer raises after epoch 4 (checkpoints every 2)",
        trials=1,
        epochs=4,
        redone=3 - results[-1]["restored_from_epoch"],
        lost=lost,
        doubled=doubled,
        note="retried from its checkpoint",
    )


def test_checkpoints_every_s_keeps_a_trial_of_short_epochs_to_its_last_epochs_checkpoint(tmp_path):
    # epochs of a fraction of a second and at most one checkpoint an hour: only the last epoch's
    # result carries one (each checkpoint makes Tune save the whole experiment, docs/platform.md)
    spec = tiny_spec(
        tmp_path,
        "sparse",
        optimizers=["sgd"],
        train={"epochs": 3, "batch_size": 64, "model_options": {"width": 4}},
        search={"method": "grid", "space": {"lr": 0.1}},
        checkpoints={"path": str(tmp_path / "sweeps"), "every": 1, "every_s": 3600},
    )
    outcome = run_sweep(spec)
    assert outcome.failed == 0 and not outcome.interrupted
    trial_dir = next((tmp_path / "sweeps" / "sparse").glob("small_cnn-sgd-*"))
    results = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    assert [r["epoch"] for r in results] == [1, 2, 3]
    assert [r["checkpoint_dir_name"] is not None for r in results] == [False, False, True]
    assert [p.name for p in trial_dir.glob("checkpoint_*")] == [results[-1]["checkpoint_dir_name"]]
    client, _, _, (child,) = runs(spec)
    assert steps(client, child) == [1, 2, 3]


def test_a_sweep_name_is_not_reused(tmp_path):
    spec = tiny_spec(tmp_path, "once", optimizers=["sgd"], search={"method": "grid", "space": {"lr": 0.1}})
    run_sweep(spec)
    with pytest.raises(ValueError, match="sweep resume once"):
        run_sweep(spec)


def test_asha_stops_weak_trials_and_optuna_records_them_as_pruned(tmp_path):
    spec = tiny_spec(
        tmp_path,
        "asha",
        optimizers=["sam_gns"],
        train={"epochs": 3, "batch_size": 64, "model_options": {"width": 4}},
        search={"method": "optuna", "trials_per_arm": 6, "space": {"lr": {"low": 1e-4, "high": 1.0, "log": True}, "rho": 0.05}},
        scheduler={"grace_period": 1, "reduction_factor": 2},
        max_concurrent=1,
    )
    run_sweep(spec)
    client, _, _, children_ = runs(spec)
    study = optuna.load_study(study_name=Arm("small_cnn", "sam_gns").study_name("asha"), storage=spec.tracking.optuna_storage)
    by_trial = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    assert len(children_) == len(by_trial) == 6
    pruned = 0
    for child in children_:
        epochs = steps(client, child)
        trial = by_trial[child.data.tags["ray.trial_id"]]
        if epochs == [1, 2, 3]:
            assert child.data.tags["sweep.outcome"] == "finished" and trial.state == optuna.trial.TrialState.COMPLETE
        else:
            pruned += 1
            assert epochs in ([1], [1, 2])
            assert child.data.tags["sweep.outcome"] == "stopped early"
            assert trial.state == optuna.trial.TrialState.PRUNED
            assert sorted(trial.intermediate_values) == epochs  # what TPE learns from a pruned trial
    assert pruned >= 1


def test_confirmation_seeds_retrain_each_arms_best_setting_and_the_report_rests_on_them(tmp_path):
    from sweep.report.write import write_report

    spec = tiny_spec(tmp_path, "confirmed", confirm_seeds=2)
    outcome = run_sweep(spec)
    assert not outcome.interrupted
    client, _, (parent,), children_ = runs(spec)
    assert len(children_) == 8  # 2 arms x (2 search + 2 confirmation)
    report = write_report(spec.tracking.mlflow_uri, "confirmed", tmp_path / "report")
    for rule in ("sgd", "sam_gns"):
        mine = [c for c in children_ if c.data.tags["sweep.arm"] == f"small_cnn/{rule}"]
        search = [c for c in mine if c.data.tags["sweep.phase"] == "search"]
        confirm = [c for c in mine if c.data.tags["sweep.phase"] == "confirm"]
        assert sorted(c.data.params["seed"] for c in confirm) == ["1", "2"]  # new seeds
        # the best final val_acc; on a tie, the lower final val_loss, then the trial Optuna ran first
        best = min(
            search,
            key=lambda c: (-c.data.metrics["val_acc"], c.data.metrics["val_loss"], int(c.data.tags["sweep.study_trial"])),
        )
        for c in confirm:
            assert (c.data.params["lr"], c.data.params["rho"]) == (best.data.params["lr"], best.data.params["rho"])
            assert steps(client, c) == [1, 2]
        cell = report.cells[("small_cnn", rule)]
        assert cell.source == "confirmation" and cell.n == 2
        assert cell.mean == pytest.approx(sum(c.data.metrics["test_acc"] for c in confirm) / 2)
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} >= {
        "report/report.md",
        "report/test_acc_curves.png",
    }


def test_a_diverging_trial_stops_is_marked_and_reaches_optuna_at_chance_level(tmp_path):
    spec = tiny_spec(
        tmp_path,
        "diverging",
        optimizers=["sgd"],
        train={"epochs": 3, "batch_size": 64, "momentum": 0.0, "weight_decay": 0.0, "model_options": {"width": 4}},
        search={"method": "grid", "space": {"lr": {"choices": [1e30, 0.1]}}},
    )
    outcome = run_sweep(spec)
    assert not outcome.interrupted and outcome.failed == 0  # the sweep went on
    client, _, _, children_ = runs(spec)
    by_lr = {float(c.data.params["lr"]): c for c in children_}
    assert set(by_lr) == {1e30, 0.1}  # the grid ran both
    study = optuna.load_study(study_name=Arm("small_cnn", "sgd").study_name("diverging"), storage=spec.tracking.optuna_storage)
    trials = {trial.params["lr"]: trial for trial in study.trials}
    assert by_lr[1e30].data.tags["sweep.outcome"] == "diverged"
    assert steps(client, by_lr[1e30]) == [1]  # stopped at once
    # TPE learns the boundary: a completed trial at chance level (10 classes), still flagged as diverged
    assert trials[1e30].state == optuna.trial.TrialState.COMPLETE and trials[1e30].value == pytest.approx(10.0)
    assert trials[1e30].user_attrs["outcome"] == "diverged" and trials[1e30].user_attrs["val_acc"] is None
    assert by_lr[0.1].data.tags["sweep.outcome"] == "finished" and trials[0.1].state == optuna.trial.TrialState.COMPLETE
    assert outcome.best["small_cnn/sgd"]["train"]["lr"] == 0.1  # chosen among settings that did not diverge
    _, lost, doubled = logged_epochs(client, [by_lr[0.1]], 3)
    record(
        "a trial diverges (lr 1e30)",
        trials=2,
        epochs=3,
        redone=0,
        lost=lost,
        doubled=doubled,
        note=f"diverged trial stopped after {len(steps(client, by_lr[1e30]))} epoch, Optuna told chance level",
    )


def test_a_trial_that_keeps_failing_fails_alone_with_its_error_in_its_run(tmp_path):
    spec = tiny_spec(
        tmp_path,
        "broken",
        optimizers=["sgd"],
        dataset="cifar10",
        train={"epochs": 2, "batch_size": 64, "data_dir": str(tmp_path / "no-cifar"), "model_options": {"width": 4}},
        search={"method": "grid", "space": {"lr": 0.1}},
        retries=1,
    )
    outcome = run_sweep(spec)
    assert outcome.failed == 1 and not outcome.interrupted
    client, _, (parent,), (child,) = runs(spec)
    assert child.info.status == "FAILED" and child.data.tags["sweep.outcome"] == "failed"
    assert child.data.tags["sweep.failures"] == "2"  # the first attempt and its one retry
    assert "CIFAR10 not found or corrupted in" in child.data.tags["sweep.error"]
    assert parent.info.status == "FINISHED"
    record(
        "a trial keeps failing (retries: 1)",
        trials=1,
        epochs=2,
        redone=0,
        lost=0,
        doubled=0,
        note=f"failed alone after {child.data.tags['sweep.failures']} attempts, error in its run",
    )
