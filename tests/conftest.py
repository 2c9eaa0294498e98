"""Shared fixtures: small data sets written in CIFAR's own on-disk format; one PyTorch thread per
pytest-xdist worker. The rest of the helpers are in tests/helpers/."""

import os

# pytest-xdist runs one worker per core. PyTorch's default, one thread per core in every process,
# would put two threads on each core, and its thread pool then spins: the trainer tests ran
# several times slower. Set before torch is imported, so subprocesses inherit it too.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

# Workers Ray prestarts for a driver can never host a Tune trial (docs/platform.md, "Ray Tune");
# the sweep's own local Ray turns them off, and so do the Rays the tests' fixtures start.
os.environ.setdefault("RAY_prestart_worker_first_driver", "0")

import pytest
import torchvision

from trainers.data.cifar_format import write_cifar


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """A data folder holding tiny cifar10 and cifar100 sets. torchvision checks the md5 of every
    file against the real archive's; these files are not the real ones, so that check is off."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    written = {kind: write_cifar(tmp_path, kind) for kind in ("cifar10", "cifar100")}
    return tmp_path, written
