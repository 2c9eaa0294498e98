"""The `sweep` console script as a user runs it."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from sweep.cli import build_parser
from sweep.cli.main import COMMANDS, main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sweep.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def run_here(capsys, *args) -> subprocess.CompletedProcess:
    """The command's `main` in this process, as the console script calls it (argparse's refusals
    exit through SystemExit): for the refusals, which would otherwise each pay a fresh
    interpreter's imports. test_bad_input_exits_2_from_the_console_script runs the real script."""
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["sweep", *args], code, out, err)


def test_list_optimizers_names_every_rule():
    result = run_cli("list", "optimizers")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["sgd", "ugd", "sam", "asam", "sam_gns"]


def test_unknown_listing_exits_2_naming_it(capsys):
    result = run_here(capsys, "list", "widgets")
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
def test_bad_input_exits_2_with_one_line_naming_the_field(tmp_path, capsys, args, named):
    (tmp_path / "bad.yaml").write_text("lr: 0.1\nwidth_multiplier: 2\n- nonsense\n")
    result = run_here(capsys, "train", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sweep train: ") and named in lines[0]


def test_bad_input_exits_2_from_the_console_script(tmp_path):
    result = run_cli("train", "--optimizer", "adam", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip()
        == "sweep train: optimizer: unknown update rule 'adam'; known: sgd, ugd, sam, asam, sam_gns (got 'adam')"
    )


def test_unknown_key_in_yaml_is_named(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("dataset: digits\nlearning_rate: 0.1\n")
    result = run_here(capsys, "train", "--config", str(config))
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
    for key in ("images_per_s", "peak_rss_mb"):  # what the hardware did, from fit() itself (CPU here)
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2] and run.data.metrics[key] > 0


def test_list_specs_shows_each_shipped_spec_with_its_command():
    result = run_cli("list", "specs")
    assert result.returncode == 0
    assert "search_spaces/quickstart.yaml" in result.stdout
    (table2,) = [line for line in result.stdout.splitlines() if line.startswith("search_spaces/paper_cifar10_table2.yaml")]
    assert "Table 2" in table2


def imported_roots(*args):
    """The command's exit and the top-level packages it imported (python -X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sweep.cli", *args], capture_output=True, text=True, timeout=300
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return result, {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines}


HEAVY = {"torch", "ray", "mlflow", "optuna"}
QUICKSTART = str(Path(__file__).parent.parent / "search_spaces" / "quickstart.yaml")
HELPS = [[command, "--help"] for command in COMMANDS] + [["cluster", action, "--help"] for action in ("head", "join", "status")]


def test_help_imports_none_of_the_heavy_packages():
    result, roots = imported_roots("--help")
    assert result.returncode == 0 and all(name in result.stdout for name in ("run", "train", "cluster", "report"))
    assert "sweep" in roots and not roots & HEAVY


@pytest.mark.parametrize("args", HELPS, ids=" ".join)
def test_every_commands_help_imports_none_of_the_heavy_packages(args):
    result, roots = imported_roots(*args)
    assert result.returncode == 0 and result.stdout.startswith(f"usage: sweep {' '.join(args[:-1])}")
    assert f"\nexample:\n  sweep {' '.join(args[:-1])} " in result.stdout and "PosixPath(" not in result.stdout
    assert not roots & HEAVY, roots & HEAVY


@pytest.mark.parametrize(
    ("args", "needs"),
    [
        (["validate", QUICKSTART], {"torch"}),  # each model is built on torch's meta device
        (["list", "models"], set()),  # trainers/catalogue/ names them without torch
        (["list", "specs"], set()),
    ],
    ids=["validate", "list models", "list specs"],
)
def test_validate_and_list_import_no_ray_mlflow_or_optuna(args, needs):
    result, roots = imported_roots(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert roots & HEAVY == needs


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_its_own_help(command, capsys):
    # in this process: the subprocess tests above check what each start imports
    with pytest.raises(SystemExit) as done:
        build_parser(only=command).parse_args([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: sweep {command}")
    assert f"\n{COMMANDS[command].help}\n" in out  # its description
    assert f"\nexample:\n  sweep {command} " in out
    assert "PosixPath(" not in out and "Model(" not in out and "Data(" not in out  # no Python reprs as defaults


def test_enumerated_arguments_show_their_choices(capsys):
    for args in (["list", "--help"], ["train", "--help"]):
        with pytest.raises(SystemExit):
            build_parser(only=args[0]).parse_args(args)
    out = " ".join(capsys.readouterr().out.split())  # help lines are wrapped
    assert "{optimizers,models,datasets,specs,sweeps}" in out
    assert "--lr-schedule {cosine,constant}" in out and "--normalize {auto,dataset,imagenet}" in out
    assert "(default: data)" in out and "(default: {images: 1000, image_size: 32, channels: 3, num_classes: 10})" in out


def test_version_is_the_installed_distributions():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"sweep {metadata.version('sam-gns-sweep')}"


def test_list_sweeps_status_and_stop_import_none_of_the_heavy_packages(tmp_path):
    from helpers.fake_sweep import make_spec
    from sweep.spec import dump_spec

    folder = tmp_path / "sweeps" / "quiet"
    folder.mkdir(parents=True)
    (folder / "sweep_spec.yaml").write_text(dump_spec(make_spec(tmp_path, name="quiet")))
    storage = ["--storage", str(tmp_path / "sweeps")]
    result, roots = imported_roots("list", "sweeps", *storage)
    assert result.returncode == 0 and result.stdout.startswith("quiet ") and not roots & HEAVY, roots & HEAVY
    result, roots = imported_roots("status", "quiet", *storage)
    assert result.returncode == 0 and "status quiet: unknown" in result.stdout and not roots & HEAVY, roots & HEAVY
    result, roots = imported_roots("stop", "quiet", *storage)  # nothing runs it: refused, exit 2
    assert result.returncode == 2 and "name: sweep 'quiet' is not running" in result.stderr
    assert not roots & HEAVY, roots & HEAVY
