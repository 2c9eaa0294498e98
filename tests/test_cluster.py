"""Trials placed by card on a real multi-node Ray cluster (ray.cluster_utils.Cluster): three
nodes declare different cards as `sweep cluster join --card ...` would (logical GPUs: no card
here), and sweeps run on it with real MLflow (SQLite) and Optuna."""

import threading

import pytest
import ray
from mlflow.tracking import MlflowClient
from ray.cluster_utils import Cluster

from sweep.cluster.cards import Card, cluster_cards, node_labels
from sweep.cluster.nodes import gpus_in_use, render_status
from sweep.spec import validate_spec
from sweep.tuning.driver import run_sweep

pytestmark = pytest.mark.slow

CARDS = {
    "RTX-2070": Card("RTX 2070", 8),
    "RTX-2080-Ti": Card("NVIDIA GeForce RTX 2080 Ti", 11),
    "TITAN-RTX": Card("TITAN RTX", 24),
}


@pytest.fixture(scope="module")
def cluster():
    lab = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    nodes = {label: lab.add_node(num_cpus=2, num_gpus=1, labels=node_labels([card])) for label, card in CARDS.items()}
    ray.init(address=lab.address)
    yield {label: node.node_id for label, node in nodes.items()}
    ray.shutdown()
    lab.shutdown()


def lab_spec(tmp_path, name, resources, trials=4, model_options=None, epochs=2):
    return validate_spec(
        {
            "name": name,
            "dataset": "digits",
            "models": ["small_cnn"],
            "optimizers": ["sgd"],
            "train": {"epochs": epochs, "batch_size": 64, "model_options": model_options or {"width": 4}},
            "search": {"method": "random", "trials_per_arm": trials, "space": {"lr": {"low": 0.01, "high": 0.1, "log": True}}},
            "resources": {"cpus": 0.5, **resources},
            "tracking": {"mlflow_uri": f"sqlite:///{tmp_path}/mlflow.db", "optuna_storage": f"sqlite:///{tmp_path}/optuna.db"},
            "checkpoints": {"path": str(tmp_path / "sweeps")},
            "retries": 0,
        }
    ).resolved()


def child_runs(spec):
    client = MlflowClient(spec.tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(spec.name)
    return [run for run in client.search_runs([experiment.experiment_id]) if "ray.trial_id" in run.data.tags]


def most_at_once(spec) -> dict[tuple[str, str], int]:
    """Per card (node, CUDA_VISIBLE_DEVICES): the most trials running at one moment, from each
    trial's start and end time (first line of train_trial; its last result)."""
    client = MlflowClient(spec.tracking.mlflow_uri)
    events: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for run in child_runs(spec):
        tags = run.data.tags
        card = (tags["ray.node_id"], tags["cuda_visible_devices"])
        start = float(tags["trial_started_at"])
        end = max(m.timestamp for m in client.get_metric_history(run.info.run_id, "val_acc")) / 1000
        events.setdefault(card, []).extend([(start, 1), (end, -1)])
    peaks = {}
    for card, marks in events.items():
        running = peak = 0
        for _, change in sorted(marks, key=lambda mark: (mark[0], mark[1])):  # ends before starts at a tie
            running += change
            peak = max(peak, running)
        peaks[card] = peak
    return peaks


def test_status_lists_every_node_with_its_card(cluster):
    nodes = cluster_cards()
    declared = {node.card: node for node in nodes if node.card}
    assert set(declared) == set(CARDS)
    assert declared["TITAN-RTX"].memory_gb == 24 and declared["TITAN-RTX"].node_id == cluster["TITAN-RTX"]
    table = render_status(nodes, gpus_in_use())
    assert len(table.splitlines()) == 1 + len(nodes)
    assert "RTX-2080-Ti  11 GB" in table


class HeldShares:
    """The most GPU shares trials' placement groups held on each node at one moment, sampled while
    a sweep runs (Ray's own accounting: it does not depend on how long each trial takes)."""

    def __init__(self):
        self.most: dict[str, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._done.wait(0.05):
            for node, shares in gpus_in_use().items():
                self.most[node] = max(self.most.get(node, 0), len(shares))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def test_a_model_restricted_to_24_gb_cards_runs_only_on_the_titan_four_to_a_card(cluster, tmp_path):
    spec = lab_spec(tmp_path, "titan-only", {"gpu": 0.25, "models": {"small_cnn": {"min_gpu_memory_gb": 20}}}, trials=6, epochs=3)
    with HeldShares() as held:
        outcome = run_sweep(spec)
    assert not outcome.interrupted and outcome.failed == 0
    assert held.most == {cluster["TITAN-RTX"]: 4}  # four trials' shares held the card at once, on no other node
    runs = child_runs(spec)
    assert len(runs) == 6
    assert {run.data.tags["ray.node_id"] for run in runs} == {cluster["TITAN-RTX"]}
    assert {run.data.tags["card"] for run in runs} == {"TITAN-RTX"}
    assert {float(run.data.tags["gpu_share"]) for run in runs} == {0.25}
    (peak,) = most_at_once(spec).values()
    # never more than four ran at once; how many did overlap depends on how long each trial ran
    # against how long a worker took to start (under load, short trials can run one after another)
    assert 1 <= peak <= 4


def test_whole_cards_run_one_trial_per_card(cluster, tmp_path):
    spec = lab_spec(tmp_path, "whole", {"gpu": 1, "cards": ["TITAN RTX"]}, trials=3)
    assert run_sweep(spec).failed == 0
    assert list(most_at_once(spec).values()) == [1]
    assert {run.data.tags["card"] for run in child_runs(spec)} == {"TITAN-RTX"}


def test_gpu_auto_packs_small_trials_on_every_card(cluster, tmp_path):
    spec = lab_spec(tmp_path, "auto", {"gpu": "auto"}, trials=4, epochs=1)
    assert run_sweep(spec).failed == 0
    runs = child_runs(spec)
    shares = {float(run.data.tags["gpu_share"]) for run in runs}
    assert shares == {0.125}  # a few hundred MB each: eight to a card, the packing cap
    assert {run.data.tags["card"] for run in runs} <= set(CARDS)


def test_a_restriction_no_node_satisfies_starts_nothing(cluster, tmp_path):
    from sweep.errors import UserError

    spec = lab_spec(tmp_path, "too-big", {"gpu": 1, "min_gpu_memory_gb": 40})
    with pytest.raises(UserError, match="resources.min_gpu_memory_gb: no card has 40 GB"):
        run_sweep(spec)
    assert not (tmp_path / "sweeps" / "too-big").exists()
    assert not (tmp_path / "mlflow.db").exists()
