"""How long `sweep --help` and other commands take to answer, and their peak memory, beside a
bare `python -c pass`: each run in a fresh interpreter, contenders alternated, median of N.

    python -m benchmarks.cli_start [--repeats 5] [--against OTHER_CHECKOUT] [--quick]

`--against` runs the same commands in another checkout too (`python -m` imports the `sweep`
package of the folder it starts in), alternated with this one's: before and after in one run.
`--quick` runs each command once (a check that the benchmark runs, not a measurement).
`sweep status` and `sweep list sweeps` read a saved sweep (its spec, no journal yet) that the
benchmark writes into a temporary checkpoint folder first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]  # whose `sweep` package `python -m` imports
SWEEP = [sys.executable, "-m", "sweep.cli"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "sweep --help": [*SWEEP, "--help"],
    "sweep run --help": [*SWEEP, "run", "--help"],
    "sweep train --help": [*SWEEP, "train", "--help"],
    "sweep validate search_spaces/quickstart.yaml": [*SWEEP, "validate", "search_spaces/quickstart.yaml"],
    "sweep list models": [*SWEEP, "list", "models"],
}
SAVED = "quiet"  # the saved sweep `status` and `list sweeps` read


SAVED_SPEC = f"""\
name: {SAVED}
dataset: digits
models: [small_cnn]
optimizers: [sgd, sam_gns]
search: {{method: optuna, trials_per_arm: 4, space: {{lr: {{low: 0.01, high: 0.5, log: true}}}}}}
"""


def saved_sweep(storage: Path) -> dict[str, list[str]]:
    """Write a saved sweep into checkpoint folder `storage` (as `sweep run` saves its spec, in a
    subprocess: whatever this process imports would count in each command's peak memory, which a
    forked child starts from); the commands that read it."""
    (storage / SAVED).mkdir(parents=True)
    write = (
        "import sys; from sweep.spec import dump_spec, load_spec; open(sys.argv[2], 'w').write(dump_spec(load_spec(sys.argv[1])))"
    )
    source = storage / "spec.yaml"
    source.write_text(SAVED_SPEC)
    subprocess.run([sys.executable, "-c", write, str(source), str(storage / SAVED / "sweep_spec.yaml")], check=True, cwd=CHECKOUT)
    where = ["--storage", str(storage)]
    return {f"sweep status {SAVED}": [*SWEEP, "status", SAVED, *where], "sweep list sweeps": [*SWEEP, "list", "sweeps", *where]}


def once(command: list[str], cwd: str | None) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one run of `command` in `cwd`."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}")
    return wall, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--against", help="another checkout whose commands run alternated with these")
    parser.add_argument("--quick", action="store_true", help="each command once")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    folders = {"": str(CHECKOUT)} if args.against is None else {"": str(CHECKOUT), f" ({args.against})": args.against}
    commands = {**COMMANDS, **saved_sweep(Path(tempfile.mkdtemp()) / "sweeps")}
    runs: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeats):
        for name, command in commands.items():  # alternated: drift on the machine hits all alike
            for label, cwd in folders.items():
                if label and name == "python -c pass":
                    continue
                runs.setdefault(name + label, []).append(once(command, cwd))
    base = statistics.median(wall for wall, _ in runs["python -c pass"])
    print(f"| command | median wall s | x python -c pass | peak MiB |  (median of {args.repeats})")
    print("|---|---|---|---|")
    for name, seen in runs.items():
        wall = statistics.median(w for w, _ in seen)
        print(f"| {name} | {wall:.2f} | {wall / base:.1f} | {statistics.median(m for _, m in seen):.0f} |")


if __name__ == "__main__":
    main()
