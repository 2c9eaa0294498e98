"""Data sets through their real loaders, and the tensor-resident batching."""

import subprocess
import sys

import pytest
import torch

from trainers.data import Batches, Split, hold_out, load_dataset
from trainers.errors import DataNotFoundError


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_cifar_on_disk_round_trip(cifar_root, kind):
    root, written = cifar_root
    data = load_dataset(kind, root)
    assert data.num_classes == (10 if kind == "cifar10" else 100)
    w = written[kind]
    want_train = torch.from_numpy(w["train_rows"].reshape(-1, 3, 32, 32))
    assert torch.equal(data.train.images, want_train)  # N, C, H, W with CIFAR's plane order
    assert data.train.labels.tolist() == w["train_labels"]
    assert torch.equal(data.test.images, torch.from_numpy(w["test_rows"].reshape(-1, 3, 32, 32)))
    assert data.test.labels.tolist() == w["test_labels"]


def test_missing_cifar_names_the_folder(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in str(err.value)


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="cifar10, cifar100, digits, synthetic"):
        load_dataset("mnist", tmp_path)


def test_digits_are_the_real_scikit_learn_digits(tmp_path):
    from sklearn.datasets import load_digits

    data = load_dataset("digits", tmp_path)
    assert len(data.train) + len(data.test) == 1797
    assert data.train.images.shape[1:] == (1, 8, 8) and data.train.images.dtype == torch.uint8
    # every image is one of scikit-learn's, with its label
    ref = {tuple(img.flatten().tolist()): int(t) for img, t in zip(load_digits().images, load_digits().target)}
    for img, label in zip(data.test.images[:20], data.test.labels[:20]):
        key = tuple((img.float() * 16 / 255).round().flatten().tolist())
        assert ref[key] == int(label)


def test_digits_read_without_scikit_learn_equal_load_digits_exactly(tmp_path):
    """The loader reads scikit-learn's CSV itself; the data set is the one built from
    `load_digits()` as before, bit for bit, and a fresh process never imports sklearn."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    test, train = order[:359], order[359:]
    data = load_dataset("digits", tmp_path)
    assert torch.equal(data.train.images, images[train]) and torch.equal(data.train.labels, labels[train])
    assert torch.equal(data.test.images, images[test]) and torch.equal(data.test.labels, labels[test])
    scaled = images.float() / 255
    assert (data.mean, data.std) == ((scaled.mean().item(),), (scaled.std().item(),))
    data.train.images.zero_()  # a run that alters its tensors leaves the next run's data alone
    assert torch.equal(load_dataset("digits", tmp_path).train.images, images[train])
    probe = "import sys; from trainers.data import load_dataset; load_dataset('digits', 'data'); print('sklearn' in sys.modules)"
    fresh = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 0 and fresh.stdout.strip() == "False", fresh.stderr


def test_validation_split_is_the_same_for_every_run_seed():
    split = Split(torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1), torch.arange(100))
    train_a, val_a = hold_out(split, 0.2)
    train_b, val_b = hold_out(split, 0.2)
    assert torch.equal(val_a.labels, val_b.labels) and len(val_a) == 20 and len(train_a) == 80
    assert set(val_a.labels.tolist()).isdisjoint(train_a.labels.tolist())
    assert hold_out(split, 0.0)[1] is None


def _batches(split, **kw):
    return Batches(split, 8, mean=(0.0,), std=(1.0 / 255,), out_size=split.images.shape[-1], **kw)


def test_batches_cover_each_image_once_per_epoch_in_shuffled_order():
    split = Split(torch.zeros(50, 3, 4, 4, dtype=torch.uint8), torch.arange(50))
    batches = _batches(split, shuffle=True, generator=torch.Generator().manual_seed(0))
    epoch1 = torch.cat([y for _, y in batches])
    epoch2 = torch.cat([y for _, y in batches])
    assert sorted(epoch1.tolist()) == list(range(50)) and len(batches) == 7
    assert epoch1.tolist() != epoch2.tolist() and epoch1.tolist() != list(range(50))


def test_augmentation_is_a_padded_crop_optionally_flipped():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    split = Split(images, torch.arange(64))
    flips = 0
    for x, y in _batches(split, augment=True, generator=gen):
        for out, idx in zip(x, y):
            padded = torch.nn.functional.pad(images[idx].float(), (4, 4, 4, 4))
            crops = [padded[:, i : i + 32, j : j + 32] for i in range(9) for j in range(9)]
            straight = any(torch.equal(out, c) for c in crops)
            flipped = any(torch.equal(out, c.flip(-1)) for c in crops)
            assert straight or flipped
            flips += flipped and not straight
    assert 10 < flips < 54  # about half the images flipped


def test_batches_normalise_expand_grey_and_resize():
    split = Split(torch.full((4, 1, 8, 8), 255, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64))
    x, _ = next(iter(Batches(split, 4, mean=(0.5,), std=(0.25,), out_size=32)))
    assert x.shape == (4, 3, 32, 32)
    torch.testing.assert_close(x, torch.full_like(x, 2.0))  # (1 - 0.5) / 0.25
    own, _ = next(iter(Batches(split, 4, mean=(0.5,), std=(0.25,), out_size=None)))  # a model of any size
    assert own.shape == (4, 3, 8, 8)
    torch.testing.assert_close(own, torch.full_like(own, 2.0))


def test_synthetic_has_the_requested_shape(tmp_path):
    data = load_dataset("synthetic", tmp_path, images=12, image_size=16, channels=3, num_classes=5)
    assert data.train.images.shape == (12, 3, 16, 16) and int(data.train.labels.max()) < 5
