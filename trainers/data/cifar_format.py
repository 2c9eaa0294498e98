"""Write a data set in CIFAR's own on-disk format (torchvision's python-pickle batches).

For offline tests, benchmarks and smoke runs: the real torchvision loader reads what this writes.
torchvision also checks every file's md5 against the real archive's, which these files fail; a
caller that loads them patches `torchvision.datasets.cifar.check_integrity`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_cifar(root: Path, kind: str, per_batch: int = 20, test: int = 30, seed: int = 0) -> dict:
    """Write a tiny `cifar10` or `cifar100` in the python-pickle format torchvision reads
    (`str` keys, rows of 3072 bytes, R then G then B planes). Returns what was written."""
    rng = np.random.default_rng(seed)
    classes = 10 if kind == "cifar10" else 100
    label_key = "labels" if kind == "cifar10" else "fine_labels"
    folder = root / ("cifar-10-batches-py" if kind == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    files = [f"data_batch_{i}" for i in range(1, 6)] if kind == "cifar10" else ["train"]
    n_train = per_batch * (5 if kind == "cifar10" else 1)
    written = {
        "train_rows": rng.integers(0, 256, (n_train, 3072), dtype=np.uint8),
        "train_labels": rng.integers(0, classes, n_train).tolist(),
        "test_rows": rng.integers(0, 256, (test, 3072), dtype=np.uint8),
        "test_labels": rng.integers(0, classes, test).tolist(),
    }
    size = len(written["train_rows"]) // len(files)
    for i, name in enumerate(files):
        rows = slice(i * size, (i + 1) * size)
        batch = {"data": written["train_rows"][rows], label_key: written["train_labels"][rows]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / ("test_batch" if kind == "cifar10" else "test")).write_bytes(
        pickle.dumps({"data": written["test_rows"], label_key: written["test_labels"]})
    )
    meta_name, names_key = ("batches.meta", "label_names") if kind == "cifar10" else ("meta", "fine_label_names")
    (folder / meta_name).write_bytes(pickle.dumps({names_key: [f"class{c}" for c in range(classes)]}))
    return written
