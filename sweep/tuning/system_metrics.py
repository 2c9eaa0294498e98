"""Each Ray node's utilisation in MLflow, beside the trials' curves: one run per node under the
sweep's parent run (tagged sweep.role=node and the node's name and address), fed by MLflow's own
system-metrics monitor (CPU, memory, disk, network, and GPU where nvidia-ml-py finds a card)
running from the start of the Tuner's run to its end: on the driver's own node as a thread of the
driver (the local profile's only node: no process to start for it), on every other node in a
small actor pinned to it.

Best effort (docs/architecture.md): a node whose actor cannot start, or a tracking store that does
not answer, costs the sweep its system metrics and never a trial. Nodes that join after the
start are not monitored; with a SQLite tracking store (a file on the driver's machine) only the
nodes of that machine are. Each monitor writes to the tracking store from its own node, so a
server must be reachable from every node (docs/architecture.md, the cluster profile).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..cluster.cards import NodeCards
from ..redact import redact
from ..spec import SweepSpec
from ..tracking.journal import SHORT_HTTP, short_http
from ..tracking.runs import SweepTracker
from ..tracking.schema import CARD_TAG, NODE_ID_TAG, NODE_IP_TAG, NODE_TAG

CREDENTIALS = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
)
STOP_WAIT_S = 30.0  # a monitor's last batch of metrics, sent when it stops


def _monitor(uri: str, run_id: str, every_s: float):
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # resume_logging: after `sweep resume` the node's run goes on from its last step
    monitor = SystemMetricsMonitor(run_id, sampling_interval=every_s, resume_logging=True, tracking_uri=uri)
    monitor.start()
    return monitor


def _finish(monitor, uri: str, run_id: str) -> None:
    from mlflow.tracking import MlflowClient

    monitor.finish()  # joins the sampling thread and sends what it holds
    MlflowClient(uri).set_terminated(run_id, "FINISHED")


class DriverNodeMonitor:
    """The driver's node: MLflow's monitor as a thread of the driver."""

    def __init__(self, uri: str, run_id: str, every_s: float):
        self.uri, self.run_id = uri, run_id
        self.monitor = _monitor(uri, run_id, every_s)

    def stop(self) -> None:
        with short_http():  # as the actors' stop
            _finish(self.monitor, self.uri, self.run_id)


@ray.remote(num_cpus=0, max_restarts=0)
class NodeMonitor:
    """MLflow's monitor on the node the actor was placed on, logging to `run_id`."""

    def __init__(self, uri: str, run_id: str, every_s: float, credentials: dict[str, str]):
        # the actor's own process: the server's credentials as MLflow reads them, in its
        # environment (an argument, not a runtime_env, which the dashboard would show)
        os.environ.update(credentials)
        self.uri, self.run_id = uri, run_id
        self.monitor = _monitor(uri, run_id, every_s)

    def stop(self) -> None:
        # one short attempt per request (as the journal's): a server that is down costs the end
        # of the sweep seconds, not MLflow's minutes of retries
        os.environ.update(SHORT_HTTP)
        _finish(self.monitor, self.uri, self.run_id)


def _start(spec: SweepSpec, monitors: list) -> None:
    """One node run (found again, or created) and one monitor per alive node, into `monitors` (so
    that those started before a failure are stopped all the same)."""
    tracker, every = SweepTracker(spec), spec.tracking.system_metrics_every_s
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    here = ray.get_runtime_context().get_node_id()  # the driver's node
    if spec.tracking.mlflow_uri.startswith("sqlite:"):  # a file on the driver's machine: its nodes alone reach it
        nodes = [node for node in nodes if node["NodeManagerAddress"] == ray.util.get_node_ip_address()]
    places = [f"{node['NodeManagerHostname']} {node['NodeManagerAddress']}" for node in nodes]
    # a node's worker has its node's environment, not the driver's: the server's credentials go along
    credentials = {key: os.environ[key] for key in CREDENTIALS if key in os.environ}
    for node, place in zip(nodes, places):
        # a machine's name and address find its run again after `sweep resume` (a new local Ray
        # has a new node id); Ray nodes sharing them (containers, test clusters) add their id
        key = place if places.count(place) == 1 else f"{place} {node['NodeID']}"
        host, ip = node["NodeManagerHostname"], node["NodeManagerAddress"]
        cards = NodeCards.from_ray(node)
        tags = {NODE_TAG: host, NODE_IP_TAG: ip, NODE_ID_TAG: node["NodeID"], CARD_TAG: cards.card or cards.ray_card or "none"}
        run_id = tracker.node_run(key, f"node {key}", tags)
        if node["NodeID"] == here:
            monitors.append(DriverNodeMonitor(spec.tracking.mlflow_uri, run_id, every))
            continue
        pinned = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        monitors.append(
            NodeMonitor.options(scheduling_strategy=pinned).remote(spec.tracking.mlflow_uri, run_id, every, credentials)
        )


def _stop(monitors: list) -> None:
    """Stop every monitor at once (each sends its last samples and closes its run), waiting
    STOP_WAIT_S at most for the actors; one that failed (its node died, MLflow is down) is said,
    not raised."""
    actors = [monitor for monitor in monitors if not isinstance(monitor, DriverNodeMonitor)]
    stops = [actor.stop.remote() for actor in actors]
    for monitor in monitors:
        if isinstance(monitor, DriverNodeMonitor):  # while the actors stop theirs
            _said(monitor.stop)
    ray.wait(stops, num_returns=len(stops), timeout=STOP_WAIT_S)
    for stop, actor in zip(stops, actors):
        _said(ray.get, stop, timeout=0)
        ray.kill(actor)


def _said(stop, *args, **kwargs) -> None:
    try:
        stop(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 (best effort: the sweep's own outcome stands)
        warnings.warn(f"system metrics: a node monitor did not stop cleanly: {_first_line(err)}", stacklevel=1)


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return redact(f"{type(err).__name__}: {lines[0][:200] if lines else ''}")  # a URL in it may hold a password


@contextlib.contextmanager
def node_monitors(spec: SweepSpec) -> Iterator[None]:
    """Monitor every alive node while the block runs (`tracking.system_metrics_every_s`, 0: off).
    Called before the Tuner starts, when no journal thread writes the parent run yet: the parent
    created here is the one the journal finds by its tag."""
    monitors = []
    if spec.tracking.system_metrics_every_s > 0:
        try:
            _start(spec, monitors)
        except Exception as err:  # noqa: BLE001 (best effort, see the module's docstring)
            warnings.warn(f"system metrics: not logged ({_first_line(err)})", stacklevel=1)
    try:
        yield
    except BaseException:  # stopped at once (a second signal): no waiting; `sweep resume` goes on
        with contextlib.suppress(Exception):
            for monitor in monitors:
                if isinstance(monitor, DriverNodeMonitor):  # its thread ends in the background
                    threading.Thread(target=monitor.monitor.finish, daemon=True).start()
                else:
                    ray.kill(monitor)
        raise
    if monitors:
        _stop(monitors)
