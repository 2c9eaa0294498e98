"""The searcher at scale: suggestion latency by study size, and the driver's memory over many trials.

Latency: one arm's study (SAM-GNS searching lr, rho and eta with seeded multivariate TPE, as
sweep/search/space.py builds it) is filled with N completed trials (each with the user attributes
and per-epoch intermediate values a real trial leaves), then the real ArmSearcher suggests and is
told the trial's end, again and again: the time of `suggest` (study.ask + the attribute writes) is
the suggestion latency. SQLite (the embedded profile) and PostgreSQL (a fresh database on
127.0.0.1:5432, dropped after; skipped when none answers), with the TPE window
(sweep/search/space.py: WINDOW) on and off.

Memory: the searcher alone (SQLite, no Ray) through 10,000 simulated trials of 3 epochs
(suggest, on_trial_result per epoch, on_trial_complete), tracemalloc's view of what the driver
holds after every 2,000.

    python -m benchmarks.scale_search [--quick] [--part latency|memory]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweep.search import space
from sweep.search.links import OUTCOME_ATTR, RAY_TRIAL_ATTR, RUN_ID_ATTR, SEED_ATTR, TEST_ACC_ATTR, VAL_ACC_ATTR
from sweep.search.searcher import ArmSearcher
from sweep.search.storage import open_storage
from sweep.spec import validate_spec

from ._timing import table

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
EPOCHS = 10


def make_spec(storage: str, trials: int):
    search = {
        "method": "optuna",
        "trials_per_arm": trials,
        "space": {
            "lr": {"low": 0.01, "high": 1.0, "log": True},
            "rho": {"low": 0.01, "high": 0.3, "log": True},
            "eta": {"low": 0.001, "high": 0.1, "log": True},
        },
    }
    return validate_spec(
        {
            "name": "scale",
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sam_gns"],
            "train": {"epochs": EPOCHS},
            "search": search,
            "tracking": {"mlflow_uri": "sqlite:////tmp/unused-mlflow.db", "optuna_storage": storage},
        }
    )


def fill(spec, n: int) -> None:
    """N completed trials in the arm's study, written in one go (add_trials), as the searcher leaves them."""
    arm = spec.arms()[0]
    storage = open_storage(spec.tracking.optuna_storage)
    study = optuna.create_study(study_name=arm.study_name(spec.name), storage=storage, direction="maximize")
    dists = {name: d for name, d in space.distributions(spec.space_for(arm.rule)).items() if isinstance(d, FloatDistribution)}
    rng = random.Random(0)
    trials = []
    for i in range(n):
        params = {name: d.low * (d.high / d.low) ** rng.random() for name, d in dists.items()}
        value = 50 + 45 * rng.random()
        attrs = {SEED_ATTR: 0, RAY_TRIAL_ATTR: f"t{i}", RUN_ID_ATTR: uuid.uuid4().hex, OUTCOME_ATTR: "finished"}
        attrs.update({VAL_ACC_ATTR: value, TEST_ACC_ATTR: value - 1})
        steps = {epoch: value - (EPOCHS - epoch) for epoch in range(1, EPOCHS + 1)}
        trials.append(
            create_trial(
                state=TrialState.COMPLETE,
                value=value,
                params=params,
                distributions=dists,
                user_attrs=attrs,
                intermediate_values=steps,
            )
        )
    study.add_trials(trials)


def latencies(spec, asks: int, window: int) -> list[float]:
    """Seconds of each ArmSearcher.suggest on the filled study with TPE's `window` (0: off; the
    first suggestion, which opens the storage and looks for orphans once, left out)."""
    default, space.WINDOW = space.WINDOW, window
    try:
        return _latencies(ArmSearcher(spec), asks)
    finally:
        space.WINDOW = default


def _latencies(searcher: ArmSearcher, asks: int) -> list[float]:
    out = []
    for i in range(asks + 1):
        start = time.perf_counter()
        searcher.suggest(f"ask{i}")
        took = time.perf_counter() - start
        if i:
            out.append(took)
        result = {"status": "finished", "val_acc": 60.0 + i % 30, "test_acc": 59.0, "val_loss": 1.0, "epoch": EPOCHS}
        searcher.on_trial_complete(f"ask{i}", result)
    return out


def quantiles(seconds: list[float]) -> tuple[float, float]:
    deciles = statistics.quantiles(seconds, n=10)
    return statistics.median(seconds) * 1000, deciles[-1] * 1000


def postgres_database():
    """A fresh database on the local PostgreSQL, or None when none answers."""
    try:
        import psycopg

        name = f"scale_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True, connect_timeout=3
        ) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name
    except Exception:  # noqa: BLE001 (no server here: the PostgreSQL rows are left out)
        return None


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def latency_rows(sizes: list[int], asks: int) -> list[list[object]]:
    rows = []
    for backend in ("sqlite", "postgresql"):
        for n in sizes:
            if backend == "sqlite":
                folder = tempfile.mkdtemp()
                storage, cleanup = f"sqlite:///{folder}/optuna.db", None
            else:
                db = postgres_database()
                if db is None:
                    continue
                storage, cleanup = POSTGRES.format(db=db), db
            try:
                fill(make_spec(storage, n + 2 * asks + 10), n)
                figures = {}
                for label, window in (("off", 0), ("on", space.WINDOW)):  # both on the same filled study
                    figures[label] = quantiles(latencies(make_spec(storage, n + 2 * asks + 10), asks, window))
                off, on = figures["off"], figures["on"]
                rows.append([backend, n, f"{off[0]:.1f}", f"{off[1]:.1f}", f"{on[0]:.1f}", f"{on[1]:.1f}"])
            finally:
                if cleanup:
                    drop_database(cleanup)
    return rows


def memory_rows(trials: int, every: int, epochs: int) -> list[list[object]]:
    """What the searcher holds (tracemalloc, after a collection) as simulated trials go by."""
    folder = Path(tempfile.mkdtemp())
    spec = make_spec(f"sqlite:///{folder}/optuna.db", trials)
    searcher = ArmSearcher(spec)
    rows = []
    tracemalloc.start()
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    for i in range(trials):
        trial_id = f"trial{i:05d}"
        searcher.suggest(trial_id)
        for epoch in range(1, epochs + 1):
            searcher.on_trial_result(trial_id, {"val_acc": 50.0 + epoch + i % 7, "epoch": epoch})
        result = {"status": "finished", "val_acc": 60.0 + i % 7, "test_acc": 59.0, "val_loss": 1.0, "epoch": epochs}
        searcher.on_trial_complete(trial_id, result)
        if (i + 1) % every == 0:
            gc.collect()
            held = (tracemalloc.get_traced_memory()[0] - base) / 2**20
            rows.append([i + 1, f"{held:.1f}", f"{(time.perf_counter() - start) / (i + 1) * 1000:.1f}"])
    tracemalloc.stop()
    return rows


def main(quick: bool, parts: tuple[str, ...] = ("latency", "memory")) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "latency" in parts:
        sizes, asks = ([20, 100], 5) if quick else ([100, 1000, 5000], 30)
        print(f"suggestion latency (ms) by completed trials in the arm's study, {asks} suggestions each")
        header = ["store", "trials", "median off", "p90 off", "median on", "p90 on"]
        print(table(header, latency_rows(sizes, asks)))
    if "memory" in parts:
        # 3 epochs a trial: each reported epoch is an Optuna write, and 10,000 trials of 10 took too
        # long under tracemalloc for this machine; what a trial leaves held grows with its epochs
        trials, every, epochs = (20, 10, 3) if quick else (10_000, 2_000, 3)
        print(f"\ndriver memory over {trials:,} simulated trials of {epochs} epochs (searcher, SQLite)")
        print(table(["trials", "MiB held", "ms per trial"], memory_rows(trials, every, epochs)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small studies, few trials (CI)")
    parser.add_argument("--part", choices=["latency", "memory"], help="one of the two (default: both)")
    args = parser.parse_args()
    main(args.quick, (args.part,) if args.part else ("latency", "memory"))
