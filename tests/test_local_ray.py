"""The local Ray a sweep starts for itself holds no worker that no trial can use."""

import os
import signal
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


# A handler set while the sweep's Ray runs (as the stop signals' are), then SIGTERM once Ray has
# shut down; or none set, when Ray's own (a sys.exit for while Ray runs) is left behind.
AFTER_SHUTDOWN = """
import os, signal, sys, time
from sweep.tuning.driver import ray_session
with ray_session():
    if sys.argv[1] == "handler":
        signal.signal(signal.SIGTERM, lambda signum, frame: print("handled", flush=True))
print("after", "default" if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else "handler", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(1)
print("alive", flush=True)
"""


@pytest.mark.parametrize(
    "case, status, printed",
    [("handler", 0, ["after handler", "handled", "alive"]), ("none", -signal.SIGTERM, ["after default"])],
)
def test_sigterm_after_the_sweeps_ray_shut_down_reaches_the_handler_python_reports(case, status, printed):
    # ray.shutdown() sets SIGTERM's action back to the default at the OS level under Python's
    # handler: without the sweep's fix the first case is killed by the signal
    done = subprocess.run([sys.executable, "-c", AFTER_SHUTDOWN, case], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.split("\n")[:-1]) == (status, printed), done.stderr[-2000:]
