"""A pending trial whose reused actor fails its reset is retried, not errored with its retries
unspent (sweep/tuning/recovery.py). The failure is made deterministic here: the reused actor's
`reset_config` raises once; on a cluster the same path is taken by an actor whose node died
(tests/test_node_failure.py)."""

from pathlib import Path

import pytest
import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback

from sweep.tuning import recovery

pytestmark = pytest.mark.slow


class ResetFailsOnce(tune.Trainable):
    def setup(self, config):
        self.steps = 0

    def step(self):
        self.steps += 1
        return {"steps": self.steps, "done": self.steps >= 2}

    def reset_config(self, new_config):
        marker = Path(new_config["marker"])
        if marker.exists():
            marker.unlink()
            raise RuntimeError("this reset fails once")
        self.steps = 0
        return True

    def save_checkpoint(self, checkpoint_dir):
        return None

    def load_checkpoint(self, checkpoint):
        pass


def test_a_trial_whose_reused_actor_fails_its_reset_is_retried_on_a_fresh_actor(tmp_path):
    assert recovery.install()  # the installed Ray has every controller name the patch needs
    marker = tmp_path / "fail-next-reset"
    marker.touch()
    # the workers import this module to build the trainable
    here = {"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}}
    ray.init(address="local", num_cpus=1, include_dashboard=False, runtime_env=here)
    try:
        tuner = tune.Tuner(
            tune.with_resources(ResetFailsOnce, {"cpu": 1}),
            param_space={"marker": str(marker), "i": tune.grid_search([0, 1])},
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=1),
            run_config=tune.RunConfig(
                storage_path=str(tmp_path / "tune"),
                failure_config=tune.FailureConfig(max_failures=1),
                callbacks=[JsonLoggerCallback()],  # the results' files, whatever the environment says of Tune's own
                verbose=0,
            ),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    assert not marker.exists()  # the second trial's reset did fail
    assert results.num_errors == 0
    assert sorted(result.metrics["steps"] for result in results) == [2, 2]
