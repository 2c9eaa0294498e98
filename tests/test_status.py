"""A sweep's status from its journal and state file (sweep/tracking/status.py), and what
`sweep resume --set` may change (sweep/spec/extend.py): no Ray, no stores."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from helpers.fake_sweep import make_spec
from sweep.compare.choice import Result
from sweep.errors import UserError
from sweep.spec import dump_spec
from sweep.spec.extend import extended
from sweep.tracking.journal_files import JOURNAL
from sweep.tracking.status import Board, State, duration, eta_seconds, read_state, status_lines, write_state


def event(kind, trial, arm="small_cnn/sgd", phase="search", lr=0.1, outcome=None, **result):
    fields = {"kind": kind, "trial": trial, "config": {"arm": arm, "phase": phase, "lr": lr}}
    fields = {**fields, "outcome": outcome} if outcome else fields
    return {**fields, "result": result} if result else fields


def epochs(trial, upto, start=1, t0=1000.0, arm="small_cnn/sgd", lr=0.1, phase="search", **extra):
    return [
        event("epoch", trial, arm, phase, lr, epoch=e, timestamp=t0 + 10 * e, val_acc=50.0 + e, **extra)
        for e in range(start, upto + 1)
    ]


def result_of(config, last, outcome):
    """The one choice's Result of a trial whose setting is its config's lr."""
    return Result(Result.key({"lr": config["lr"]}), 0, outcome, last.get("val_acc"), last.get("val_loss"), 0)


def board():
    return Board({"small_cnn/sgd": 3, "small_cnn/sam": 2}, {"small_cnn/sgd": 5, "small_cnn/sam": 5}, result_of)


def test_eta_is_the_epochs_left_over_the_measured_epoch_rate():
    # 3 epochs in the 30 s from the first stamp to the last: 0.1 epoch/s; 50 epochs left take 500 s
    assert eta_seconds(50, [0.0, 10.0, 20.0, 30.0]) == pytest.approx(500.0)
    assert eta_seconds(0, []) == 0.0  # nothing left
    assert eta_seconds(10, [5.0]) is None and eta_seconds(10, [5.0, 5.0]) is None  # not measured yet


def test_counts_and_planned_epochs_take_an_early_stopped_trial_at_its_epochs():
    b = board()
    for e in [
        event("start", "a"),
        *epochs("a", 2),
        event("end", "a", outcome="stopped early"),
        event("start", "b"),
        *epochs("b", 3),
    ]:
        b.feed(e)
    sgd = b.arms["small_cnn/sgd"]
    assert (sgd.running, sgd.done, sgd.budget) == (1, 1, 3)
    assert sgd.epochs_done == 5
    # a stopped after 2 epochs counts 2; b (running) and the trial not started yet count 5 each
    assert sgd.epochs_planned == 2 + 5 + 5
    assert sgd.best is None  # a trial stopped early says nothing of its setting; b has not ended
    # a resumed trial replays the epochs after its checkpoint: counted once
    for e in epochs("b", 4, start=2):
        b.feed(e)
    assert sgd.epochs_done == 2 + 4
    assert b.totals() == {"running": 1, "done": 1, "budget": 5, "epochs_done": 6, "epochs_planned": 22}
    # six new epochs stamped from 1010 to 1040 (two trials at once): 5 epochs in 30 s, 16 left
    assert b.eta() == pytest.approx(16 / (5 / 30))


def test_confirmation_trials_are_counted_apart():
    b = board()
    b.feed(event("start", "c", phase="confirm"))
    assert b.confirmations() == 1


def test_the_journal_is_read_a_whole_line_at_a_time(tmp_path):
    lines = [json.dumps(e) + "\n" for e in [event("start", "a"), *epochs("a", 2)]]
    (tmp_path / JOURNAL).write_text("".join(lines) + lines[0][:10])  # the writer is mid-line
    b = board().read(tmp_path)
    assert b.arms["small_cnn/sgd"].epochs_done == 2
    with open(tmp_path / JOURNAL, "a") as out:
        out.write(lines[0][10:] + json.dumps(event("end", "a")) + "\n")
    assert b.read(tmp_path).arms["small_cnn/sgd"].done == 1


def running_state(**changes):
    now = time.time()
    state = {
        "state": State.RUNNING,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "session_started": now - 65,
        "runtime_before_s": 3600.0,
        "updated": now,
        "every_s": 30.0,
    }
    return {**state, **changes}


def test_the_status_lines_name_every_field_per_arm():
    b = board()
    for e in [event("start", "a"), *epochs("a", 3)]:
        b.feed(e)
    head, sgd, sam = status_lines("demo", b, running_state())
    assert head.startswith("status demo: running, 1:01:0")  # an hour before, 65 s now
    assert "eta 0:03:40" in head  # 22 epochs left at 0.1 epoch/s
    assert head.endswith("1 running, 0/5 trials, 3/25 epochs")
    assert sgd == "status   small_cnn/sgd: 1 running, 0/3 trials, 3/15 epochs, no setting chosen yet"
    assert sam == "status   small_cnn/sam: 0 running, 0/2 trials, 0/10 epochs, no setting chosen yet"
    b.feed(event("end", "a", outcome="finished"))
    _, sgd, _ = status_lines("demo", b, running_state())
    assert sgd == "status   small_cnn/sgd: 0 running, 1/3 trials, 3/13 epochs, best val_acc 53.00"  # it ended at 3 epochs


def test_the_best_val_acc_is_the_one_choice_of_a_setting_over_ended_search_trials():
    b = board()
    trials = [
        ("a", 0.1, 3, "finished"),  # final val_acc 53
        ("b", 0.2, 5, "diverged"),  # 55 at its last epoch, but a diverged setting is never chosen
        ("c", 0.3, 4, None),  # 54, still running: says nothing yet
        ("d", 0.4, 4, "finished", "confirm"),  # a confirmation trial is not a search result
    ]
    for trial, lr, upto, outcome, *phase in trials:
        phase = phase[0] if phase else "search"
        for e in [event("start", trial, lr=lr, phase=phase), *epochs(trial, upto, lr=lr, phase=phase)]:
            b.feed(e)
        if outcome:
            b.feed(event("end", trial, lr=lr, phase=phase, outcome=outcome))
    assert b.arms["small_cnn/sgd"].best == 53.0


def test_a_stopped_sweep_shows_no_running_trials_and_no_eta():
    b = board()
    for e in [event("start", "a"), *epochs("a", 3)]:
        b.feed(e)
    head, sgd, _ = status_lines("demo", b, {"state": State.STOPPED, "runtime_s": 75.0})
    assert head == "status demo: stopped, 0:01:15 elapsed; 0/5 trials, 3/25 epochs"
    assert "running" not in sgd


def test_a_running_state_whose_driver_is_gone_reads_interrupted(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_state(tmp_path, running_state(pid=int(dead.stdout)))
    head = status_lines("demo", board(), read_state(tmp_path))[0]
    assert head.startswith(f"status demo: interrupted (its driver (pid {int(dead.stdout)}) is gone)")
    # on another host, only its silence tells: three status intervals, at least 90 s
    silent = running_state(host="elsewhere", updated=time.time() - 200)
    assert "no word from its driver" in status_lines("demo", board(), silent)[0]
    assert "running," in status_lines("demo", board(), running_state(host="elsewhere", updated=time.time() - 60))[0]


def test_durations_read_as_clock_times():
    assert duration(3725) == "1:02:05"
    assert duration(90061) == "1d 1:01:01"
    assert duration(None) == "?"


@pytest.fixture
def saved(tmp_path):
    spec = make_spec(tmp_path, name="ext", confirm_seeds=1)
    path = tmp_path / "sweep_spec.yaml"
    path.write_text(dump_spec(spec))
    return spec, path


def test_resume_may_raise_the_budget(saved):
    spec, path = saved
    bigger = extended(spec, path, ["search.trials_per_arm=4", "confirm_seeds=3"])
    assert (bigger.search.trials_per_arm, bigger.confirm_seeds) == (4, 3)
    assert bigger.model_dump(exclude={"search", "confirm_seeds"}) == spec.model_dump(exclude={"search", "confirm_seeds"})


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("dataset=cifar10", "dataset: cannot change when a sweep resumes"),
        ("train.epochs=9", "train.epochs: cannot change"),
        ("search.trials_per_arm=1", "search.trials_per_arm: 1 is below the sweep's 2"),
        ("confirm_seeds=0", "confirm_seeds: 0 is below the sweep's 1"),
    ],
)
def test_resume_refuses_any_other_field_and_a_smaller_budget(saved, override, named):
    spec, path = saved
    with pytest.raises(UserError) as refused:
        extended(spec, path, [override])
    (line,) = refused.value.problems
    assert line.startswith(named)


def test_a_grid_sweep_cannot_take_more_search_trials(tmp_path):
    raw = make_spec(tmp_path, name="grid").model_dump(mode="json")
    raw["search"] = {"method": "grid", "space": {"lr": {"choices": [0.1, 0.2]}}}
    path = tmp_path / "sweep_spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    from sweep.spec import load_spec

    with pytest.raises(UserError, match="search.trials_per_arm: a grid sweep"):
        extended(load_spec(path), path, ["search.trials_per_arm=9"])
