"""The README's main command, exactly as a new user runs it, in a fresh folder."""

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow
QUICKSTART = Path(__file__).parent.parent / "search_spaces" / "quickstart.yaml"


def test_quickstart_sweep_runs_offline_and_fills_mlflow(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sweep.cli", "run", str(QUICKSTART)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    best = [line for line in result.stdout.splitlines() if line.startswith("best ")]
    assert len(best) == 5  # one line per update rule
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    runs = [run for run in runs if run.data.tags.get("sweep.role") != "node"]  # this machine's system metrics
    assert len(runs) == 1 + 5 * (6 + 3)  # parent; per rule 6 search trials and 3 confirmation seeds
    assert (tmp_path / "optuna.db").exists() and (tmp_path / "sweeps" / "quickstart" / "sweep_spec.yaml").exists()
    # the tuned small network learns digits under every rule
    assert all(float(line.split("val_acc ")[1].split("%")[0]) > 80 for line in best), best
    assert "95% CI" in result.stdout  # three seeds a side: SAM-GNS's differences get intervals
    assert (tmp_path / "reports" / "quickstart" / "test_acc_curves.png").exists()
    # the terminal holds the sweep's own lines: not MLflow's system-metrics monitor, its progress
    # bar for the spec the report reads back, its creation of the new SQLite store's tables, nor
    # Ray's warning that the local Ray it starts uses token authentication
    noise = ("system_metrics_monitor", "Downloading artifacts", "Creating initial MLflow database tables", "Token authentication")
    assert not [line for line in noise if line in result.stderr], result.stderr
