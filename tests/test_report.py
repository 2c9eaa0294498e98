"""`sweep report` from MLflow alone: numbers recomputed independently, files, and edge cases.

The sweeps here are written through the real tracking code into a real SQLite MLflow store,
without Ray (the report needs none); `tests/test_sweep.py` reports on a sweep Ray really ran.
"""

import csv
import json
import statistics
import tempfile
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from scipy import stats

from helpers.fake_sweep import log_trial, make_spec
from sweep import cli
from sweep.errors import UserError
from sweep.report.data import build_report
from sweep.report.figures import FigureError, FigureProcess
from sweep.report.render import render
from sweep.report.write import FILES, write_report
from sweep.tracking.runs import SweepTracker
from trainers.build import load_data
from trainers.config import TrainConfig
from trainers.data import hold_out


@pytest.fixture
def finished(tmp_path):
    """Two search trials per rule, then three confirmation seeds for sgd and sam_gns; sam's
    confirmation never ran (a sweep cut short): its cell must not fall back to its search run."""
    spec = make_spec(tmp_path, confirm_seeds=3)
    tracker = SweepTracker(spec)
    log_trial(tracker, "s1", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "s2", "sgd", 0.3, 0, 92.0, [81, 89, 90])  # best sgd setting: lr 0.3
    log_trial(tracker, "s3", "sam", 0.1, 0, 93.0, [82, 92, 91])  # best sam; its best epoch is 2
    log_trial(tracker, "s4", "sam", 0.2, 0, 91.0, [79, 84, 95])  # higher test, lower val: not chosen
    log_trial(tracker, "s5", "sam_gns", 0.5, 0, 94.0, [83, 90, 92])
    log_trial(tracker, "s6", "sam_gns", 1.0, 0, 50.0, [10, 10, 10], outcome="diverged")
    for i, (sgd, gns) in enumerate([(89.0, 93.0), (90.5, 93.5), (88.5, 92.0)]):
        log_trial(tracker, f"c{i}", "sgd", 0.3, 1 + i, 91.0, [80, 85, sgd], phase="confirm")
        log_trial(tracker, f"g{i}", "sam_gns", 0.5, 1 + i, 93.0, [80, 85, gns], phase="confirm")
    tracker.finish({})
    return spec


def mlflow_runs(spec):
    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    return [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]


def recomputed(spec):
    """The cells straight from MLflow: best search setting on final val_acc, confirmation runs."""
    runs = mlflow_runs(spec)
    cells = {}
    for rule in spec.optimizers:
        search = [
            r
            for r in runs
            if r.data.tags["sweep.arm"] == f"small_cnn/{rule}"
            and r.data.tags["sweep.phase"] == "search"
            and r.data.tags["sweep.outcome"] == "finished"
        ]
        best = max(search, key=lambda r: r.data.metrics["val_acc"])
        confirm = [r for r in runs if r.data.tags["sweep.arm"] == f"small_cnn/{rule}" and r.data.tags["sweep.phase"] == "confirm"]
        values = {int(r.data.params["seed"]): r.data.metrics["test_acc"] for r in confirm}
        cells[rule] = (values, float(best.data.params["lr"]))
    return cells


def test_report_numbers_equal_those_recomputed_from_mlflow(finished, tmp_path):
    report = write_report(finished.tracking.mlflow_uri, "fake", tmp_path / "out")
    for rule, (values, lr) in recomputed(finished).items():
        cell = report.cells[("small_cnn", rule)]
        assert dict(zip(cell.seeds, cell.values())) == values and cell.setting["lr"] == lr
        assert cell.n == len(values) and (not values or cell.mean == pytest.approx(statistics.fmean(values.values())))
        assert (cell.std is None) == (len(values) < 2) and (
            cell.std is None or cell.std == pytest.approx(statistics.stdev(values.values()))
        )
    assert report.cells[("small_cnn", "sgd")].source == "confirmation"
    sam = report.cells[("small_cnn", "sam")]
    assert sam.n == 0 and sam.mean is None and sam.problem == "no confirmation run yet"  # no silent fallback
    assert report.cells[("small_cnn", "sam_gns")].diverged == 1

    vs_sgd, vs_sam = report.comparisons
    assert (vs_sgd.rule, vs_sgd.test, vs_sgd.n) == ("sgd", "paired", 3)
    assert vs_sgd.diff == pytest.approx(statistics.fmean([93.0 - 89.0, 93.5 - 90.5, 92.0 - 88.5]))
    assert vs_sgd.ci_low < vs_sgd.diff < vs_sgd.ci_high and vs_sgd.verdict == "better"
    assert (vs_sam.rule, vs_sam.test, vs_sam.verdict) == ("sam", None, "undecided")

    text = render(report, terminal=True)
    assert "89.33 ± 1.04 (n=3) <" in text  # sgd's cell marked: sam_gns is better than it
    assert "92.83 ± 0.76 (n=3)" in text and "92.83 ± 0.76 (n=3) *" not in text  # no mark on the highest mean
    assert "small_cnn: sam_gns - sgd: +3.50 points, 95% CI [" in text and "(paired t, 3 pairs): sam_gns better" in text
    assert "small_cnn: sam_gns - sam: no difference (no confirmation run yet); undecided" in text
    assert "2 comparisons, Holm-adjusted together" in text
    data = load_data(TrainConfig(dataset="digits", model="small_cnn"))  # the split sizes, counted on the loaded data
    train, val = hold_out(data.train, 0.1)
    sizes = f"{len(train):,} training, {len(val):,} validation, {len(data.test):,} test images"
    assert f"Regime: digits; {sizes}; 3 epochs; no augmentation; batch 100; cosine lr schedule." in text
    assert "1 diverged" in text and "the paper's measure" in text
    rows = list(csv.DictReader((tmp_path / "out" / "table.csv").open()))
    assert {r["optimizer"]: r["n"] for r in rows} == {"sgd": "3", "sam": "0", "sam_gns": "3"}


def test_paired_and_holm_equal_scipy_on_the_runs_in_mlflow(tmp_path):
    """Three rules confirmed on the same seeds: each difference is a paired t test (scipy's
    ttest_rel on the values read back from MLflow here), Holm-adjusted over the two comparisons."""
    spec = make_spec(tmp_path, "paired", confirm_seeds=4)
    tracker = SweepTracker(spec)
    values = {"sgd": [88.1, 90.2, 87.9, 89.4], "sam": [91.0, 91.9, 90.2, 92.8], "sam_gns": [91.5, 92.0, 90.1, 93.4]}
    for rule, accs in values.items():
        log_trial(tracker, f"s-{rule}", rule, 0.1, 0, 90.0, [80, 85, 88])
        for i, acc in enumerate(accs):
            log_trial(tracker, f"c-{rule}-{i}", rule, 0.1, 1 + i, 90.0, [80, 85, acc], phase="confirm")
    tracker.finish({})
    write_report(spec.tracking.mlflow_uri, "paired", tmp_path / "out")

    by_rule = {}
    for run in mlflow_runs(spec):
        if run.data.tags["sweep.phase"] == "confirm":
            by_rule.setdefault(run.data.params["optimizer"], {})[int(run.data.params["seed"])] = run.data.metrics["test_acc"]
    seeds = sorted(by_rule["sam_gns"])
    tests = {
        rule: stats.ttest_rel([by_rule["sam_gns"][s] for s in seeds], [by_rule[rule][s] for s in seeds])
        for rule in ("sgd", "sam")
    }
    ordered = sorted(tests, key=lambda r: tests[r].pvalue)  # Holm, by hand: m = 2
    holm = {ordered[0]: min(1.0, 2 * tests[ordered[0]].pvalue)}
    holm[ordered[1]] = max(holm[ordered[0]], min(1.0, tests[ordered[1]].pvalue))
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    for c in saved["comparisons"]:
        expected, interval = tests[c["rule"]], tests[c["rule"]].confidence_interval(0.95)
        assert c["test"] == "paired" and c["n"] == 4 and c["against"] == "sam_gns"
        assert c["p"] == pytest.approx(expected.pvalue, abs=1e-9) and c["p_holm"] == pytest.approx(holm[c["rule"]], abs=1e-9)
        assert (c["ci_low"], c["ci_high"]) == pytest.approx((interval.low, interval.high), abs=1e-9)
        assert c["diff"] == pytest.approx(
            statistics.fmean(by_rule["sam_gns"][s] - by_rule[c["rule"]][s] for s in seeds), abs=1e-9
        )
    for cell in saved["cells"]:  # values[i] is the run trained with seeds[i]
        assert dict(zip(cell["seeds"], cell["values"])) == by_rule[cell["rule"]] and cell["source"] == "confirmation"
    assert saved["regime"]["dataset"] == "digits" and saved["regime"]["epochs"] == 3 and saved["looks"] == 1


def test_welch_when_seeds_do_not_match_and_no_interval_without_spread(tmp_path):
    spec = make_spec(tmp_path, "welch", optimizers=["sgd", "sam", "sam_gns"], confirm_seeds=3)
    tracker = SweepTracker(spec)
    gns = [92.0, 93.5, 91.0]
    for rule in ("sgd", "sam", "sam_gns"):
        log_trial(tracker, f"s-{rule}", rule, 0.1, 0, 90.0, [80, 85, 88])
    for i, acc in enumerate(gns):
        log_trial(tracker, f"g{i}", "sam_gns", 0.1, 1 + i, 90.0, [80, acc], phase="confirm")
        log_trial(tracker, f"m{i}", "sam", 0.1, 1 + i, 90.0, [80, acc - 1.0], phase="confirm")  # exactly 1 below, every seed
        log_trial(tracker, f"w{i}", "sgd", 0.1, 11 + i, 90.0, [80, [88.0, 90.5, 87.0][i]], phase="confirm")  # other seeds
    tracker.finish({})
    report = build_report(spec.tracking.mlflow_uri, "welch")
    vs_sgd, vs_sam = report.comparisons
    expected = stats.ttest_ind(gns, [88.0, 90.5, 87.0], equal_var=False)
    assert vs_sgd.test == "welch" and vs_sgd.p == pytest.approx(expected.pvalue, abs=1e-9)
    assert (vs_sgd.ci_low, vs_sgd.ci_high) == pytest.approx(tuple(expected.confidence_interval(0.95)), abs=1e-9)
    assert vs_sam.test == "paired" and vs_sam.diff == pytest.approx(1.0)
    assert vs_sam.ci_low is None and vs_sam.p is None and vs_sam.verdict == "undecided"  # no zero-width interval
    assert "no spread between seeds" in render(report, terminal=False)


def test_report_files_are_valid_and_attached_to_the_parent(finished, tmp_path):
    report = write_report(finished.tracking.mlflow_uri, "fake", tmp_path / "out")
    for name in ("test_acc_curves.png", "val_acc_lr_rho.png"):
        with Image.open(tmp_path / "out" / name) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 300
    client = MlflowClient(finished.tracking.mlflow_uri)
    attached = {a.path for a in client.list_artifacts(report.parent_id, "report")}
    assert attached == {f"report/{name}" for name in FILES}
    assert "| small_cnn |" in (tmp_path / "out" / "report.md").read_text()


def test_an_arm_with_only_failed_trials_is_flagged(tmp_path):
    spec = make_spec(tmp_path, "failing")
    tracker = SweepTracker(spec)
    log_trial(tracker, "a", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "b", "sam", 0.1, 0, 10.0, [10], outcome="failed")
    log_trial(tracker, "c", "sam", 0.2, 0, 10.0, [10], outcome="failed")
    log_trial(tracker, "d", "sam_gns", 0.5, 0, 91.0, [80, 85, 89])
    tracker.finish({})
    report = build_report(spec.tracking.mlflow_uri, "failing")
    cell = report.cells[("small_cnn", "sam")]
    assert cell.mean is None and cell.failed == 2
    text = render(report, terminal=True)
    assert "small_cnn/sam: 2 search trials; no run to compute the cell from; 2 failed" in text
    assert "sam_gns - sam: no difference (no setting chosen: no search trial finished without diverging); undecided" in text
    row = next(line for line in text.splitlines() if line.startswith("small_cnn "))  # the main table's
    assert "(n=1)  failed  " in row


def test_one_seed_gives_no_interval(tmp_path):
    spec = make_spec(tmp_path, "single", optimizers=["sgd", "sam_gns"])
    tracker = SweepTracker(spec)
    log_trial(tracker, "a", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "b", "sam_gns", 0.5, 0, 91.0, [80, 85, 89])
    tracker.finish({})
    report = build_report(spec.tracking.mlflow_uri, "single")
    assert report.cells[("small_cnn", "sgd")].std is None
    assert "sam_gns - sgd: +1.00 points (too few seeds (1 pair)): undecided" in render(report, terminal=False)


def test_an_interrupted_sweep_is_reported_as_unfinished(tmp_path):
    spec = make_spec(tmp_path, "cut", optimizers=["sgd", "sam_gns"])
    tracker = SweepTracker(spec)
    log_trial(tracker, "a", "sgd", 0.1, 0, 90.0, [80, 85, 88])
    log_trial(tracker, "b", "sam_gns", 0.5, 0, 91.0, [80, 85], outcome=None)  # was running
    report = build_report(spec.tracking.mlflow_uri, "cut")
    assert not report.finished
    assert report.cells[("small_cnn", "sam_gns")].mean is None
    text = render(report, terminal=True)
    assert "has not finished" in text and "small_cnn/sam_gns: 1 search trials; no run to compute the cell from" in text


def test_report_command(finished, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "fake", "--tracking-uri", finished.tracking.mlflow_uri]) == 0
    out = capsys.readouterr().out
    assert "Sweep fake: final-epoch test accuracy" in out
    assert (tmp_path / "reports" / "fake" / "report.md").exists()
    assert cli.main(["report", "nothing", "--tracking-uri", finished.tracking.mlflow_uri]) == 2
    assert "name: no sweep 'nothing'" in capsys.readouterr().err
    assert not (tmp_path / "reports" / "nothing").exists()


def test_a_refused_report_writes_nothing_and_leaves_no_figure_process_behind(finished, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"  # where the figure process draws before its files are moved
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = {child.pid for child in psutil.Process().children()}
    # a saved spec at hand: the figure process is given each arm's studies before the store is read
    with pytest.raises(UserError, match="^name: no sweep 'nothing' in the MLflow store"):
        write_report(finished.tracking.mlflow_uri, "nothing", tmp_path / "out", finished)
    assert not (tmp_path / "out").exists()
    assert list(scratch.iterdir()) == []
    assert {child.pid for child in psutil.Process().children()} - before == set()


def test_a_failing_figure_process_raises_with_its_error():
    with FigureProcess() as figures:
        figures.report("not a report")  # type: ignore[arg-type]
        with pytest.raises(FigureError, match="AttributeError: 'str' object has no attribute"):
            figures.finish()


def test_no_password_reaches_mlflow(tmp_path):
    secret = "s3cr3t-pw"
    spec = make_spec(
        tmp_path,
        "private",
        tracking={
            "mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db",
            "optuna_storage": f"postgresql://sweeper:{secret}@127.0.0.1:5432/studies",
        },
    )
    tracker = SweepTracker(spec)
    # no study trial to link: the studies' database (not running here) is opened by the report alone
    log_trial(tracker, "a", "sgd", 0.1, 0, 90.0, [80, 85, 88], study_trial=None)
    tracker.finish({})
    report = write_report(spec.tracking.mlflow_uri, "private", tmp_path / "out")
    assert "no Optuna plots: cannot open postgresql://sweeper:***@127.0.0.1:5432/studies" in " ".join(report.notes)
    client = MlflowClient(spec.tracking.mlflow_uri)
    parent = client.get_run(report.parent_id)
    stored = client.download_artifacts(report.parent_id, "sweep_spec.yaml", str(tmp_path))
    text = Path(stored).read_text()
    assert "postgresql://sweeper:***@127.0.0.1:5432/studies" in text and secret not in text
    for run in client.search_runs([parent.info.experiment_id]):
        assert secret not in str(run.data.params) + str(run.data.tags)
    assert all(secret not in p.read_text() for p in (tmp_path / "out").glob("*.md"))


def test_a_setting_chosen_at_the_edge_of_its_range_is_flagged(tmp_path):
    spec = make_spec(tmp_path, "edge", optimizers=["sgd", "sam_gns"])  # lr searched log-uniformly in [0.01, 1]
    tracker = SweepTracker(spec)
    log_trial(tracker, "a", "sgd", 0.0105, 0, 95.0, [80, 90], study_trial=0)  # in the lowest 5% (log scale): flagged
    log_trial(tracker, "b", "sgd", 0.1, 0, 90.0, [80, 85], study_trial=1)
    log_trial(tracker, "c", "sam_gns", 0.1, 0, 91.0, [80, 85], study_trial=0)  # the middle: not flagged
    tracker.finish({})
    report = build_report(spec.tracking.mlflow_uri, "edge")
    assert report.warnings == [
        "small_cnn/sgd: lr 0.0105 lies at the lower edge of its range [0.01, 1]; the best setting may lie beyond it"
    ]
    assert "Warnings:\n- small_cnn/sgd: lr 0.0105 lies at the lower edge" in render(report, terminal=True)
