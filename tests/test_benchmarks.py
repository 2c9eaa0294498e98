"""benchmarks/gpu.py must run on a bare GPU machine (PyTorch only) and be ready before one is
lent: its CPU quick mode runs the same code path. No timing is asserted (benchmarks are not tests)."""

import subprocess
import sys

import pytest


def test_gpu_benchmark_imports_pytorch_and_trainers_only():
    check = (
        "import sys, benchmarks.gpu; "
        "print(sorted(m for m in ('ray', 'mlflow', 'optuna', 'pydantic', 'torchvision', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_gpu_benchmark_runs_end_to_end_in_cpu_quick_mode():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--device", "cpu", "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for header in ("bf16 speed-up", "loop/ours", "aggregate img/s"):
        assert header in result.stdout
    packing_rows = result.stdout.split("peak MiB per trial")[1].splitlines()[2:5]
    assert [row.split()[0] for row in packing_rows] == ["1", "2", "4"]


@pytest.mark.slow
def test_cli_start_benchmark_runs_each_command_in_quick_mode():
    from benchmarks.cli_start import COMMANDS, SAVED

    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli_start", "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines()[2:]]
    assert [row[0].strip() for row in rows] == [*COMMANDS, f"sweep status {SAVED}", "sweep list sweeps"]
    assert all(float(wall) > 0 and float(mib) > 0 for _, wall, _, mib in rows)


@pytest.mark.slow
def test_scale_tracking_benchmark_reports_each_store_and_applier_in_quick_mode():
    # SQLite and an `mlflow server` on PostgreSQL (127.0.0.1:5432), the journal as it is and as it was
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_tracking", "--quick"], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("store"))
    rows = [line.split() for line in lines[header + 2 :]]
    assert [(row[0], row[-6]) for row in rows] == [
        ("sqlite", "event/request"),
        ("sqlite", "batched"),
        ("sqlite", "batched"),
        ("postgresql", "event/request"),
        ("postgresql", "batched"),
    ]
    for row in rows:  # capacity, end-to-end rate, max lag, lag at the end: numbers, rates above 0
        capacity, rate, worst, left = map(float, row[-4:])
        assert capacity > 0 and rate > 0 and worst >= 0 and left >= 0


@pytest.mark.slow
def test_scale_search_benchmark_prints_latency_by_study_size_and_memory_in_quick_mode():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_search", "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    latency, memory = result.stdout.split("driver memory")
    rows = [line.split() for line in latency.splitlines() if line.startswith("sqlite")]
    assert [int(row[1]) for row in rows] == [20, 100]
    assert all(float(cell) > 0 for row in rows for cell in row[2:])
    held = [line.split() for line in memory.splitlines()[3:]]
    assert [int(row[0]) for row in held] == [10, 20] and all(float(row[1]) >= 0 for row in held)


@pytest.mark.slow
def test_scale_report_benchmark_times_the_report_command_in_quick_mode():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_report", "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[-1].split()
    assert row[:2] == ["20", "10"] and float(row[2]) > 0


@pytest.mark.slow
def test_scale_sweep_benchmark_runs_service_and_plain_tune_side_by_side_in_quick_mode():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_sweep", "--quick"], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    table = [line.split() for line in lines if len(line.split()) == 6]
    rows = {row[0]: row for row in table if row[0] in ("service", "plain")}
    assert set(rows) == {"service", "plain"}
    for name, (_, trials, wall, training, fraction, per_trial) in rows.items():
        assert int(trials) == 4, name  # every trial of each sweep ran and wrote its results
        assert float(wall) > 0 and float(training) > 0 and float(per_trial) > 0
        assert 0 < float(fraction.rstrip("%")) <= 100
    ratio = [line for line in lines if line.startswith("plain Ray Tune wall / service wall:")]
    assert len(ratio) == 1 and float(ratio[0].split(":")[1].strip().rstrip("x")) > 0


@pytest.mark.slow
def test_scale_benchmark_runs_the_simulated_cluster_on_both_stores_in_quick_mode():
    # benchmarks/scale.py's cluster part: the real driver, searcher, journal and MLflow, trials that wait
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--quick", "--part", "cluster"], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("sqlite ", "postgresql "))]
    assert [row[0] for row in rows] == ["sqlite", "postgresql"]
    for row in rows:  # every epoch of 4 arms x 2 trials x 2 epochs was reported, and each figure was measured
        assert int(row[2]) == 16
        assert float(row[4]) > 0 and float(row[5]) > 0 and float(row[7]) >= 0 and float(row[12]) > 0
