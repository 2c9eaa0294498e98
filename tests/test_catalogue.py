"""The catalogue (trainers/catalogue/) and the registries agree, and what reads only the catalogue
imports no torch: a saved sweep's status, the listings and the report start in a fraction of a
second instead of after PyTorch's import."""

import subprocess
import sys
from pathlib import Path

import pytest

from trainers.catalogue import get_dataset_info, list_datasets, list_models, list_optimizers
from trainers.data import load_dataset, register_dataset
from trainers.data import registry as data_registry
from trainers.models import create_model, register_model
from trainers.models import registry as model_registry
from trainers.optim import create_optimizer
from trainers.optim import registry as optim_registry

ROOT = Path(__file__).resolve().parent.parent


def test_every_entry_has_its_factory_and_nothing_else_has_one():
    assert sorted(model_registry._FACTORIES) == list_models()
    assert list(optim_registry._CLASSES) == list_optimizers()
    assert sorted(data_registry._LOADERS) == sorted(list_datasets())


def test_a_factory_is_bound_only_to_a_known_name_with_the_options_of_its_entry(monkeypatch):
    monkeypatch.setattr(model_registry, "_FACTORIES", {})
    with pytest.raises(ValueError, match="unknown model 'tiny_mlp'"):
        register_model("tiny_mlp")
    with pytest.raises(
        ValueError, match=r"model 'small_cnn': its factory takes options \('depth',\), its catalogue entry \('width',\)"
    ):
        register_model("small_cnn")(lambda num_classes, depth=3: None)
    register_model("small_cnn")(lambda num_classes, width=16: ("built", num_classes, width))
    assert create_model("small_cnn", 10, width=4) == ("built", 10, 4)


def test_a_loader_whose_options_differ_from_its_shape_is_refused(monkeypatch):
    monkeypatch.setattr(data_registry, "_LOADERS", {})
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        register_dataset("svhn")
    with pytest.raises(ValueError, match="data set 'digits': the loader's options differ"):
        register_dataset("digits")(lambda data_dir, download=False, test_fraction=0.25: None)  # another default
    with pytest.raises(ValueError, match="data set 'cifar10': the loader's options differ"):
        register_dataset("cifar10")(lambda data_dir, download=False, subset=1.0: None)  # an option a fixed shape ignores


def test_the_shape_known_without_loading_follows_the_options_as_the_loader_does(tmp_path):
    for fraction in (0.1, 0.5):
        data, shape = (
            load_dataset("digits", tmp_path, test_fraction=fraction),
            get_dataset_info("digits").shape_for(test_fraction=fraction),
        )
        assert (len(data.train), len(data.train) + len(data.test)) == (shape.train_images, shape.images)


def test_an_unknown_rule_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown update rule 'adam'; known: sgd, ugd, sam, asam, sam_gns"):
        create_optimizer("adam", [], lr=0.1)


def test_a_saved_spec_is_read_and_used_without_importing_torch(tmp_path):
    """What `sweep status`, `sweep list` and the report do with a sweep's saved spec: read it, walk
    its arms, make each trial's config and its data set's shape. None of it may import torch."""
    from helpers.fake_sweep import make_spec
    from sweep.spec import dump_spec

    path = tmp_path / "sweep_spec.yaml"
    path.write_text(dump_spec(make_spec(tmp_path, name="quiet")))
    probe = (
        "import sys\n"
        "import sweep.cli.listing, sweep.report.render, sweep.tracking.status\n"
        "from sweep.spec import read_saved_spec\n"
        f"spec = read_saved_spec({str(path)!r})\n"
        "shapes = [spec.train_config(arm.model, arm.rule, spec.seeds[0], {}).data_shape() for arm in spec.arms()]\n"
        "print(len(shapes), 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    arms, torch_loaded = done.stdout.split()
    assert int(arms) >= 2 and torch_loaded == "False"
