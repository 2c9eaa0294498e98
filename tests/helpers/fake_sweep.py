"""Specs of the tests' sweeps: tiny ones that Ray really runs (`ray_sweep_spec`), and sweeps written
straight through the real tracking code into a real SQLite MLflow store, without Ray, for the
report and UI tests, which read MLflow only (`make_spec`, `log_trial`)."""

from sweep.spec import validate_spec


def ray_sweep_spec(tmp_path, name, **fields):
    """A sweep of small CNNs on digits, sgd against sam_gns, two trials at a time on half a logical
    GPU each, its stores in tmp_path; `fields` (train, search, ...) replace the spec's own."""
    spec = {
        "name": name,
        "dataset": "digits",
        "models": ["small_cnn"],
        "optimizers": ["sgd", "sam_gns"],
        "resources": {"cpus": 1, "gpu": 0.5},
        "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db", "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
        "checkpoints": {"path": str(tmp_path / "sweeps")},
        "max_concurrent": 2,
    }
    return validate_spec({**spec, **fields}).resolved()


def make_spec(tmp_path, name="fake", **overrides):
    spec = {
        "name": name,
        "dataset": "digits",
        "models": ["small_cnn"],
        "optimizers": ["sgd", "sam", "sam_gns"],
        "train": {"epochs": 3},
        "search": {"method": "optuna", "trials_per_arm": 2, "space": {"lr": {"low": 0.01, "high": 1.0, "log": True}}},
        "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db", "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
    }
    spec.update(overrides)
    return validate_spec(spec)


def log_trial(
    tracker, trial_id, rule, lr, seed, val, test_curve, phase="search", outcome="finished", rho=0.05, study_trial=0, val_loss=None
):
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
    config = {
        "arm": f"small_cnn/{rule}",
        "phase": phase,
        "train": train,
        "study_trial": study_trial if phase == "search" else None,
    }
    for epoch, test in enumerate(test_curve, start=1):
        result = {"epoch": epoch, "val_acc": val - (len(test_curve) - epoch), "test_acc": test, "train_loss": 1.0 / epoch}
        if val_loss is not None:
            result["val_loss"] = val_loss + (len(test_curve) - epoch)  # falls to val_loss at the last epoch
        tracker.log_epochs(trial_id, config, [result])
    if outcome is not None:
        tracker.end_trial(trial_id, config, outcome)
