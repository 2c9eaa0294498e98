"""A simulated cluster through the real control path: many trial slots on this machine, trials
whose training is a timed wait, everything else the sweep's own.

A local Ray of SLOTS logical CPUs (one per trial, as `resources.cpus: 1`) runs a sweep of four
rules on `small_cnn`/`digits` through the sweep's driver (sweep/tuning/driver.py: `run_sweep`):
the real ArmSearcher and Optuna studies, the real trainable (sweep/tuning/trainable.py) with its
`tune.report` of every epoch and its checkpoint every 2 epochs (a torch.save of the model's and
a momentum buffer's state, as a real trial's), the real Tune callback, journal and MLflow writer.
Only `trainers.fit` is replaced, in the workers, by `simulated_fit`: each epoch waits EPOCH_S
seconds and reports the metrics a real epoch reports, with a val_acc that peaks at lr 0.1, so
TPE has something to find. The tracking store is a SQLite file, or a real `mlflow server` on a
new PostgreSQL database (127.0.0.1:5432) with the Optuna studies on a PostgreSQL database of their own (the cluster
profile, docs/architecture.md).

Printed per store: trial-epochs per second offered by the slots (SLOTS / EPOCH_S), reported to
Tune, and tracked into MLflow end to end; the journal's lag (the age of its oldest event not yet
applied, sampled every 0.1 s: worst and at the sweep's end); suggestion latency (median and p90
of ArmSearcher.suggest); the driver's CPU (cores, from its process times) and peak RSS; the
trials' slot-time fraction spent in their epochs; `sweep report` seconds on the sweep's store.
Each store's sweep starts a fresh local Ray, except in quick mode (CI: that it runs; its figures
are not read): 2 slots, 8 trials of 2 epochs, one Ray for all the stores (so a later store's
driver MiB includes the earlier's) and a server of one worker.

    python -m benchmarks.scale_cluster [--quick] [--slots 24] [--epoch-s 0.1] [--store sqlite|postgresql ...]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from ._timing import table

ROOT = Path(__file__).resolve().parent.parent
EPOCH_ENV = "SCALE_EPOCH_S"
PG = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
RULES = ["sgd", "sam", "asam", "sam_gns"]
SERVER_WORKERS = 4  # as docker/compose.yaml runs `mlflow server` (the last --workers wins)
CHECKPOINT_EVERY = 2  # epochs between a trial's checkpoints, as the module's docstring says


def simulated_fit(cfg, report=None, state=None):
    """trainers.fit's contract (docs/architecture.md: a trainer knows only its reporter) with a
    timed wait for each epoch's training."""
    import torch

    from trainers.build import build_model

    seconds = float(os.environ.get(EPOCH_ENV, "0.1"))
    model = build_model(cfg, 10)
    momentum = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    epoch = state["epoch"] if state else 0
    quality = math.exp(-((math.log10(cfg.lr) + 1.0) ** 2))  # 1 at lr 0.1, the value TPE should find
    metrics = {"epoch": epoch, "status": "finished"}
    while epoch < cfg.epochs:
        started = time.perf_counter()
        time.sleep(seconds)
        epoch += 1
        acc = 10.0 + 85.0 * quality * (1.0 - 0.5**epoch) + 0.1 * (cfg.seed % 7)
        metrics = {"epoch": epoch, "train_loss": 2.3 * (1 - acc / 100), "train_acc": acc, "val_loss": 2.3 * (1 - acc / 100)}
        metrics |= {"val_acc": acc, "test_loss": 2.3 * (1 - acc / 100), "test_acc": acc - 0.5, "peak_rss_mb": 300.0}
        metrics |= {"images_per_s": 1000.0 / seconds, "lr": cfg.lr}
        metrics |= {"epoch_time_s": time.perf_counter() - started}
        metrics["status"] = "finished" if epoch == cfg.epochs else "running"
        if report is not None:
            report(metrics, {"epoch": epoch, "model": model.state_dict(), "optimizer": momentum})
    return metrics


def simulated_trial(config) -> None:
    """The sweep's trainable with `simulated_fit` for `trainers.fit` (set in the worker that runs it)."""
    from sweep.tuning import trainable

    trainable.fit = simulated_fit
    trainable.train_trial(config)


def make_spec(folder: Path, name: str, trials: int, epochs: int, mlflow_uri: str, optuna_storage: str, every_s: float = 0.0):
    from sweep.spec import validate_spec

    return validate_spec(
        {
            "name": name,
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": RULES,
            "train": {"epochs": epochs, "model_options": {"width": 16}},
            "search": {"method": "optuna", "trials_per_arm": trials, "space": {"lr": {"low": 0.01, "high": 1.0, "log": True}}},
            "resources": {"cpus": 1},
            "checkpoints": {"path": str(folder / "sweeps"), "every": CHECKPOINT_EVERY, "every_s": every_s},
            "tracking": {"mlflow_uri": mlflow_uri, "optuna_storage": optuna_storage},
        }
    ).resolved()


@contextlib.contextmanager
def stores(folder: Path, store: str, server_workers: int):
    """(mlflow_uri, optuna_storage): SQLite files, or an `mlflow server` and Optuna on new
    PostgreSQL databases (dropped after)."""
    if store == "sqlite":
        yield f"sqlite:///{folder}/mlflow.db", f"sqlite:///{folder}/optuna.db"
        return
    import psycopg

    from tests.helpers.servers import MlflowServer

    # one database each: MLflow and Optuna both keep their schema version in `alembic_version`
    db = f"scale_{secrets.token_hex(4)}"
    with psycopg.connect(PG, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db}")
        admin.execute(f"CREATE DATABASE {db}_optuna")
        server = None
        try:
            backend, args = f"postgresql://postgres@127.0.0.1:5432/{db}", ("--workers", str(server_workers))
            server = MlflowServer(folder, backend=backend, args=args).start()
            yield server.uri, f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}_optuna"
        finally:
            if server is not None:
                server.stop()
            for name in (db, f"{db}_optuna"):
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Probes:
    """Timings taken in the driver: every journal append, every suggestion, the journal's lag."""

    def __init__(self):
        from sweep.search.searcher import ArmSearcher
        from sweep.tracking.journal import Journal

        self.appends: list[tuple[float, bool]] = []  # (time, an epoch event?)
        self.suggests: list[float] = []
        self.journals: list = []
        self.worst_lag, self.stop = 0.0, threading.Event()
        append, suggest, init = Journal.append, ArmSearcher.suggest, Journal.__init__
        probes = self

        def timed_append(journal, kind, **fields):
            append(journal, kind, **fields)
            probes.appends.append((time.perf_counter(), kind == "epoch"))

        def timed_suggest(searcher, trial_id):
            start = time.perf_counter()
            try:
                return suggest(searcher, trial_id)
            finally:
                probes.suggests.append(time.perf_counter() - start)

        def kept_init(journal, *args, **kwargs):
            init(journal, *args, **kwargs)
            probes.journals.append(journal)

        self.originals = append, suggest, init
        Journal.append, ArmSearcher.suggest, Journal.__init__ = timed_append, timed_suggest, kept_init
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def close(self) -> None:
        """Stop sampling and put back what was timed (the next sweep in this process has its own probes)."""
        from sweep.search.searcher import ArmSearcher
        from sweep.tracking.journal import Journal

        self.stop.set()
        Journal.append, ArmSearcher.suggest, Journal.__init__ = self.originals

    def lag(self) -> float:
        """Seconds since the oldest event not applied yet was written (0 when all are applied)."""
        journal = next((j for j in self.journals if j._thread is not None), None)
        if journal is None:
            return 0.0
        done, now = journal._applied_events, time.perf_counter()
        return now - self.appends[done][0] if done < len(self.appends) else 0.0

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.worst_lag = max(self.worst_lag, self.lag())
            time.sleep(0.1)


@contextlib.contextmanager
def local_ray(slots: int, epoch_s: float):
    """A fresh local Ray of `slots` logical CPUs whose workers run `simulated_fit`'s epochs of `epoch_s`."""
    import ray

    os.environ[EPOCH_ENV] = str(epoch_s)  # the workers Ray starts inherit it
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(address="local", num_cpus=slots, include_dashboard=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


def run(
    store: str, slots: int, epoch_s: float, trials: int, epochs: int, server_workers: int, every_s: float = 0.0
) -> list[object]:
    """One sweep on a fresh local Ray of `slots` logical CPUs (or the one already started: quick
    mode); its row of figures."""
    import ray

    from sweep.tuning import driver

    folder = Path(tempfile.mkdtemp(prefix=f"scale-cluster-{store}-"))
    with stores(folder, store, server_workers) as (mlflow_uri, optuna_storage):
        spec = make_spec(folder, "scale", trials, epochs, mlflow_uri, optuna_storage, every_s)
        probes = Probes()
        driver.train_trial = simulated_trial
        session = contextlib.nullcontext() if ray.is_initialized() else local_ray(slots, epoch_s)
        me = psutil.Process()
        stop_tune = driver.conclude
        try:
            with session:
                cpu, start = sum(me.cpu_times()[:2]), time.perf_counter()
                lag_at_end = [0.0]

                def conclude(*args, **kwargs):  # the moment Tune ends, before the end of the sweep waits
                    lag_at_end[0] = probes.lag()
                    return stop_tune(*args, **kwargs)

                driver.conclude = conclude
                driver.run_sweep(spec)
                wall = time.perf_counter() - start
                cores = (sum(me.cpu_times()[:2]) - cpu) / wall
        finally:
            driver.conclude = stop_tune
            probes.close()
        epoch_times = [t for t, is_epoch in probes.appends if is_epoch]
        offered_span = epoch_times[-1] - epoch_times[0]
        reported = len(epoch_times) / offered_span
        tracked = len(epoch_times) / (wall - (epoch_times[0] - start))  # first epoch to the sweep's end (journal drained)
        busy = len(epoch_times) * epoch_s / (slots * wall)
        report_s = report_seconds(spec)
    median = statistics.median(probes.suggests) * 1e3
    p90 = statistics.quantiles(probes.suggests, n=10)[-1] * 1e3
    peak = psutil.Process().memory_info().rss / 2**20
    hwm = _peak_rss_mb()
    return [store, slots, len(epoch_times), f"{slots / epoch_s:.0f}", f"{reported:.0f}", f"{tracked:.0f}"] + [
        f"{probes.worst_lag:.2f}",
        f"{lag_at_end[0]:.2f}",
        f"{median:.0f}/{p90:.0f}",
        f"{cores:.2f}",
        f"{max(peak, hwm):.0f}",
        f"{100 * busy:.0f}%",
        f"{report_s:.1f}",
    ]


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def report_seconds(spec) -> float:
    """`sweep report` on the sweep's store, in a fresh interpreter (imports included)."""
    command = [sys.executable, "-m", "sweep.cli", "report", spec.name, "--tracking-uri", spec.tracking.mlflow_uri]
    command += ["--out", str(spec.checkpoints.path / "report")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return time.perf_counter() - start


HEADER = ["store", "slots", "epochs", "offered/s", "reported/s", "tracked/s", "worst lag s", "lag at end s"]
HEADER += ["suggest ms med/p90", "driver cores", "driver MiB", "slot time in epochs", "report s"]


def main(
    quick: bool = False, slots: int = 24, epoch_s: float = 0.1, kinds: tuple[str, ...] = ("sqlite",), every_s: float = 0.0
) -> None:
    from sweep.tuning.driver import quiet_libraries

    slots, trials, epochs = (2, 2, 2) if quick else (slots, 50, 10)
    # quick mode (its figures are not read): one Ray for every store's sweep, and a server of one
    # worker (each start costs seconds); the full run starts a fresh Ray for each
    server_workers = 1 if quick else SERVER_WORKERS
    with quiet_libraries(), local_ray(slots, epoch_s) if quick else contextlib.nullcontext():
        rows = [run(kind, slots, epoch_s, trials, epochs, server_workers, every_s) for kind in kinds]
    checkpoints = f"a checkpoint every {CHECKPOINT_EVERY} epochs" + (f", at most one per {every_s:g} s" if every_s else "")
    print(
        f"# {len(RULES)} arms x {trials} trials x {epochs} epochs of {epoch_s} s, {checkpoints}, {slots} slots, local Ray; {', '.join(kinds)}"
    )
    print(table(HEADER, rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 slots, 8 trials of 2 epochs, one Ray for all stores (CI)")
    parser.add_argument("--slots", type=int, default=24, help="logical CPUs of the local Ray: trials at once")
    parser.add_argument("--epoch-s", type=float, default=0.1, help="seconds each simulated epoch waits")
    parser.add_argument("--store", action="append", choices=["sqlite", "postgresql"], help="repeatable (default: sqlite)")
    parser.add_argument("--checkpoint-every-s", type=float, default=0.0, help="the spec's checkpoints.every_s (default 0)")
    args = parser.parse_args()
    main(args.quick, args.slots, args.epoch_s, tuple(args.store or ["sqlite"]), args.checkpoint_every_s)
