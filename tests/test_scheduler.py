"""Early stopping per arm: fake trials fed to the scheduler (no Ray), then one sweep on a real
local Ray whose two arms' curves differ systematically, read back from the scheduler and MLflow."""

import pickle
from types import SimpleNamespace

import pytest
import ray
from mlflow.tracking import MlflowClient
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

import sweep.tuning.driver
from helpers.fake_sweep import ray_sweep_spec
from sweep.tracking.schema import METRIC, MODE
from sweep.tuning.scheduler import PerArmAsha, build_scheduler

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
HIGH, LOW = "small_cnn/sam_gns", "small_cnn/sgd"  # arm keys; in the fakes only their names matter


def trial(trial_id, arm, phase="search", epochs=3):
    return SimpleNamespace(trial_id=trial_id, config={"arm": arm, "phase": phase, "train": {"epochs": epochs}})


def feed(scheduler, trial_, epoch, val_acc):
    return scheduler.on_trial_result(None, trial_, {"epoch": epoch, METRIC: val_acc})


def added(scheduler, *trials):
    for t in trials:
        scheduler.on_trial_add(None, t)
    return trials


def test_a_trial_is_judged_only_against_trials_of_its_own_arm():
    scheduler = PerArmAsha(grace_period=1, reduction_factor=2)
    high = added(scheduler, *(trial(f"a{i}", HIGH) for i in range(4)))
    low = added(scheduler, *(trial(f"b{i}", LOW) for i in range(4)))
    assert [feed(scheduler, t, 1, acc) for t, acc in zip(high, (90, 92, 94, 96))] == [CONTINUE] * 4
    assert feed(scheduler, low[0], 1, 10) == CONTINUE
    assert feed(scheduler, low[1], 1, 20) == CONTINUE
    # 30 is above its own arm's median (15) though far below the other arm's 90s
    assert feed(scheduler, low[2], 1, 30) == CONTINUE
    assert feed(scheduler, low[3], 1, 5) == STOP  # its arm's cutoff still applies
    assert scheduler.stopped == {LOW: {"b3"}}

    assert scheduler.rungs(HIGH)[1] == {"a0", "a1", "a2", "a3"}
    assert scheduler.rungs(LOW)[1] == {"b0", "b1", "b2", "b3"}
    assert scheduler.arms() == [HIGH, LOW]

    # the same results through one ASHA for all arms, as before: the low arm's 30 is stopped
    shared = AsyncHyperBandScheduler(time_attr="epoch", metric=METRIC, mode=MODE, max_t=3, grace_period=1, reduction_factor=2)
    for t, acc in zip((*high, *low[:2]), (90, 92, 94, 96, 10, 20)):
        shared.on_trial_add(None, t)
        shared.on_trial_result(None, t, {"epoch": 1, METRIC: acc})
    shared.on_trial_add(None, low[2])
    assert shared.on_trial_result(None, low[2], {"epoch": 1, METRIC: 30}) == STOP


def test_confirmation_trials_always_continue_and_are_never_recorded():
    scheduler = PerArmAsha(grace_period=1, reduction_factor=2)
    for i, t in enumerate(added(scheduler, *(trial(f"s{i}", HIGH) for i in range(3)))):
        feed(scheduler, t, 1, 90 + i)
    (confirm,) = added(scheduler, trial("c0", HIGH, phase="confirm"))
    for epoch in (1, 2):
        assert feed(scheduler, confirm, epoch, 0.0) == CONTINUE  # far below every rung's cutoff
    scheduler.on_trial_error(None, confirm)
    scheduler.on_trial_complete(None, confirm, {"epoch": 3, METRIC: 0.0})
    scheduler.on_trial_remove(None, confirm)
    assert all("c0" not in ids for ids in scheduler.rungs(HIGH).values())
    assert scheduler.stopped == {}
    # an arm whose only trials are confirmations gets no ASHA at all
    (alone,) = added(scheduler, trial("c1", LOW, phase="confirm"))
    assert feed(scheduler, alone, 1, 0.0) == CONTINUE and scheduler.rungs(LOW) == {}


def test_each_arm_has_its_own_length_and_the_end_of_a_trial_is_not_a_stop():
    scheduler = PerArmAsha(grace_period=1, reduction_factor=2)
    short, long_ = added(scheduler, trial("s", LOW, epochs=2), trial("l", HIGH, epochs=8))
    assert list(scheduler.rungs(LOW)) == [1, 2]
    assert list(scheduler.rungs(HIGH)) == [1, 2, 4, 8]
    assert feed(scheduler, short, 1, 50) == CONTINUE
    assert feed(scheduler, short, 2, 50) == STOP  # its last epoch: ended, not stopped early
    assert scheduler.stopped == {}
    # a grace period longer than a model's training: its trials are never stopped early
    lenient = PerArmAsha(grace_period=5, reduction_factor=2)
    first, second = added(lenient, trial("x", LOW, epochs=2), trial("y", LOW, epochs=2))
    feed(lenient, first, 1, 90)
    assert feed(lenient, second, 1, 1) == CONTINUE


def test_a_retried_trial_keeps_its_records_and_is_not_judged_again_on_replayed_epochs():
    scheduler = PerArmAsha(grace_period=1, reduction_factor=2)
    a, b = added(scheduler, trial("a", LOW), trial("b", LOW))
    feed(scheduler, a, 1, 90)
    assert feed(scheduler, b, 1, 95) == CONTINUE
    scheduler.on_trial_error(None, b)
    scheduler.on_trial_add(None, b)  # Tune requeues a trial it retries
    assert feed(scheduler, b, 1, 10) == CONTINUE  # replayed epoch, already recorded at 95
    assert scheduler.rungs(LOW)[1] == {"a", "b"}


def test_it_survives_a_pickle_round_trip_with_its_rungs_and_decisions(tmp_path):
    scheduler = PerArmAsha(grace_period=1, reduction_factor=2)
    for i, t in enumerate(added(scheduler, *(trial(f"t{i}", LOW) for i in range(3)))):
        feed(scheduler, t, 1, 10 * (i + 1))
    copy = pickle.loads(pickle.dumps(scheduler))  # as Tune stores the Tuner's config for `sweep resume`
    assert copy.rungs(LOW) == scheduler.rungs(LOW) and copy.stopped == scheduler.stopped
    scheduler.save(tmp_path / "scheduler.pkl")
    restored = PerArmAsha(grace_period=3, reduction_factor=4)
    restored.restore(tmp_path / "scheduler.pkl")
    assert restored.rungs(LOW) == scheduler.rungs(LOW)
    late = trial("late", LOW)
    decisions = []
    for s in (scheduler, copy):
        s.on_trial_add(None, late)
        decisions.append(feed(s, late, 1, 5))
    assert decisions == [STOP, STOP] and copy.stopped == {LOW: {"late"}}
    assert "small_cnn/sgd" in copy.debug_string()


def test_tune_may_pass_the_sweeps_objective_only():
    scheduler = PerArmAsha(grace_period=1, reduction_factor=3)
    assert scheduler.set_search_properties(METRIC, MODE) and scheduler.set_search_properties(None, None)
    assert not scheduler.set_search_properties("val_loss", "min")
    assert scheduler.metric == METRIC


def tiny_spec(tmp_path, name, **overrides):
    fields = {
        "train": {"epochs": 3, "batch_size": 128, "model_options": {"width": 4}},
        "search": {
            "method": "optuna",
            "trials_per_arm": 4,
            "space": {"lr": {"low": 0.1, "high": 0.5, "log": True}, "rho": {"low": 0.01, "high": 0.2, "log": True}},
            # SGD at this rate stays near chance for 3 epochs, SAM-GNS learns: two curves apart
            "overrides": {"sgd": {"lr": 0.0005}},
        },
        "scheduler": {"grace_period": 1, "reduction_factor": 2},
        "confirm_seeds": 2,
    }
    return ray_sweep_spec(tmp_path, name, **{**fields, **overrides})


def test_build_scheduler_is_none_without_a_scheduler_section(tmp_path):
    assert build_scheduler(tiny_spec(tmp_path, "none", scheduler=None)) is None
    assert isinstance(build_scheduler(tiny_spec(tmp_path, "asha")), PerArmAsha)


@pytest.fixture(scope="module")
def ray_session():
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_a_sweep_stops_trials_within_their_arm_and_never_a_confirmation(tmp_path, monkeypatch, ray_session):
    built = []

    def keep(spec):
        built.append(build_scheduler(spec))
        return built[-1]

    monkeypatch.setattr(sweep.tuning.driver, "build_scheduler", keep)
    spec = tiny_spec(tmp_path, "per-arm")
    outcome = sweep.tuning.driver.run_sweep(spec)
    assert not outcome.interrupted and outcome.failed == 0
    (scheduler,) = built  # Tune runs this very object (the Tuner keeps its config's scheduler)

    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    children = [r for r in client.search_runs([experiment.experiment_id]) if "ray.trial_id" in r.data.tags]
    arm_of = {r.data.tags["ray.trial_id"]: r.data.tags["sweep.arm"] for r in children}
    confirms = [r for r in children if r.data.tags["sweep.phase"] == "confirm"]
    assert len(children) == 12 and len(confirms) == 4

    confirm_ids = {r.data.tags["ray.trial_id"] for r in confirms}
    for arm in (LOW, HIGH):
        rungs = scheduler.rungs(arm)
        recorded = set().union(*rungs.values())
        assert recorded, f"no trial of {arm} reached a rung"
        assert {arm_of[t] for t in recorded} == {arm}  # every rung holds its own arm's trials only
        assert not recorded & confirm_ids
        assert not scheduler.stopped.get(arm, set()) & confirm_ids
        assert {arm_of[t] for t in scheduler.stopped.get(arm, ())} <= {arm}
    for run in confirms:
        assert run.data.tags["sweep.outcome"] == "finished"
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "test_acc")) == [1, 2, 3]
