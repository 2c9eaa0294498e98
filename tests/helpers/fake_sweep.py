"""Sweeps written straight through the real tracking code into a real SQLite MLflow store, without
Ray: for the report and UI tests, which read MLflow only."""

from sweep.spec import validate_spec


def make_spec(tmp_path, name="fake", **overrides):
    spec = {
        "name": name,
        "dataset": "digits",
        "models": ["small_cnn"],
        "optimizers": ["sgd", "sam", "sam_gns"],
        "train": {"epochs": 3},
        "search": {"method": "optuna", "trials_per_arm": 2},
        "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db", "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
    }
    spec.update(overrides)
    return validate_spec(spec)


def log_trial(tracker, trial_id, rule, lr, seed, val, test_curve, phase="search", outcome="finished", rho=0.05):
    train = {
        "optimizer": rule,
        "model": "small_cnn",
        "dataset": "digits",
        "lr": lr,
        "rho": rho,
        "eta": 0.01,
        "seed": seed,
        "epochs": 3,
    }
    config = {"arm": f"small_cnn/{rule}", "phase": phase, "train": train, "study_trial": 0 if phase == "search" else None}
    for epoch, test in enumerate(test_curve, start=1):
        tracker.log_epoch(
            trial_id,
            config,
            {"epoch": epoch, "val_acc": val - (len(test_curve) - epoch), "test_acc": test, "train_loss": 1.0 / epoch},
        )
    if outcome is not None:
        tracker.end_trial(trial_id, config, outcome)
