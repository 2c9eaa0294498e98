"""The tracking path at scale: journal events as the Tune callback writes them (many trials side by
side, each a start, its epochs, a checkpoint every 2 epochs and an end; Tune-like results and full
TrainConfigs), applied by the real Journal and SweepTracker into SQLite and into a real
`mlflow server` on PostgreSQL, by the journal as it is (WORKERS threads for a server, many epochs
per request) and as it was (one thread, one event per request, no wait for more: `applier.ROUND = 1`,
`applier.LINGER_S = 0`), and on
SQLite with 8 threads forced (the journal uses one there: docs/platform.md).

Two figures per store and applier:
- capacity: trial-epochs per second tracked while applying a backlog (the journal far behind);
- lag: events arrive at a fixed rate (500 trial-epochs/s, 60 s; quick: 100/s, 1 s) and the
  journal's lag is sampled every 0.1 s: the age of the oldest event not applied yet.
The arrival writes the callback's lines, fsync'd once per 10-ms tick: one fsync per event, as the
callback does, costs the figure printed as "append", which bounds the callback's own rate.
Quick mode (CI: that it runs; its figures are not read): 20 trials of 10 epochs, a backlog of 200
events, each figure waiting up to 60 s for all its events to be applied (under load a new
server's first requests take seconds, and a figure cut off before any epoch would read 0), one
store of each kind for all figures, a server of one worker.

    python -m benchmarks.scale_tracking [--quick]   # PostgreSQL at 127.0.0.1:5432, user postgres
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import tempfile
import threading
import time
from pathlib import Path

import optuna
import psycopg

from sweep.spec import validate_spec
from sweep.tracking import applier
from sweep.tracking.journal import Journal
from sweep.tracking.runs import CURVES, SweepTracker
from sweep.tracking.schema import Event
from tests.helpers.servers import MlflowServer
from trainers.config import TrainConfig

from ._timing import table

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
WAIT_S = 60.0  # each figure's wait for the journal to apply what it was given (an applier that cannot is cut)
SERVER_WORKERS = 4  # `mlflow server`'s default, as docker/compose.yaml runs it (the last --workers wins)


def trial_events(slots: int, epochs: int):
    """An endless stream of (kind, fields) as the callback writes them: `slots` trials side by
    side reporting in turn, each replaced by a new trial when its last epoch is in."""
    trials = [_trial(number) for number in range(slots)]
    now, serial = [0] * slots, slots
    yield Event.SWEEP, {}
    while True:
        for slot in range(slots):
            tid, config = trials[slot]
            if now[slot] == 0:
                yield Event.START, {"trial": tid, "config": config}
            now[slot] += 1
            yield Event.EPOCH, {"trial": tid, "config": config, "result": tune_result(tid, now[slot])}
            if now[slot] % 2 == 0:
                yield Event.CHECKPOINT, {"trial": tid, "config": config, "uri": f"/ckpt/{tid}/checkpoint_{now[slot]:06d}"}
            if now[slot] == epochs:
                yield Event.END, {"trial": tid, "config": config, "outcome": "finished"}
                trials[slot], now[slot], serial = _trial(serial), 0, serial + 1


def _trial(number: int) -> tuple[str, dict]:
    """A trial's id and config as the searcher writes it (schema.TrialConfig)."""
    rule = ("sgd", "sam", "asam", "sam_gns")[number % 4]
    train = TrainConfig(optimizer=rule, model="small_cnn", dataset="digits", lr=0.1 / (1 + number % 7), seed=number % 3)
    config = {"arm": f"small_cnn/{rule}", "phase": "search", "study_trial": number // 4, "checkpoint_every": 2}
    return f"{number:05d}", {**config, "train": train.model_dump(mode="json")}


def tune_result(tid: str, epoch: int) -> dict:
    """A result as Tune hands it to callbacks (without `config`): the trainer's metrics, the
    trainable's placement fields and Tune's own."""
    stamp = time.time()
    return {
        "epoch": epoch,
        **{key: 50.0 + epoch * 0.1 for key in CURVES if key != "peak_rss_mb"},
        "status": "running",
        "restored_from_epoch": 0,
        "ray_node_id": "a" * 56,
        "gpu": "NVIDIA H100 80GB HBM3",
        "card": "h100",
        "gpu_share": 0.25,
        "cuda_visible_devices": "3",
        "trial_started_at": stamp - 10 * epoch,
        "timestamp": int(stamp),
        "checkpoint_dir_name": f"checkpoint_{epoch:06d}" if epoch % 2 == 0 else None,
        "done": False,
        "training_iteration": epoch,
        "trial_id": tid,
        "date": time.strftime("%Y-%m-%d_%H-%M-%S"),
        "time_this_iter_s": 0.4,
        "time_total_s": 0.4 * epoch,
        "pid": 4242,
        "hostname": "gpu-node-17",
        "node_ip": "10.0.3.17",
        "time_since_restore": 0.4 * epoch,
        "iterations_since_restore": epoch,
    }


def append_tick(journal: Journal, events: list) -> None:
    """Journal.append's lines for several events, with one fsync (see the module's docstring)."""
    with journal._cond:
        if journal._writer is None:
            journal._writer = open(journal.path, "ab")  # noqa: SIM115 (closed by journal.close)
        for kind, fields in events:
            line = json.dumps({"seq": journal._seq, "kind": kind, **fields}, default=str, separators=(",", ":"))
            journal._writer.write(line.encode() + b"\n")
            journal._seq += 1
        journal._writer.flush()
        os.fsync(journal._writer.fileno())
        journal._end = journal._writer.tell()
        journal._cond.notify_all()


def make_spec(root: Path, name: str, uri: str):
    return validate_spec(
        {
            "name": name,
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sgd", "sam", "asam", "sam_gns"],
            "tracking": {"mlflow_uri": uri, "optuna_storage": f"sqlite:///{root}/optuna.db"},
            "checkpoints": {"path": str(root / "sweeps")},
        }
    )


def capacity(spec, events: int, slots: int, epochs: int, cap_s: float, workers: int) -> float:
    """Trial-epochs per second while the journal applies a backlog of `events` events."""
    journal = Journal(spec.checkpoints.path / spec.name, SweepTracker(spec), workers)
    stream, kinds = trial_events(slots, epochs), []
    for _ in range(0, events, 500):
        tick = [next(stream) for _ in range(500)]
        kinds += [kind == Event.EPOCH for kind, _ in tick]
        append_tick(journal, tick)
    start = time.perf_counter()
    journal.start()
    _wait_until(journal, len(kinds), start + cap_s)
    elapsed, done = time.perf_counter() - start, journal._applied_events
    journal.close()
    return sum(kinds[:done]) / elapsed


def _wait_until(journal: Journal, total: int, deadline: float) -> None:
    while journal._applied_events < total and time.perf_counter() < deadline:
        time.sleep(0.05)


def lag(
    spec, rate: float, seconds: float, slots: int, epochs: int, workers: int, catch_up_s: float
) -> tuple[float, float, float]:
    """(max lag s, trial-epochs/s end to end, lag left when the arrival stopped) at `rate`; the
    journal gets `catch_up_s` after the arrival to catch up (an applier that cannot is cut)."""
    journal = Journal(spec.checkpoints.path / spec.name, SweepTracker(spec), workers).start()
    stream, stamps, epochs_at = trial_events(slots, epochs), [], []
    worst, stop = [0.0], threading.Event()

    def sample():
        while not stop.is_set():
            done, now = journal._applied_events, time.perf_counter()
            if done < len(stamps):
                worst[0] = max(worst[0], now - stamps[done])
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start, sent = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        due = int((time.perf_counter() - start) * rate)
        tick = []
        while sent < due:
            kind, fields = next(stream)
            tick.append((kind, fields))
            sent += kind == Event.EPOCH
        if tick:
            stamps += [time.perf_counter()] * len(tick)
            epochs_at += [kind == Event.EPOCH for kind, _ in tick]
            append_tick(journal, tick)
        time.sleep(0.01)
    done = journal._applied_events
    left = time.perf_counter() - stamps[done] if done < len(stamps) else 0.0
    _wait_until(journal, len(stamps), time.perf_counter() + catch_up_s)
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    applied = sum(epochs_at[: journal._applied_events])
    journal.close()
    return worst[0], applied / elapsed, left


def append_cost(root: Path) -> float:
    """ms of one Journal.append (a line, flush, fsync) of an epoch event, as the callback pays it."""
    journal = Journal(root / "append", tracker=type("T", (), {"uri": "sqlite://"})())
    stream = trial_events(10, 20)
    events = [next(stream) for _ in range(200)]
    start = time.perf_counter()
    for kind, fields in events:
        journal.append(kind, **fields)
    journal.close()
    return (time.perf_counter() - start) / len(events) * 1e3


def main(quick: bool = False) -> list[list[object]]:
    rate, seconds = (100.0, 1.0) if quick else (500.0, 60.0)
    backlog_events = 200 if quick else 12000
    slots, epochs = (20, 10) if quick else (200, 20)
    root = Path(tempfile.mkdtemp(prefix="scale_tracking_"))
    rounds, linger, before, after = applier.ROUND, applier.LINGER_S, "before: 1 event/request", "after: batched"
    # (store, applier, events per round, threads): `before` is the journal as it was
    runs = [("sqlite", before, 1, 1), ("sqlite", after, rounds, 1), ("sqlite", after, rounds, 8)]
    runs += [("postgresql", before, 1, 1), ("postgresql", after, rounds, applier.WORKERS)]
    rows, server = [], 1 if quick else SERVER_WORKERS  # quick: one worker starts in half the time
    print(f"# append: {append_cost(root):.2f} ms per event (line + fsync, as the Tune callback writes it)", flush=True)
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin, Stores(admin, root, quick, server) as stores:
        for store, name, round_size, workers in runs:
            applier.ROUND, figures = round_size, []
            applier.LINGER_S = linger if round_size > 1 else 0.0  # the journal as it was applied at once
            try:
                for what in ("capacity", "lag"):
                    with stores.sweep(store) as spec:
                        if what == "capacity":
                            figures.append(capacity(spec, backlog_events, slots, epochs, WAIT_S, workers))
                        else:
                            figures.extend(lag(spec, rate, seconds, slots, epochs, workers, WAIT_S))
            finally:
                applier.ROUND, applier.LINGER_S = rounds, linger
            rows.append([store, name, workers, figures[0], figures[2], figures[1], figures[3]])
            print(f"# {store}, {name}, {workers} threads: done", flush=True)
    print(
        f"# {slots} trials side by side, {epochs} epochs each; arrival {rate:.0f} trial-epochs/s for {seconds:.0f} s; server: {server} workers"
    )
    header = ["store", "applier", "threads", "capacity ep/s", f"ep/s at {rate:.0f}/s", "max lag s", "lag at end s"]
    print(table(header, rows))
    return rows


class Stores(contextlib.ExitStack):
    """Each figure's sweep on a store of its own (the full run), or in quick mode on the store of
    its kind made for the first figure, each figure a new sweep (experiment, parent run, journal,
    studies) there: making a store costs more than a quick figure (SQLite: MLflow's tables and
    migrations, about 3 s; PostgreSQL: a database and an `mlflow server` start, 6-10 s)."""

    def __init__(self, admin, root: Path, shared: bool, server_workers: int):
        super().__init__()
        self.admin, self.root, self.shared, self.server_workers = admin, root, shared, server_workers
        self.kept: dict[str, tuple[Path, str]] = {}  # quick mode: (folder, MLflow URI) by store kind
        self.sweeps = 0

    @contextlib.contextmanager
    def sweep(self, store: str):
        """A new sweep's spec, its Optuna storage and parent run made as the sweep's setup makes them."""
        self.sweeps += 1
        with contextlib.ExitStack() as own:
            if self.shared and store not in self.kept:
                self.kept[store] = self.enter_context(self.new(store))
            folder, uri = self.kept[store] if self.shared else own.enter_context(self.new(store))
            spec = make_spec(folder, f"scale{self.sweeps}", uri)
            optuna.storages.RDBStorage(spec.tracking.optuna_storage)  # the searcher's, made before any trial
            assert SweepTracker(spec).parent  # the sweep event, before any trial
            yield spec

    @contextlib.contextmanager
    def new(self, store: str):
        """(folder, MLflow URI): a new SQLite file, or a new `mlflow server` on a new PostgreSQL
        database (dropped after)."""
        tag = f"{store[:2]}{secrets.token_hex(4)}"
        folder = self.root / tag
        folder.mkdir()
        if store == "sqlite":
            yield folder, f"sqlite:///{folder}/mlflow.db"
            return
        self.admin.execute(f"CREATE DATABASE bench_{tag}")
        server = None
        try:
            backend = f"postgresql://postgres@127.0.0.1:5432/bench_{tag}"
            server = MlflowServer(folder, backend=backend, args=("--workers", str(self.server_workers))).start()
            yield folder, server.uri
        finally:
            if server is not None:
                server.stop(signal.SIGTERM)
            self.admin.execute(f"DROP DATABASE IF EXISTS bench_{tag} WITH (FORCE)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per figure (CI)")
    main(parser.parse_args().quick)
