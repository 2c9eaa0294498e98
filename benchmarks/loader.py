"""Figure 3: the tensor-resident loader against torchvision's DataLoader with per-sample
transforms, on the same CIFAR-format files, with and without augmentation. Goal >= 10x.

    python -m benchmarks.loader [--images 10000] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torchvision import transforms as T

from trainers.data import Batches, load_dataset
from trainers.data.cifar_format import write_cifar

from ._timing import machine, table

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def epoch_rate(batches) -> float:
    """Images per second over one pass."""
    start, seen = time.perf_counter(), 0
    for x, _ in batches:
        seen += len(x)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000, help="training images written")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torchvision.datasets.cifar.check_integrity = lambda *a, **k: True  # the files are not the real archive
    root = Path(tempfile.mkdtemp())
    write_cifar(root, "cifar10", per_batch=args.images // 5, test=10)
    print(f"# loader, {args.images} CIFAR-format images, batch 100, {machine()}")
    data = load_dataset("cifar10", root)
    rows = []
    for augment in (False, True):
        steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
        dataset = torchvision.datasets.CIFAR10(
            str(root), train=True, transform=T.Compose([*steps, T.ToTensor(), T.Normalize(MEAN, STD)])
        )
        baseline = torch.utils.data.DataLoader(dataset, batch_size=100, shuffle=True, num_workers=0)
        ours = Batches(
            data.train,
            100,
            mean=MEAN,
            std=STD,
            out_size=32,
            shuffle=True,
            augment=augment,
            generator=torch.Generator().manual_seed(0),
        )
        rates = {"dataloader": [], "ours": []}
        for _ in range(3):  # alternate, keep the medians
            rates["dataloader"].append(epoch_rate(baseline))
            rates["ours"].append(epoch_rate(ours))
        base, fast = sorted(rates["dataloader"])[1], sorted(rates["ours"])[1]
        rows.append(["augment" if augment else "plain", base, fast, fast / base])
    print(table(["data", "DataLoader img/s", "ours img/s", "speed-up"], rows))


if __name__ == "__main__":
    main()
