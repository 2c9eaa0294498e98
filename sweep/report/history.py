"""Many runs' curves of one metric in a few requests (the report reads every trial's test_acc).

A sweep of 2,000 runs read one history request per run took minutes over HTTP; MLflow has bulk
reads, though not behind one client call: a database store (SQLite, PostgreSQL) answers
`get_metric_history_bulk` for many runs in one query, and a tracking server answers the same over
its `ajax-api/2.0/mlflow/metrics/get-history-bulk` route (at most 100 runs and 25,000 values a
request: mlflow/server/handlers.py). Any other store is read run by run. See docs/platform.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from mlflow.tracking import MlflowClient

SERVER_ROUTE = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
SERVER_RUNS, SERVER_VALUES = 100, 25_000  # the server's limits per request
DATABASE_RUNS, DATABASE_VALUES = 500, 1_000_000  # runs per query: well under SQLite's 32,766 variables

Points = list[tuple[str, int, int, float]]  # (run id, step, timestamp, value)


def curves(client: MlflowClient, run_ids: list[str], key: str) -> dict[str, list[float]]:
    """Each run's values of metric `key`, in step order (a run that logged none: an empty list)."""
    store = client._tracking_client.store  # the store behind the client: MLflow's bulk reads are the store's
    if hasattr(store, "get_metric_history_bulk"):
        fetch, runs, cap = _database(store, key), DATABASE_RUNS, DATABASE_VALUES
    elif hasattr(store, "get_host_creds"):
        fetch, runs, cap = _server(store, key), SERVER_RUNS, SERVER_VALUES
    else:
        fetch, runs, cap = _one_by_one(client, key), 1, None
    points: Points = []
    for start in range(0, len(run_ids), runs):
        points += _whole(fetch, run_ids[start : start + runs], cap)
    by_run: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
    for run_id, step, timestamp, value in points:
        by_run[run_id].append((step, timestamp, value))
    return {run_id: [value for _, _, value in sorted(by_run[run_id])] for run_id in run_ids}


def _whole(fetch: Callable[[list[str], int | None], Points], run_ids: list[str], cap: int | None) -> Points:
    """The batch's points; a batch that fills the cap may have been cut, so it is read in halves."""
    points = fetch(run_ids, cap)
    if cap is None or len(points) < cap or len(run_ids) == 1:
        return points
    half = len(run_ids) // 2
    return _whole(fetch, run_ids[:half], cap) + _whole(fetch, run_ids[half:], cap)


def _database(store, key: str) -> Callable[[list[str], int | None], Points]:
    def fetch(run_ids: list[str], cap: int | None) -> Points:
        found = store.get_metric_history_bulk(run_ids, key, max_results=cap)
        return [(m.run_id, m.step, m.timestamp, m.value) for m in found]

    return fetch


def _server(store, key: str) -> Callable[[list[str], int | None], Points]:
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    def fetch(run_ids: list[str], cap: int | None) -> Points:
        params = {"run_id": run_ids, "metric_key": key, "max_results": cap}
        response = http_request(store.get_host_creds(), SERVER_ROUTE, "GET", params=params)
        found = verify_rest_response(response, SERVER_ROUTE).json().get("metrics", [])
        return [(m["run_id"], int(m.get("step", 0)), int(m.get("timestamp", 0)), float(m["value"])) for m in found]

    return fetch


def _one_by_one(client: MlflowClient, key: str) -> Callable[[list[str], int | None], Points]:
    def fetch(run_ids: list[str], _cap: int | None) -> Points:
        return [(run_id, m.step, m.timestamp, m.value) for run_id in run_ids for m in client.get_metric_history(run_id, key)]

    return fetch
