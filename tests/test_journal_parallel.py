"""The journal applied by several threads, many epochs per request (sweep/tracking/applier.py):
every run's curves hold each epoch once, whatever the interleaving of trials, the barriers between
them, a lost answer or a server killed in the middle of a backlog.

The fast tests drive the journal without Ray against a real SQLite store (four threads forced on
it: the journal itself uses one for SQLite); the slow one against a real `mlflow server`.
"""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient

from helpers.servers import MlflowServer
from sweep.spec import validate_spec
from sweep.tracking import applier as applier_mod
from sweep.tracking.journal import OFFSET, Journal, backlog
from sweep.tracking.journal_files import read_offset
from sweep.tracking.runs import CURVES, SweepTracker
from sweep.tracking.schema import Event


def spec_for(tmp_path, uri):
    return validate_spec(
        {
            "name": "parallel",
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sgd", "sam_gns"],
            "train": {"epochs": 3},
            "tracking": {"mlflow_uri": uri, "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
            "checkpoints": {"path": str(tmp_path / "sweeps")},
        }
    )


def trial_config(n):
    rule = ("sgd", "sam_gns")[n % 2]
    train = {"optimizer": rule, "model": "small_cnn", "dataset": "digits", "lr": 0.01 * (n + 1), "seed": n, "epochs": 3}
    return {"arm": f"small_cnn/{rule}", "phase": "search", "train": train, "study_trial": None, "checkpoint_every": 2}


def result(trial, epoch):
    return {
        "epoch": epoch,
        "hostname": f"node-{trial % 3}",
        "timestamp": 1_700_000_000 + epoch,
        **{k: trial + epoch / 100 for k in CURVES},
    }


def write_interleaved(journal, trials, epochs):
    """Trials started one after another and reporting round-robin, as Tune interleaves them; trial
    0 fails after epoch 3 and replays epoch 3 from its checkpoint; a `sweep` barrier mid-way."""
    journal.append(Event.SWEEP)
    configs = [trial_config(n) for n in range(trials)]
    for epoch in range(1, epochs + 1):
        for n, cfg in enumerate(configs):
            tid = f"t{n:03d}"
            if epoch == 1:
                journal.append(Event.START, trial=tid, config=cfg)
            journal.append(Event.EPOCH, trial=tid, config=cfg, result=result(n, epoch))
            if epoch % 2 == 0:
                journal.append(Event.CHECKPOINT, trial=tid, config=cfg, uri=f"/ckpt/{tid}/checkpoint_{epoch:06d}")
            if n == 0 and epoch == 3:
                journal.append(Event.FAILURE, trial=tid, config=cfg, error="Traceback\nRuntimeError: boom", final=False)
                journal.append(Event.EPOCH, trial=tid, config=cfg, result=result(n, 3))  # replayed
        if epoch == epochs // 2:
            journal.append(Event.SWEEP)  # a barrier between two stretches of epochs
    for n, cfg in enumerate(configs):
        journal.append(Event.END, trial=f"t{n:03d}", config=cfg, outcome="finished")
    journal.append(Event.ORPHANS)


def assert_exactly_once(spec, trials, epochs):
    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = {r.data.tags["ray.trial_id"]: r for r in runs if "ray.trial_id" in r.data.tags}
    assert sorted(children) == [f"t{n:03d}" for n in range(trials)]
    assert [r.data.tags.get("sweep.role") for r in runs].count("parent") == 1
    for tid, run in children.items():
        n = int(tid[1:])
        assert run.info.status == "FINISHED" and run.data.tags["sweep.outcome"] == "finished", tid
        assert run.data.tags["node"] == f"node-{n % 3}" and run.data.params["seed"] == str(n)
        assert run.data.tags["sweep.checkpoint"] == f"/ckpt/{tid}/checkpoint_{epochs - epochs % 2:06d}"
        for key in ("val_acc", "train_loss", "lr"):
            history = client.get_metric_history(run.info.run_id, key)
            assert [m.step for m in history] == list(range(1, epochs + 1)), (tid, key)  # each once, in order
            assert [m.value for m in history] == [n + e / 100 for e in range(1, epochs + 1)], (tid, key)
        assert run.data.tags.get("sweep.failures") == ("1" if n == 0 else None), tid


def apply(spec, workers=4):
    journal = Journal(spec.checkpoints.path / spec.name, SweepTracker(spec), workers=workers).start()
    try:
        assert journal.drain(60)
    finally:
        journal.close()


def test_many_interleaved_runs_applied_side_by_side_land_once_in_order(tmp_path):
    spec = spec_for(tmp_path, f"sqlite:///{tmp_path}/mlflow.db")
    folder = spec.checkpoints.path / spec.name
    write_interleaved(Journal(folder, SweepTracker(spec)), trials=12, epochs=8)
    apply(spec)
    assert_exactly_once(spec, 12, 8)
    assert backlog(folder).events == 0
    # a driver killed before it recorded its offset: all of it again, and nothing doubles
    (folder / OFFSET).unlink()
    apply(spec)
    assert_exactly_once(spec, 12, 8)


def test_a_batch_whose_answer_is_lost_is_not_doubled_and_the_offset_is_an_applied_prefix(tmp_path, monkeypatch):
    # the server stores a batch of many epochs and the answer is lost: the retry rereads the
    # run's last step; meanwhile the offset never passes an event that is not in MLflow
    spec = spec_for(tmp_path, f"sqlite:///{tmp_path}/mlflow.db")
    folder = spec.checkpoints.path / spec.name
    write_interleaved(Journal(folder, SweepTracker(spec)), trials=6, epochs=10)
    real, calls, offsets = MlflowClient.log_batch, [], []

    def lossy(self, run_id, metrics=(), params=(), tags=(), **kwargs):
        real(self, run_id, metrics=metrics, params=params, tags=tags, **kwargs)
        steps = sorted({m.step for m in metrics})
        calls.append(steps)
        offsets.append(read_offset(folder / OFFSET, 1 << 40)[1])
        if len(steps) > 1 and sum(len(c) > 1 for c in calls) in (1, 3):
            raise ConnectionError("answer lost")

    monkeypatch.setattr(MlflowClient, "log_batch", lossy)
    monkeypatch.setattr(applier_mod, "RETRY_S", (0.01, 0.01))
    apply(spec)
    monkeypatch.setattr(MlflowClient, "log_batch", real)
    assert max(len(c) for c in calls) > 1  # some requests carried several epochs
    assert offsets == sorted(offsets)  # the applied prefix only grows
    assert_exactly_once(spec, 6, 10)


@pytest.mark.slow
def test_a_server_killed_while_a_backlog_is_applied_gets_everything_once(tmp_path):
    trials, epochs = 40, 30
    server = MlflowServer(tmp_path).start()
    spec = spec_for(tmp_path, server.uri)
    folder = spec.checkpoints.path / spec.name
    write_interleaved(Journal(folder, SweepTracker(spec)), trials=trials, epochs=epochs)
    total = backlog(folder).events
    journal = Journal(folder, SweepTracker(spec))
    assert journal.workers == applier_mod.WORKERS > 1  # an HTTP server: runs side by side
    journal.start()
    try:
        deadline = time.monotonic() + 120
        while journal._applied_events < total // 4:  # a quarter in, requests in flight
            assert time.monotonic() < deadline, "the backlog did not start to land"
            time.sleep(0.01)
        server.stop()
        cut = journal._applied_events
        assert cut < total
        time.sleep(2)
        server.start()
        assert journal.drain(60)
        assert_exactly_once(spec, trials, epochs)
    finally:
        journal.close()
        server.stop()


def test_a_trial_applied_from_a_backlog_takes_three_requests_and_a_caught_up_start_has_its_params(tmp_path, monkeypatch):
    spec = spec_for(tmp_path, f"sqlite:///{tmp_path}/mlflow.db")
    folder = spec.checkpoints.path / spec.name
    journal = Journal(folder, SweepTracker(spec))
    journal.append(Event.SWEEP)
    configs = {f"t{n:03d}": trial_config(n) for n in range(5)}
    for tid, cfg in configs.items():
        journal.append(Event.START, trial=tid, config=cfg)
    for epoch in range(1, 4):  # interleaved, as Tune reports them
        for n, (tid, cfg) in enumerate(configs.items()):
            journal.append(Event.EPOCH, trial=tid, config=cfg, result=result(n, epoch))
            if epoch == 2:
                journal.append(Event.CHECKPOINT, trial=tid, config=cfg, uri=f"/ckpt/{tid}/checkpoint_{epoch:06d}")
    for tid, cfg in configs.items():
        journal.append(Event.END, trial=tid, config=cfg, outcome="finished")
    journal.close()
    requests: dict[str, list[str]] = {}
    for name in ("create_run", "log_batch", "set_tag", "set_terminated", "search_runs", "get_metric_history"):
        real = getattr(MlflowClient, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            answer = _real(self, *args, **kwargs)
            run_id = answer.info.run_id if _name == "create_run" else args[0] if _name != "search_runs" else "search"
            requests.setdefault(run_id, []).append(_name)
            return answer

        monkeypatch.setattr(MlflowClient, name, counted)
    apply(spec)
    monkeypatch.undo()
    client = MlflowClient(spec.tracking.mlflow_uri)
    found = client.search_runs([client.get_experiment_by_name(spec.name).experiment_id])
    runs = {r.data.tags["ray.trial_id"]: r for r in found if "ray.trial_id" in r.data.tags}
    for tid, cfg in configs.items():
        run = runs[tid]
        # its run; its three epochs, checkpoint, params and outcome; its close
        assert requests[run.info.run_id] == ["create_run", "log_batch", "set_terminated"], tid
        assert run.data.params["lr"] == str(cfg["train"]["lr"]) and run.data.tags["sweep.outcome"] == "finished"
        assert run.info.status == "FINISHED" and run.data.tags["sweep.checkpoint"] == f"/ckpt/{tid}/checkpoint_000002"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1, 2, 3]
    assert requests["search"] == ["search_runs"] * 2  # the parent's, and one listing of the trials' runs

    # caught up: a start applied on its own gets its params at once, before any epoch
    journal = Journal(folder, SweepTracker(spec), workers=4).start()
    try:
        late = trial_config(7)
        journal.append(Event.START, trial="t007", config=late)
        assert journal.drain(30)
        (run,) = client.search_runs([run.info.experiment_id], filter_string="tags.`ray.trial_id` = 't007'")
        assert run.data.params["lr"] == str(late["train"]["lr"]) and run.info.status == "RUNNING"
        journal.append(Event.EPOCH, trial="t007", config=late, result=result(7, 1))
        journal.append(Event.END, trial="t007", config=late, outcome="finished")
        assert journal.drain(30)
    finally:
        journal.close()
    (run,) = client.search_runs([run.info.experiment_id], filter_string="tags.`ray.trial_id` = 't007'")
    assert run.info.status == "FINISHED" and [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1]


def test_a_caught_up_journal_sends_the_epochs_that_arrive_together_in_one_request(tmp_path, monkeypatch):
    spec = spec_for(tmp_path, f"sqlite:///{tmp_path}/mlflow.db")
    journal = Journal(spec.checkpoints.path / spec.name, SweepTracker(spec)).start()
    batches: list[int] = []
    real = SweepTracker.log_epochs

    def counted(self, trial, config, results, **kwargs):
        batches.append(len(results))
        return real(self, trial, config, results, **kwargs)

    monkeypatch.setattr(SweepTracker, "log_epochs", counted)
    try:
        cfg = trial_config(0)
        journal.append(Event.SWEEP)
        journal.append(Event.START, trial="t000", config=cfg)
        assert journal.drain(30)
        for epoch in (1, 2, 3):  # as two fast trials' epochs reach the driver: well within LINGER_S
            journal.append(Event.EPOCH, trial="t000", config=cfg, result=result(0, epoch))
            time.sleep(0.03)
        assert journal.drain(30)
    finally:
        journal.close()
    assert batches == [3]  # one request, not one per epoch
