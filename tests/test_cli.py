"""The `sweep` console script as a user runs it."""

import subprocess
import sys


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "sweep.cli", *args], capture_output=True, text=True, timeout=120)


def test_list_optimizers_names_every_rule():
    result = run_cli("list", "optimizers")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["sgd", "ugd", "sam", "asam", "sam_gns"]


def test_unknown_listing_exits_2_naming_it():
    result = run_cli("list", "widgets")
    assert result.returncode == 2
    assert "widgets" in result.stderr
