"""Figure 6: what the status line costs the driver, and what `sweep status` costs its user.

A synthetic journal of a long sweep (trials x epochs epoch events, each line as the Tune callback
writes it: the trial's config with its TrainConfig, the result with Tune's fields) in a temporary
folder. The driver's live thread, every `--status-every` seconds, reads the lines the journal
gained since its last tick, writes the state file and prints the lines: its cost over the interval
is the overhead on the driver (goal: under 1%). `sweep status` reads the whole journal once.

    python -m benchmarks.status_cost [--trials 96] [--epochs 150] [--every 30] [--new 12]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

from sweep.tracking.journal_files import JOURNAL
from sweep.tracking.status import Board, status_lines, write_state

from ._timing import alternate, machine, table

ARMS = ["resnet18/sgd", "resnet18/sam", "resnet18/asam", "resnet18/sam_gns"]


def line(seq: int, trial: int, epoch: int, epochs: int) -> str:
    arm = ARMS[trial % len(ARMS)]
    train = {"optimizer": arm.split("/")[1], "model": "resnet18", "dataset": "cifar10", "lr": 0.05, "rho": 0.05, "seed": 0}
    train.update({f"field_{i}": i for i in range(40)})  # a TrainConfig has about fifty fields
    config = {"arm": arm, "phase": "search", "study_trial": trial, "checkpoint_every": 1, "train": train}
    result = {"epoch": epoch, "val_acc": 50 + epoch * 0.3, "test_acc": 49.0, "timestamp": 1_000_000 + seq, "epochs": epochs}
    result.update({key: 1.0 for key in ("train_loss", "val_loss", "test_loss", "lr", "epoch_time_s", "time_total_s")})
    event = {"seq": seq, "kind": "epoch", "trial": f"t{trial:05d}", "config": config, "result": result}
    return json.dumps(event, separators=(",", ":")) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--every", type=float, default=30.0, help="the status interval, seconds")
    parser.add_argument("--new", type=int, default=12, help="epoch events the journal gains per interval")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    budgets = dict.fromkeys(ARMS, args.trials // len(ARMS))
    epochs = dict.fromkeys(ARMS, args.epochs)
    lines = [line(t * args.epochs + e, t, e + 1, args.epochs) for t in range(args.trials) for e in range(args.epochs)]
    (folder / JOURNAL).write_text("".join(lines))
    size = (folder / JOURNAL).stat().st_size
    live = Board(budgets, epochs).read(folder)
    tail = lines[-args.new :]

    def tick() -> None:  # as sweep/tuning/live.py's, on a journal that gained --new lines
        with open(folder / JOURNAL, "a") as out:
            out.writelines(tail)
        live.read(folder)
        write_state(folder, {"state": "running", "arms": {}, "updated": time.time()})
        print("\n".join(status_lines("bench", live, None)), file=io.StringIO())

    def status() -> None:  # `sweep status`: the whole journal
        Board(budgets, epochs).read(folder)

    timings = alternate({"tick": tick, "status": status}, rounds=5, calls=3, warmup=1)
    print(f"{machine()}; journal of {len(lines):,} epoch events, {size / 2**20:.1f} MiB")
    rows = [
        ["live tick", f"{timings['tick'] * 1000:.2f} ms", f"{timings['tick'] / args.every:.4%} of {args.every:g} s"],
        ["sweep status", f"{timings['status'] * 1000:.0f} ms", "once, when asked"],
    ]
    print(table(["", "time", "cost"], rows))


if __name__ == "__main__":
    main()
