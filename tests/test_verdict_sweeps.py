"""Sweeps whose verdicts decide what runs, on a real local Ray, MLflow (SQLite) and Optuna:
adaptive confirmation seeds that stop once every comparison is decided (and run to max on a
tie), and the paper's protocol without a validation split (val_fraction 0)."""

import json

import pytest
import ray
from mlflow.tracking import MlflowClient

from helpers.fake_sweep import ray_sweep_spec
from sweep.compare.seeds import sample
from sweep.compare.stats import compare_all
from sweep.report.write import write_report
from sweep.tuning.driver import run_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def spec_of(tmp_path, name, **overrides):
    fields = {
        "train": {"epochs": 1, "batch_size": 128, "model_options": {"width": 4}},
        "search": {"method": "grid", "space": {"lr": 0.3}},
    }
    return ray_sweep_spec(tmp_path, name, **{**fields, **overrides})


def confirmations(spec) -> dict[str, dict[int, float]]:
    """Per rule, seed -> final test_acc of its confirmation runs, as MLflow holds them."""
    client = MlflowClient(spec.tracking.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(spec.name).experiment_id])
    found: dict[str, dict[int, float]] = {}
    for run in runs:
        if run.data.tags.get("sweep.phase") == "confirm":
            assert run.data.tags["sweep.outcome"] == "finished"
            found.setdefault(run.data.params["optimizer"], {})[int(run.data.params["seed"])] = run.data.metrics["test_acc"]
    return found


def verdict_at(spec, values, n):
    """The comparison on each arm's first n confirmation seeds, at the sweep's per-look alpha."""
    seeds = spec.confirmation_seeds()[:n]
    item = ("small_cnn", "sgd", "sam_gns", *(sample({s: values[rule][s] for s in seeds}) for rule in ("sam_gns", "sgd")))
    return compare_all([item], spec.report.margin, spec.looks)[0].verdict


def test_adaptive_seeds_stop_once_every_comparison_is_decided(tmp_path):
    # sgd at a learning rate too small to learn in one epoch, sam_gns at a good one: decided quickly
    spec = spec_of(
        tmp_path,
        "adaptive",
        train={"epochs": 3, "batch_size": 32, "model_options": {"width": 8}},
        search={"method": "grid", "space": {"lr": 0.5}, "overrides": {"sgd": {"lr": 0.0005}}},
        confirm_seeds={"min": 2, "max": 6},
    )
    outcome = run_sweep(spec)
    assert not outcome.interrupted and outcome.failed == 0
    values = confirmations(spec)
    n = len(values["sam_gns"])
    assert len(values["sgd"]) == n and 2 <= n < 6  # one seed at a time, both arms, stopped before max
    assert sorted(values["sgd"]) == spec.confirmation_seeds()[:n]
    assert verdict_at(spec, values, n) == "better"  # decided at the last look ...
    assert all(verdict_at(spec, values, k) == "undecided" for k in range(2, n))  # ... and not before it
    report = write_report(spec.tracking.mlflow_uri, spec.name, tmp_path / "report")
    (comparison,) = report.comparisons
    assert (comparison.verdict, comparison.test, comparison.n) == ("better", "paired", n)
    assert "alpha is split evenly over the looks" in report.procedure and "5 looks" in report.procedure


def test_adaptive_seeds_run_to_max_when_the_rules_tie(tmp_path):
    # SAM-GNS with rho 0 climbs nowhere: its step is UGD's, bit for bit, so no seed can decide
    spec = spec_of(
        tmp_path,
        "tied",
        optimizers=["ugd", "sam_gns"],
        search={"method": "grid", "space": {"lr": 0.3, "rho": 0.0}},
        confirm_seeds={"min": 2, "max": 4},
        report={"margin": 0.01},
    )
    outcome = run_sweep(spec)
    assert not outcome.interrupted and outcome.failed == 0
    values = confirmations(spec)
    assert sorted(values["ugd"]) == sorted(values["sam_gns"]) == spec.confirmation_seeds()  # all four seeds
    assert values["ugd"] == values["sam_gns"]
    report = write_report(spec.tracking.mlflow_uri, spec.name, tmp_path / "report")
    (comparison,) = report.comparisons
    assert comparison.verdict == "undecided" and comparison.n == 4


def test_the_papers_protocol_without_a_validation_split(tmp_path):
    spec = spec_of(
        tmp_path, "no_val", train={"epochs": 2, "batch_size": 128, "val_fraction": 0, "model_options": {"width": 4}}, seeds=[0, 1]
    )
    outcome = run_sweep(spec)
    assert not outcome.interrupted and outcome.failed == 0
    assert all(best["val_acc"] is None and best["n"] == 2 for best in outcome.best.values())
    client = MlflowClient(spec.tracking.mlflow_uri)
    children = [
        r for r in client.search_runs([client.get_experiment_by_name("no_val").experiment_id]) if "sweep.arm" in r.data.tags
    ]
    assert len(children) == 4 and all(r.data.tags["sweep.outcome"] == "finished" for r in children)
    assert all("val_acc" not in r.data.metrics and "test_acc" in r.data.metrics for r in children)
    report = write_report(spec.tracking.mlflow_uri, "no_val", tmp_path / "report")
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["chosen_on"] is None and saved["regime"]["val_images"] == 0
    (comparison,) = saved["comparisons"]
    assert comparison["test"] == "paired" and comparison["n"] == 2  # the grid's runs, matched by seed
    text = (tmp_path / "report" / "report.md").read_text()
    assert "No setting was chosen: without a validation split" in text and "0 validation" in text
    assert report.cells[("small_cnn", "sgd")].source == "search"
