"""Sweep specs: every shipped spec loads, bad specs are refused with the field path, arms are fair."""

from pathlib import Path

import pytest

from sweep import cli
from sweep.errors import UserError
from sweep.search.space import distributions, grid
from sweep.spec import Range, load_spec, validate_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "search_spaces").glob("*.yaml"))


def minimal(**overrides):
    spec = {
        "name": "t",
        "dataset": "digits",
        "models": ["small_cnn"],
        "optimizers": ["sgd", "sam", "asam"],
        "train": {"epochs": 2},
        "search": {
            "method": "optuna",
            "trials_per_arm": 3,
            "space": {"lr": {"low": 0.01, "high": 1, "log": True}, "rho": {"low": 0.01, "high": 0.5}},
        },
    }
    spec.update(overrides)
    return spec


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_loads_and_names_its_command(path):
    spec = load_spec(path)
    assert path.read_text().splitlines()[0] == f"# sweep run search_spaces/{path.name}"
    assert all(spec.search_budget(rule) >= 1 for _, rule in spec.arms())


def test_the_shipped_specs_exist():
    names = {p.name for p in SPECS}
    assert {
        "quickstart.yaml",
        "paper_cifar10_table2.yaml",
        "paper_cifar10_table2_augment.yaml",
        "paper_cifar100_table3.yaml",
        "paper_cifar100_table3_augment.yaml",
        "paper_finetune_table4.yaml",
        "cifar10_rho_lr.yaml",
    } <= names


def test_the_papers_tables_ship_as_written_and_as_trained():
    """Tables 2 and 3 twice (no augmentation, as the text says; crop+flip, as the authors' code
    trains), on all training images; Table 4 at the paper's per-model lr; the flagship search
    with adaptive confirmation seeds."""
    specs = {p.name: load_spec(p) for p in SPECS}
    for table in ("paper_cifar10_table2", "paper_cifar100_table3"):
        written, trained = specs[f"{table}.yaml"], specs[f"{table}_augment.yaml"]
        for spec, augment in ((written, False), (trained, True)):
            for model, rule in spec.arms():
                cfg = spec.train_config(model, rule, 0, {})
                assert (cfg.augment, cfg.val_fraction, cfg.lr, cfg.rho) == (augment, 0, 0.1, 0.05)
    finetune = specs["paper_finetune_table4.yaml"]
    lrs = {model: finetune.train_config(model, "sam_gns", 0, {}).lr for model in finetune.models}
    assert lrs.pop("tv_vit_b_16") == 0.001 and set(lrs.values()) == {0.01}
    assert all(finetune.train_config(m, "sam_gns", 0, {}).normalize == "auto" for m in finetune.models)
    assert specs["cifar10_rho_lr.yaml"].confirm_range == (3, 10)


def test_every_arm_gets_the_same_budget_and_only_its_own_dimensions():
    spec = validate_spec(
        minimal(search={**minimal()["search"], "overrides": {"asam": {"rho": {"low": 0.1, "high": 5, "log": True}}}})
    )
    assert [spec.search_budget(r) for _, r in spec.arms()] == [3, 3, 3]
    assert set(spec.space_for("sgd")) == {"lr"}  # SGD reads no rho: none of its budget goes there
    assert spec.space_for("sam")["rho"] == Range(low=0.01, high=0.5)
    assert spec.space_for("asam")["rho"] == Range(low=0.1, high=5, log=True)
    assert distributions(spec.space_for("asam"))["rho"].log


def test_grid_runs_every_combination_with_every_seed():
    spec = validate_spec(
        minimal(search={"method": "grid", "space": {"lr": {"choices": [0.1, 0.01]}, "rho": 0.05}}, seeds=[0, 1, 2])
    )
    assert spec.search_budget("sam") == 6 and spec.search_budget("sgd") == 6
    assert grid(spec.space_for("sam"), spec.seeds) == {"lr": [0.1, 0.01], "seed": [0, 1, 2]}


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            {"search": {"method": "optuna", "trials_per_arm": 2, "space": {"rho": {"low": 0, "high": 1, "log": True}}}},
            "search.space.rho.low: must be > 0 for a log range",
        ),
        (
            {"search": {"method": "optuna", "trials_per_arm": 2, "space": {"lr": {"low": 1, "high": 0.5}}}},
            "search.space.lr.high: must be > low",
        ),
        ({"search": {"method": "optuna", "space": {}}}, "search.trials_per_arm: required for method optuna"),
        ({"search": {"method": "grid", "space": {"lr": {"low": 0.1, "high": 1}}}}, "search.space.lr: a grid needs choices"),
        (
            {"search": {"method": "optuna", "trials_per_arm": 1, "space": {"batch_size": 3}}},
            "search.space.batch_size: not searchable",
        ),
        (
            {"search": {"method": "optuna", "trials_per_arm": 1, "overrides": {"adam": {}}}},
            "search.overrides.adam: unknown update rule",
        ),
        ({"optimizers": ["sgd", "lion"]}, "optimizers: unknown update rule 'lion'"),
        ({"models": ["resnet19"]}, "models: unknown model 'resnet19'"),
        ({"train": {"epochs": 0}}, "train.epochs: Input should be greater than or equal to 1"),
        ({"train": {"lr": 0.1}}, "train.lr: also in the search space"),
        ({"train": {"optimizer": "sgd"}}, "train.optimizer: set by the spec"),
        ({"resources": {"gpu": 1.5}}, "resources.gpu: must be a fraction of one GPU in [0, 1], or auto"),
        (
            {"tracking": {"mlflow_uri": "sqlite:///x.db", "optuna_storage": "sqlite:///x.db"}},
            "tracking.optuna_storage: must not be MLflow's database",
        ),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"name": "has space"}, "name: String should match pattern"),
    ],
)
def test_bad_specs_name_the_field_path(change, line):
    with pytest.raises(UserError) as err:
        validate_spec(minimal(**change))
    assert any(problem.startswith(line) for problem in err.value.problems), err.value.problems


def test_validate_command_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("name: g\ndataset: digits\nmodels: [small_cnn]\noptimizers: [sgd, sam_gns]\nsearch: {trials_per_arm: 2}\n")
    assert cli.main(["validate", str(good)]) == 0
    assert "ok: g: 2 arms, 4 trials (optuna)" in capsys.readouterr().out

    assert (
        cli.main(["validate", str(good), "--set", "search.space.rho={low: 0, high: 1, log: true}", "--set", "train.batch_size=0"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["search.space.rho.low: must be > 0 for a log range"]

    assert cli.main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: No such file or directory" in capsys.readouterr().err
    assert cli.main(["validate", str(good), "--set", "novalue"]) == 2
    assert "--set novalue: expected key=value" in capsys.readouterr().err


def test_run_with_missing_data_exits_2_and_starts_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = tmp_path / "cifar.yaml"
    spec.write_text("name: c\ndataset: cifar10\nmodels: [small_cnn]\noptimizers: [sgd]\ntrain: {data_dir: nowhere}\n")
    assert cli.main(["run", str(spec)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("dataset: CIFAR10 not found or corrupted in ") and "nowhere/cifar-10-batches-py" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar.yaml"]  # no sweeps/, mlflow.db or optuna.db


def test_grid_sampler_tells_the_last_point_without_raising():
    """Optuna's stock GridSampler stops the study at its last point, which raises inside `tell`."""
    import optuna

    from sweep.search.space import sampler, suggested_distributions

    spec = validate_spec(minimal(search={"method": "grid", "space": {"lr": {"choices": [0.1, 0.2]}}}))
    study = optuna.create_study(sampler=sampler(spec, "sgd", 0), direction="maximize")
    for _ in range(2):
        trial = study.ask(suggested_distributions(spec, "sgd"))
        study.tell(trial.number, 1.0)
    assert sorted(t.params["lr"] for t in study.trials) == [0.1, 0.2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_the_spec_reference_in_docs_is_the_one_the_models_generate():
    from sweep.spec import reference

    assert (ROOT / "docs" / "spec.md").read_text(encoding="utf-8") == reference.render(), (
        "regenerate it: python -m sweep.spec.reference > docs/spec.md"
    )


def test_sweep_schema_prints_a_json_schema_every_shipped_spec_meets(capsys):
    import json

    import jsonschema

    from sweep.spec.safe_yaml import parse

    assert cli.main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"name", "dataset", "models", "optimizers", "train", "search", "seeds", "resources"} <= set(schema["properties"])
    validator = jsonschema.Draft202012Validator(schema)
    for path in SPECS:
        assert [error.message for error in validator.iter_errors(parse(path.read_text()))] == [], path.name
    # what an editor then flags: an unknown key, a model not in the registry, a train field misspelt, a GPU share of 2
    bad = {**parse(SPECS[0].read_text()), "colour": 1, "models": ["resnet19"], "train": {"epoch": 3}, "resources": {"gpu": 2}}
    flagged = {tuple(error.absolute_path) for error in validator.iter_errors(bad)}
    assert {(), ("models", 0), ("train",), ("resources", "gpu")} <= flagged, flagged
