"""Shared fixtures: small data sets written in CIFAR's own on-disk format."""

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
