"""The one choice of a setting, and what the searcher tells its studies, without Ray: the real
ArmSearcher over real Optuna studies (SQLite), and the report over a real MLflow store, fed the
same trials, must choose the same setting."""

import pickle

import pytest
from optuna.trial import TrialState

from helpers.fake_sweep import log_trial, make_spec
from sweep.compare.choice import Result, choose
from sweep.compare.seeds import wanted
from sweep.errors import UserError
from sweep.report.data import build_report
from sweep.search.searcher import ArmSearcher
from sweep.spec import Arm, validate_spec
from sweep.tracking.runs import SweepTracker


def result(lr, seed, val, loss=0.5, outcome="finished", order=0):
    return Result(Result.key({"lr": lr}), seed, outcome, val, loss, order)


def test_choose_ranks_mean_val_acc_then_val_loss_then_the_earlier_trial():
    assert choose([result(0.1, 0, 90), result(0.1, 1, 92, order=1), result(0.2, 0, 90.5, order=2)]).setting == {"lr": 0.1}
    # a tie on mean val_acc goes to the lower mean val_loss, whatever the order
    assert choose([result(0.1, 0, 91, 0.4), result(0.2, 0, 91, 0.3, order=1)]).setting == {"lr": 0.2}
    # and a tie on both to the setting tried first
    assert choose([result(0.2, 0, 91, order=3), result(0.1, 0, 91, order=1)]).setting == {"lr": 0.1}


def test_a_setting_that_diverged_on_one_seed_is_not_ranked_on_its_survivors():
    found = [result(0.5, 0, 99.0), result(0.5, 1, None, None, "diverged", 1), result(0.1, 0, 80.0, order=2)]
    choice = choose(found)
    assert choice.setting == {"lr": 0.1} and choice.val_acc == 80.0
    assert choose([result(0.5, 0, None, None, "diverged")]) is None
    # failed, stopped early and lost trials say nothing of their setting
    assert choose([result(0.5, 0, 99.0, outcome="stopped early"), result(0.1, 0, 50.0, order=1)]).setting == {"lr": 0.1}


def test_without_validation_only_a_single_setting_is_chosen_and_not_on_an_objective():
    one = choose([result(0.1, 0, None, None), result(0.1, 1, None, None, order=1)])
    assert one.setting == {"lr": 0.1} and not one.on_objective and one.seeds == [0, 1]
    assert choose([result(0.1, 0, None, None), result(0.2, 0, None, None, order=1)]) is None


def grid_spec(tmp_path, name="grid", **overrides):
    spec = {
        "name": name,
        "dataset": "digits",
        "models": ["small_cnn"],
        "optimizers": ["sgd", "sam_gns"],
        "train": {"epochs": 3},
        "search": {"method": "grid", "space": {"lr": {"choices": [0.1, 0.2, 0.3]}, "rho": {"choices": [0.05]}}},
        "seeds": [0, 1],
        "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db", "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
        "checkpoints": {"path": str(tmp_path / "sweeps")},
    }
    spec.update(overrides)
    return validate_spec(spec)


def issue_all(searcher):
    """Every search trial the searcher hands out before it waits for results: trial id -> config."""
    configs = {}
    while (config := searcher.suggest(f"t{len(configs)}")) is not None:
        configs[f"t{len(configs)}"] = config
    return configs


def test_optuna_and_mlflow_choose_the_same_setting_with_ties_and_partly_diverged_settings(tmp_path):
    spec = grid_spec(tmp_path)
    searcher = ArmSearcher(spec)
    configs = issue_all(searcher)
    assert len(configs) == 12  # 3 settings x 2 seeds, per arm
    # per arm and lr: (val_acc, val_loss) for seeds 0 and 1; None: diverged
    plan = {
        "sgd": {0.1: [(90, 0.3), (92, 0.3)], 0.2: [(99, 0.1), None], 0.3: [(91, 0.2), (91, 0.2)]},  # 0.3: tie, lower loss
        "sam_gns": {0.1: [(91, 0.3), (91, 0.3)], 0.2: [(91, 0.3), (91, 0.3)], 0.3: [(50, 0.9), (52, 0.9)]},  # full tie
    }
    tracker = SweepTracker(spec)
    for trial_id, config in configs.items():
        rule, train = Arm.parse(config["arm"]).rule, config["train"]
        outcome = plan[rule][train["lr"]][train["seed"]]
        val, loss = outcome if outcome else (None, None)
        status = "finished" if outcome else "diverged"
        searcher.on_trial_complete(trial_id, {"status": status, "val_acc": val, "val_loss": loss, "test_acc": 80.0, "epoch": 3})
        log_trial(
            tracker,
            trial_id,
            rule,
            train["lr"],
            train["seed"],
            val if outcome else 9.0,
            [70, 75, 80],
            outcome="finished" if outcome else "diverged",
            study_trial=config["study_trial"],
            val_loss=loss if outcome else 9.0,
        )
    tracker.finish({})
    report = build_report(spec.tracking.mlflow_uri, "grid")
    first = min(
        (c for c in configs.values() if c["arm"] == "small_cnn/sam_gns" and c["train"]["lr"] in (0.1, 0.2)),
        key=lambda c: c["study_trial"],
    )
    expected = {"sgd": 0.3, "sam_gns": first["train"]["lr"]}  # sam_gns: the tied setting Optuna ran first
    for rule, lr in expected.items():
        assert searcher.best_point(f"small_cnn/{rule}")["lr"] == lr
        assert report.cells[("small_cnn", rule)].setting["lr"] == lr
    # the diverged trial reached its study as a completed trial at chance level, flagged as diverged
    study = searcher.study("small_cnn/sgd")
    (diverged,) = [t for t in study.trials if t.user_attrs["outcome"] == "diverged"]
    assert diverged.state == TrialState.COMPLETE and diverged.value == pytest.approx(10.0)  # digits: 10 classes
    assert report.cells[("small_cnn", "sgd")].diverged == 1


def test_grid_arms_get_equal_budgets_repeating_the_smaller_grid_over_more_seeds(tmp_path):
    space = {"lr": {"choices": [0.1, 0.2]}, "rho": {"choices": [0.01, 0.02, 0.04, 0.08]}}
    spec = grid_spec(tmp_path, search={"method": "grid", "space": space})
    assert spec.search_budget("sgd") == spec.search_budget("sam_gns") == 16  # sgd: 2 points x 8 seeds
    assert spec.search_seeds("sgd") == [0, 1, 2, 3, 4, 5, 6, 7] and spec.search_seeds("sam_gns") == [0, 1]
    configs = issue_all(ArmSearcher(spec))
    for rule, points in (("sgd", 2), ("sam_gns", 8)):
        mine = [c["train"] for c in configs.values() if c["arm"] == f"small_cnn/{rule}"]
        assert len(mine) == 16 and len({(t["lr"], t["rho"], t["seed"]) for t in mine}) == 16
        assert len({(t["lr"], t["rho"]) for t in mine}) == points
    assert spec.confirmation_seeds() == []  # none asked; they would start after seed 7
    assert validate_spec({**spec.model_dump(mode="json"), "confirm_seeds": 2}).confirmation_seeds() == [8, 9]
    # a rule's own lr grid (an override) of 3 points beside 2: no seed count evens them
    uneven = {
        "method": "grid",
        "space": {"lr": {"choices": [0.1, 0.2]}},
        "overrides": {"sgd": {"lr": {"choices": [0.1, 0.2, 0.3]}}},
    }
    with pytest.raises(UserError, match=r"search.space: grid arms get equal budgets .* sam_gns's 2 points do not divide 3"):
        grid_spec(tmp_path, search=uneven, seeds=[0])


def test_adaptive_seeds_plan_stops_once_decided_and_runs_to_max_on_a_tie(tmp_path):
    spec = grid_spec(tmp_path, search={"method": "grid", "space": {"lr": 0.1}}, confirm_seeds={"min": 2, "max": 6})
    seeds = spec.confirmation_seeds()
    arms = {"small_cnn/sgd", "small_cnn/sam_gns"}
    assert wanted(spec, set(), {}) == dict.fromkeys(arms, 0)  # nothing chosen, nothing to confirm
    assert wanted(spec, arms, {}) == dict.fromkeys(arms, 2)
    clear = {"small_cnn/sam_gns": [90.0, 91.0, 92.5, 90.5], "small_cnn/sgd": [20.0, 31.0, 27.5, 20.2]}  # 70, 60, 65 apart
    ended = {arm: dict(zip(seeds, values)) for arm, values in clear.items()}
    # two pairs at alpha 0.05/5 are not enough for a verdict; a third decides, and seeds stop there
    assert wanted(spec, arms, {arm: dict(list(v.items())[:2]) for arm, v in ended.items()}) == dict.fromkeys(arms, 3)
    assert wanted(spec, arms, ended) == dict.fromkeys(arms, 3)
    tie = {arm: dict(zip(seeds, [90.0, 91.0, 92.5, 90.5, 91.2, 90.1])) for arm in arms}  # identical: no spread
    assert wanted(spec, arms, tie) == dict.fromkeys(arms, 6)
    failed = {arm: {**dict(list(v.items())[:2])} for arm, v in ended.items()}
    failed["small_cnn/sgd"][seeds[1]] = None  # a confirmation run failed: more seeds cannot decide
    assert wanted(spec, arms, failed) == dict.fromkeys(arms, 2)


def test_val_fraction_zero_needs_one_setting_per_arm_and_no_scheduler(tmp_path):
    fixed = grid_spec(tmp_path, train={"epochs": 3, "val_fraction": 0}, search={"method": "grid", "space": {"lr": 0.1}})
    assert fixed.settings_count("sgd") == 1
    with pytest.raises(
        UserError, match="train.val_fraction: 0 leaves no val_acc to choose among the settings of arm small_cnn/sgd"
    ):
        grid_spec(tmp_path, train={"epochs": 3, "val_fraction": 0})
    with pytest.raises(UserError, match="scheduler: ASHA stops trials on val_acc"):
        grid_spec(
            tmp_path,
            train={"epochs": 3, "val_fraction": 0},
            search={"method": "grid", "space": {"lr": 0.1}},
            scheduler={"grace_period": 1},
        )


def test_a_study_trial_asked_after_the_last_saved_state_is_trained_on_resume_not_failed(tmp_path):
    """A driver killed between Optuna's ask and Tune's next save of the searcher leaves a RUNNING
    study trial no Tune trial holds; the resumed searcher hands it out again, same number, same
    setting, instead of asking another and failing it at the end."""
    search = {"method": "optuna", "trials_per_arm": 3, "space": {"lr": {"low": 0.01, "high": 1.0, "log": True}}}
    spec = make_spec(tmp_path, optimizers=["sam_gns"], search=search)
    (arm,) = [a.key for a in spec.arms()]
    before = ArmSearcher(spec)
    first = before.suggest("t1")
    saved = pickle.loads(pickle.dumps(before.get_state()))  # what Tune saved: t1 issued
    lost = before.suggest("t2")  # asked, then the driver died before the next save

    resumed = ArmSearcher(spec)
    resumed.set_state(saved)
    again = resumed.suggest("t2-after-resume")
    assert again["study_trial"] == lost["study_trial"] != first["study_trial"]
    assert again["train"] == lost["train"]  # Optuna's proposal of then, with its seed
    fresh = resumed.suggest("t3")  # the next one is new
    assert fresh["study_trial"] not in (first["study_trial"], lost["study_trial"])
    study = resumed.study(arm)
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 3
    assert study.trials[lost["study_trial"]].user_attrs["ray_trial_id"] == "t2-after-resume"
