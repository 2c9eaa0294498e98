"""Shared fixtures: small data sets written in CIFAR's own on-disk format; one PyTorch thread per
pytest-xdist worker. The rest of the helpers are in tests/helpers/."""

import os

# pytest-xdist runs one worker per core. PyTorch's default, one thread per core in every process,
# would put two threads on each core, and its thread pool then spins: the trainer tests ran
# several times slower. Set before torch is imported, so subprocesses inherit it too.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

import pytest
import torchvision

from helpers.ray_env import RAY_SETTINGS_ENV
from trainers.data.cifar_format import write_cifar

# The Rays the tests' fixtures start get the service's own Ray settings (no prestarted workers,
# which no Tune trial can use: docs/platform.md, "Ray Tune"); subprocesses inherit them.
for _name, _value in RAY_SETTINGS_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """A data folder holding tiny cifar10 and cifar100 sets. torchvision checks the md5 of every
    file against the real archive's; these files are not the real ones, so that check is off."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    written = {kind: write_cifar(tmp_path, kind) for kind in ("cifar10", "cifar100")}
    return tmp_path, written
