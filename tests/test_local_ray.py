"""The local Ray a sweep starts for itself holds no worker that no trial can use."""

import os
import subprocess
import sys

import pytest

from helpers.ray_env import without_ray_settings

pytestmark = pytest.mark.slow

# Counts the idle workers the raylet (a child of this process, with the GCS) has started with no
# task asked of it: Ray prestarts its workers as the first driver registers.
PROBE = """
import time, psutil, ray
{start}
time.sleep(4)
idle = [p for p in psutil.Process().children(recursive=True) if p.cmdline()[:1] == ["ray::IDLE"]]
print("idle", len(idle))
{stop}
"""


def idle_workers(start: str, stop: str) -> int:
    env = without_ray_settings(os.environ)  # Ray's defaults, unless the probe's start sets its own
    probe = PROBE.format(start=start, stop=stop)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split("idle")[-1])


def test_the_sweeps_local_ray_prestarts_no_worker_tune_cannot_use():
    # Ray's default: one prestarted worker per CPU, idle: the probe sees them
    assert idle_workers("ray.init(address='local', num_cpus=2, include_dashboard=False)", "ray.shutdown()") >= 1
    session = "from sweep.tuning.driver import ray_session\nsession = ray_session()\nsession.__enter__()"
    assert idle_workers(session, "session.__exit__(None, None, None)") == 0
