"""The `sweep` console script as a user runs it."""

import subprocess
import sys

import pytest


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sweep.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_list_optimizers_names_every_rule():
    result = run_cli("list", "optimizers")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["sgd", "ugd", "sam", "asam", "sam_gns"]


def test_unknown_listing_exits_2_naming_it():
    result = run_cli("list", "widgets")
    assert result.returncode == 2
    assert "widgets" in result.stderr


def test_train_runs_from_yaml_with_flag_overrides(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("dataset: digits\nmodel: small_cnn\noptimizer: sam\nlr: 0.05\nepochs: 5\nbatch_size: 32\n")
    result = run_cli("train", "--config", str(config), "--epochs", "2", "--no-augment", "--model-options", "{width: 8}")
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("finished: sam on small_cnn/digits, 2 epochs, val_acc ")
    assert "test_acc" in summary


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--lr", "-1"], "lr: "),
        (["--momentum", "1.5"], "momentum: "),
        (["--optimizer", "adam"], "optimizer: unknown update rule 'adam'"),
        (["--model", "small_cnn", "--model-options", "{depth: 2}"], "model_options: "),
        (["--dataset", "cifar10", "--model", "small_cnn", "--data-dir", "{tmp}/nowhere"], "dataset: CIFAR10 not found"),
        (["--config", "{tmp}/missing.yaml"], "--config "),
        (["--config", "{tmp}/bad.yaml"], "--config "),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_field(tmp_path, args, named):
    (tmp_path / "bad.yaml").write_text("lr: 0.1\nwidth_multiplier: 2\n- nonsense\n")
    result = run_cli("train", *[a.replace("{tmp}", str(tmp_path)) for a in args], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sweep train: ") and named in lines[0]


def test_unknown_key_in_yaml_is_named(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("dataset: digits\nlearning_rate: 0.1\n")
    result = run_cli("train", "--config", str(config))
    assert result.returncode == 2
    assert "learning_rate: Extra inputs are not permitted" in result.stderr


def test_train_logs_to_mlflow_when_asked(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [
        "--dataset",
        "digits",
        "--model",
        "small_cnn",
        "--optimizer",
        "ugd",
        "--lr",
        "0.5",
        "--epochs",
        "2",
        "--batch-size",
        "64",
    ]
    result = run_cli("train", *args, "--mlflow-uri", uri, "--experiment", "one-off")
    assert result.returncode == 0, result.stderr
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("one-off").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["optimizer"] == "ugd"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_acc")] == [1, 2]


def test_list_specs_shows_each_shipped_spec_with_its_command():
    result = run_cli("list", "specs")
    assert result.returncode == 0
    assert "search_spaces/quickstart.yaml" in result.stdout
    (table2,) = [line for line in result.stdout.splitlines() if line.startswith("search_spaces/paper_cifar10_table2.yaml")]
    assert "Table 2" in table2
