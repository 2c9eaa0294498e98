"""MLflow down in the middle of a sweep: the journal keeps every tracking
event, a thread writes them once the server is back, and `sweep sync` replays what a server
that never came back did not get. Nothing lost, nothing doubled.

The fast tests drive the journal without Ray against a SQLite store; the slow ones run real
sweeps on a local Ray against a real `mlflow server` that is killed and restarted.
"""

from __future__ import annotations

import json
import threading
import time

import optuna
import pytest
import ray
from mlflow.tracking import MlflowClient

from helpers.fake_sweep import log_trial, make_spec
from helpers.figures import logged_epochs, record
from helpers.servers import MlflowServer, free_port
from sweep.cli import main
from sweep.defaults import SPEC_FILE
from sweep.spec import Arm, dump_spec, validate_spec
from sweep.tracking import applier as applier_mod
from sweep.tracking import journal as journal_mod
from sweep.tracking.journal import JOURNAL, OFFSET, REFUSED, Journal, backlog
from sweep.tracking.runs import CURVES, SweepTracker
from sweep.tracking.schema import WHERE_TAGS
from sweep.tuning.driver import run_sweep

# -- fast: the journal alone, on SQLite ---------------------------------------------------------


def small_spec(tmp_path, name="journaled", uri=None):
    return validate_spec(
        {
            "name": name,
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sgd", "sam_gns"],
            "train": {"epochs": 3},
            "search": {"method": "optuna", "trials_per_arm": 1},
            "tracking": {
                "mlflow_uri": uri or f"sqlite:///{tmp_path}/mlflow.db",
                "optuna_storage": f"sqlite:///{tmp_path}/optuna.db",
            },
            "checkpoints": {"path": str(tmp_path / "sweeps")},
        }
    )


def config(rule, study_trial=0):
    train = {"optimizer": rule, "model": "small_cnn", "dataset": "digits", "lr": 0.1, "rho": 0.05, "seed": 0, "epochs": 3}
    return {"arm": f"small_cnn/{rule}", "phase": "search", "train": train, "study_trial": study_trial}


def every(*steps):
    return {key: list(steps) for key in CURVES}


def result(epoch):
    return {"epoch": epoch, "hostname": "here", "timestamp": 1_700_000_000 + epoch, **{key: 50.0 + epoch for key in CURVES}}


def write_events(journal):
    """A sweep's worth of events: one trial fails after epoch 2, is retried from epoch 1 and replays
    epoch 2; the other fails for good."""
    sgd, sam = config("sgd"), config("sam_gns")
    journal.append("sweep")
    journal.append("start", trial="t_sgd", config=sgd)
    journal.append("start", trial="t_sam", config=sam)
    for epoch in (1, 2):
        journal.append("epoch", trial="t_sgd", config=sgd, result=result(epoch))
    journal.append("failure", trial="t_sgd", config=sgd, error="Traceback ...\nRuntimeError: boom", final=False)
    for epoch in (2, 3):  # epoch 2 again: the retry restored the checkpoint of epoch 1
        journal.append("epoch", trial="t_sgd", config=sgd, result=result(epoch))
        journal.append("checkpoint", trial="t_sgd", config=sgd, uri=f"/ckpt/t_sgd/checkpoint_00000{epoch}")
    journal.append("end", trial="t_sgd", config=sgd, outcome="finished")
    journal.append("epoch", trial="t_sam", config=sam, result=result(1))
    journal.append("failure", trial="t_sam", config=sam, error="Traceback ...\nValueError: bad", final=True)
    journal.append("end", trial="t_sam", config=sam, outcome="failed")
    journal.append("orphans")
    journal.append("finish", best={"small_cnn/sgd": {"val_acc": 53.0, "test_acc": 53.0, "epoch": 3, "train": sgd["train"]}})


def apply(spec, patience=30.0) -> bool:
    journal = Journal(spec.checkpoints.path / spec.name, SweepTracker(spec)).start()
    try:
        return journal.drain(patience)
    finally:
        journal.close()


def mlflow_state(spec):
    """Everything the sweep put in MLflow, in a form two applications can be compared by."""
    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    state = {}
    for run in client.search_runs([experiment.experiment_id]):
        if run.data.tags.get("sweep.role") == "node":
            continue  # the nodes' system metrics are logged by their monitors, not by the journal
        key = run.data.tags.get("ray.trial_id", "parent")
        curves = {k: sorted(m.step for m in client.get_metric_history(run.info.run_id, k)) for k in run.data.metrics}
        artifacts = sorted(a.path for a in client.list_artifacts(run.info.run_id, "errors"))
        tags = {k: v for k, v in run.data.tags.items() if k.startswith(("sweep.", "best.", "hostname"))}
        assert key not in state, f"two runs for {key}"
        state[key] = (run.info.status, run.data.params, curves, artifacts, tags)
    return state


def test_a_run_created_after_its_study_trial_ended_still_links_it(tmp_path):
    # MLflow was down while the trial ran: its run is created after the study was told its end
    spec = small_spec(tmp_path)
    name = Arm("small_cnn", "sgd").study_name(spec.name)
    study = optuna.create_study(study_name=name, storage=spec.tracking.optuna_storage, direction="maximize")
    trial = study.ask()
    study.tell(trial, 91.0)
    run_id = SweepTracker(spec).child("t_late", config("sgd", study_trial=trial.number))
    (ended,) = optuna.load_study(study_name=name, storage=spec.tracking.optuna_storage).trials
    assert ended.user_attrs["mlflow_run_id"] == run_id
    assert ended.state == optuna.trial.TrialState.COMPLETE and ended.value == 91.0  # nothing else changed
    tags = MlflowClient(spec.tracking.mlflow_uri).get_run(run_id).data.tags
    assert (tags["sweep.study"], tags["sweep.study_trial"]) == (name, str(trial.number))


def test_applying_the_same_journal_twice_logs_nothing_twice(tmp_path):
    spec = small_spec(tmp_path)
    folder = spec.checkpoints.path / spec.name
    write_events(Journal(folder, SweepTracker(spec)))
    assert apply(spec)
    first = mlflow_state(spec)
    assert set(first) == {"parent", "t_sgd", "t_sam"}
    status, params, curves, artifacts, tags = first["t_sgd"]
    assert status == "FINISHED" and params["lr"] == "0.1"
    assert curves == every(1, 2, 3)  # the replayed epoch 2 once
    assert tags["sweep.failures"] == "1" and tags["sweep.error"] == "RuntimeError: boom" and artifacts == ["errors/failure_1.txt"]
    assert tags["sweep.checkpoint"] == "/ckpt/t_sgd/checkpoint_000003"  # the latest
    status, _, curves, artifacts, tags = first["t_sam"]
    assert status == "FAILED" and curves == every(1) and tags["sweep.failures"] == "1"
    assert first["parent"][0] == "FINISHED" and first["parent"][4]["best.small_cnn/sgd"].startswith("val_acc 53.00")
    client = MlflowClient(spec.tracking.mlflow_uri)
    (point,) = [
        m
        for m in client.get_metric_history(
            client.search_runs([client.get_experiment_by_name(spec.name).experiment_id], "tags.`ray.trial_id` = 't_sgd'")[
                0
            ].info.run_id,
            "val_acc",
        )
        if m.step == 3
    ]
    assert point.timestamp == 1_700_000_003_000  # when Tune got the epoch, not when MLflow did

    # a driver killed before it recorded its offset: every event again, from the start
    (folder / OFFSET).unlink()
    assert backlog(folder).events == 16
    assert apply(spec)
    assert mlflow_state(spec) == first
    # and from the middle, with a tracker that has never seen these runs
    data = (folder / JOURNAL).read_bytes()
    middle = data.rindex(b"\n", 0, data.index(b'"kind":"failure"')) + 1  # the first failure's line
    (folder / OFFSET).write_text(json.dumps({"bytes": middle, "events": 5}))
    assert apply(spec)
    assert mlflow_state(spec) == first
    assert backlog(folder).events == 0


def test_a_request_whose_answer_is_lost_is_sent_again_without_doubling(tmp_path, monkeypatch):
    # the server applies a batch and its answer never arrives (the connection drops): the
    # journal retries the event after reading the run again, and finds the epoch there
    spec = small_spec(tmp_path)
    real, calls = MlflowClient.log_batch, []

    def lossy(self, run_id, metrics=(), params=(), tags=(), **kwargs):
        real(self, run_id, metrics=metrics, params=params, tags=tags, **kwargs)
        calls.append([m.step for m in metrics])
        if len(calls) in (3, 5):
            raise ConnectionError("answer lost")

    monkeypatch.setattr(MlflowClient, "log_batch", lossy)
    monkeypatch.setattr(applier_mod, "RETRY_S", (0.01, 0.01))
    write_events(Journal(spec.checkpoints.path / spec.name, SweepTracker(spec)))
    assert apply(spec)
    monkeypatch.setattr(MlflowClient, "log_batch", real)
    assert mlflow_state(spec)["t_sgd"][2] == every(1, 2, 3)
    assert mlflow_state(spec)["t_sam"][2] == every(1)


def test_a_torn_last_line_is_dropped_and_the_journal_goes_on(tmp_path):
    spec = small_spec(tmp_path)
    folder = spec.checkpoints.path / spec.name
    write_events(Journal(folder, SweepTracker(spec)))
    with open(folder / JOURNAL, "ab") as file:
        file.write(b'{"seq":16,"kind":"epo')  # the driver died in the middle of this write
    assert backlog(folder).events == 16
    journal = Journal(folder, SweepTracker(spec))
    journal.append("sweep")
    journal.close()
    lines = (folder / JOURNAL).read_text().splitlines()
    assert len(lines) == 17 and json.loads(lines[-1]) == {"seq": 16, "kind": "sweep"}
    assert apply(spec)


def test_sweep_sync_replays_a_journal_and_says_what_it_could_not(tmp_path, monkeypatch, capsys):
    storage = tmp_path / "sweeps"
    assert main(["sync", "nosuch", "--storage", str(storage)]) == 2
    assert "no sweep 'nosuch'" in capsys.readouterr().err

    # a server that is down: nothing applied, the same message as at the end of a sweep
    down = small_spec(tmp_path, name="down", uri=f"http://bob:s3cret@127.0.0.1:{free_port()}")
    (storage / "down").mkdir(parents=True)
    (storage / "down" / SPEC_FILE).write_text(dump_spec(down))
    write_events(Journal(storage / "down", SweepTracker(down)))
    monkeypatch.setattr(journal_mod, "SYNC_WAIT_S", 1.0)
    assert main(["sync", "down", "--storage", str(storage)]) == 1
    out = capsys.readouterr().out
    assert "16 tracking events (5 epochs of 2 trials) are not in MLflow" in out
    assert f"kept in {storage / 'down' / JOURNAL}" in out and f"sweep sync down --storage {storage}" in out
    assert "bob:***@127.0.0.1" in out and "s3cret" not in out
    assert not (storage / "down" / OFFSET).exists()
    monkeypatch.undo()  # a new SQLite store takes a few seconds to create

    spec = small_spec(tmp_path)
    (storage / spec.name).mkdir(parents=True)
    (storage / spec.name / SPEC_FILE).write_text(dump_spec(spec))
    write_events(Journal(storage / spec.name, SweepTracker(spec)))
    assert main(["sync", spec.name, "--storage", str(storage)]) == 0
    assert "16 replayed now" in capsys.readouterr().out
    assert mlflow_state(spec)["t_sgd"][2] == every(1, 2, 3)
    assert main(["sync", spec.name, "--storage", str(storage)]) == 0  # nothing left: a no-op
    assert "0 replayed now" in capsys.readouterr().out


def test_where_a_trial_ran_reaches_its_run_when_the_first_request_stored_only_the_metrics(tmp_path):
    """MLflow's log_batch commits metrics before tags: a server killed in between leaves epoch 1
    without the where-tags, and the replayed epoch 1 (already there) must still bring them."""
    spec = make_spec(tmp_path)
    log_trial(SweepTracker(spec), "t1", "sgd", 0.1, 0, 90.0, [50.0], outcome=None)
    client = MlflowClient(spec.tracking.mlflow_uri)
    (run,) = [
        r for r in client.search_runs([client.get_experiment_by_name(spec.name).experiment_id]) if "ray.trial_id" in r.data.tags
    ]
    for tag in WHERE_TAGS.values():
        client.delete_tag(run.info.run_id, tag)

    tracker = SweepTracker(spec)  # a new applier, as after a restart
    config = {
        "arm": "small_cnn/sgd",
        "phase": "search",
        "study_trial": 0,
        "train": {"seed": 0, "optimizer": "sgd", "model": "small_cnn"},
    }
    assert tracker.log_epochs("t1", config, [{"epoch": 1, "val_acc": 90.0, "hostname": "box-1"}]) == 0  # epoch 1 is there
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["node"] == "box-1" and set(WHERE_TAGS.values()) <= set(tags)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1]  # not logged twice


# -- slow: real sweeps, a real server that goes away --------------------------------------------


@pytest.fixture(scope="module")
def ray_session():
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture
def server(tmp_path):
    server = MlflowServer(tmp_path).start()
    yield server
    server.stop()


def sweep_spec(tmp_path, name, uri, epochs):
    return validate_spec(
        {
            "name": name,
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sgd", "sam_gns"],
            "train": {"epochs": epochs, "batch_size": 64, "model_options": {"width": 4}},
            "search": {"method": "optuna", "trials_per_arm": 1, "space": {"lr": 0.1, "rho": 0.05}},
            "resources": {"cpus": 1, "gpu": 0.5},
            "max_concurrent": 2,
            "tracking": {"mlflow_uri": uri, "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
            "checkpoints": {"path": str(tmp_path / "sweeps")},
        }
    ).resolved()


def epochs_in_mlflow(uri: str, name: str) -> int:
    """Epochs in MLflow so far, or -1 when the server does not answer."""
    try:
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(name)
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        return sum(len(client.get_metric_history(r.info.run_id, "val_acc")) for r in runs)
    except Exception:  # noqa: BLE001 (down is an answer here)
        return -1


class Beside(threading.Thread):
    """A thread whose failure fails the test that joins it."""

    def __init__(self, target, *args):
        super().__init__(target=self._catch, args=(target, *args))
        self.error: BaseException | None = None

    def _catch(self, target, *args) -> None:
        try:
            target(*args)
        except BaseException as err:  # noqa: BLE001 (handed to the test)
            self.error = err

    def check(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def kill_after_first_epoch(server: MlflowServer, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while epochs_in_mlflow(server.uri, name) < 1:
        assert time.monotonic() < deadline, "no epoch reached MLflow"
        time.sleep(0.2)
    server.stop()


def assert_complete(spec, epochs: int, failure: str, note: str) -> None:
    """Record the issue's figures (counted from Tune's results and the runs), then check every
    epoch of every curve is in MLflow exactly once and every run closed."""
    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    found = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in found if r.data.tags.get("sweep.role") == "parent"]
    children = [r for r in found if "ray.trial_id" in r.data.tags]
    trained = sum(len(path.read_text().splitlines()) for path in (spec.checkpoints.path / spec.name).glob("*/result.json"))
    _, lost, doubled = logged_epochs(client, children, epochs)
    record(
        failure,
        trials=len(children),
        epochs=epochs,
        redone=trained - len(children) * epochs,
        lost=lost,
        doubled=doubled,
        note=note,
    )
    assert parent.info.status == "FINISHED" and len(children) == 2
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["sweep.outcome"] == "finished"
        assert child.data.tags["node"] and "sweep.failures" not in child.data.tags
        peaks = {"peak_gpu_memory_mb", "peak_rss_mb"} & set(child.data.metrics)  # the one of the trial's device
        assert len(peaks) == 1, child.data.metrics
        for key in [key for key in CURVES if not key.startswith("peak_")] + sorted(peaks):
            steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
            assert sorted(steps) == list(range(1, epochs + 1)), (child.data.tags["sweep.arm"], key)


@pytest.mark.slow
def test_a_30_second_outage_mid_trial_loses_and_doubles_nothing(tmp_path, ray_session, server, capsys):
    epochs, outage = 150, 30.0  # about 0.25 s an epoch here, two trials side by side
    spec = sweep_spec(tmp_path, "outage", server.uri, epochs)
    folder = spec.checkpoints.path / spec.name
    seen: dict[str, float] = {}

    def chaos():
        kill_after_first_epoch(server, spec.name)
        seen["down"] = time.monotonic()
        time.sleep(outage)
        left = backlog(folder)  # written while the server was away
        seen["buffered"], seen["events"] = left.epochs, left.events
        server.start()
        seen["up"] = time.monotonic()

    # the sweep in this thread (Tune's signal handling wants the main one), the outage beside it
    thread = Beside(chaos)
    thread.start()
    outcome = run_sweep(spec)
    ended = time.monotonic()
    thread.check()
    assert not outcome.interrupted and outcome.failed == 0 and not outcome.unsynced
    assert ended > seen["up"], "the sweep ended before the server came back: make the trials longer"
    assert seen["buffered"] >= 10, seen  # training went on while MLflow was away
    note = (
        f"server down {seen['up'] - seen['down']:.0f} s (killed, restarted), {seen['events']} events ({seen['buffered']} epochs) "
        f"buffered in the journal, sent when it came back; sweep ended {ended - seen['up']:.0f} s later"
    )
    assert_complete(spec, epochs, "MLflow server down 30 s mid-trial", note)
    assert backlog(folder).events == 0


@pytest.mark.slow
def test_a_server_that_never_returns_leaves_a_journal_that_sweep_sync_replays(tmp_path, ray_session, server, monkeypatch, capsys):
    epochs = 6
    monkeypatch.setattr(journal_mod, "DRAIN_S", 3.0)  # the end of the sweep waits 60 s otherwise
    spec = sweep_spec(tmp_path, "gone", server.uri, epochs)
    thread = Beside(kill_after_first_epoch, server, spec.name)
    thread.start()
    outcome = run_sweep(spec)
    thread.check()
    assert not outcome.interrupted and outcome.failed == 0
    out = capsys.readouterr().out
    folder = spec.checkpoints.path / spec.name
    left = backlog(folder)
    # killed once the first epoch reached it: how many more the journal sent before the server was
    # gone depends on the machine's load; some are left, and assert_complete finds them all after
    # the replay
    assert left.epochs >= 1
    assert outcome.unsynced in out
    assert (
        f"{left.events} tracking events ({left.epochs} epochs of 2 trials) are not in MLflow at {server.uri}" in outcome.unsynced
    )
    assert f"kept in {folder / JOURNAL}" in outcome.unsynced
    assert outcome.unsynced.endswith(f"replay them with: sweep sync gone --storage {spec.checkpoints.path}")

    server.start()
    assert main(["sync", "gone", "--storage", str(spec.checkpoints.path)]) == 0
    note = f"{left.events} events ({left.epochs} epochs) kept in the journal at the end, replayed by `sweep sync`"
    assert_complete(spec, epochs, "MLflow server gone for good", note)
    assert backlog(folder).events == 0


def test_events_mlflow_refuses_for_good_are_set_aside_and_said(tmp_path, capsys):
    # someone deletes the sweep's experiment in the UI mid-sweep: MLflow refuses every later write
    # into it as invalid, for good; the journal keeps each refused event with the reason and ends
    spec = small_spec(tmp_path)
    folder = spec.checkpoints.path / spec.name
    client = MlflowClient(spec.tracking.mlflow_uri)
    client.delete_experiment(client.create_experiment(spec.name))
    journal = Journal(folder, SweepTracker(spec))
    good = config("sam_gns")
    journal.append("start", trial="t_ok", config=good)
    for epoch in (1, 2):
        journal.append("epoch", trial="t_ok", config=good, result=result(epoch))
    journal.start()
    try:
        assert journal.drain(30)  # not held back for ever
        assert journal.refused == 3
    finally:
        journal.close()
    kept = [json.loads(line) for line in (folder / REFUSED).read_text().splitlines()]
    assert [k["event"]["kind"] for k in kept] == ["start", "epoch", "epoch"]
    assert all("MlflowException" in k["error"] for k in kept)
    assert capsys.readouterr().out.count(f"kept in {folder / REFUSED}") == 3
