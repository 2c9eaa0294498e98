"""The Ray session a command runs in: the cluster at an address, or a local Ray started and
stopped by the command (the embedded profile), started a second time where a busy machine made
Ray's own start time out (docs/platform.md, "Ray Tune")."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator

import psutil
import ray

from ..cluster.cards import detect_cards, node_labels
from ..cluster.nodes import use_cluster_token, use_token_mode
from ..defaults import RAY_SYSTEM_CONFIG
from .signals import sigterm_again

# How ray.init says that its raylet never registered: on a busy machine the raylet gives up on
# its dashboard agent after a fixed 15 s and exits (Ray's raylet log: "Timed out waiting for
# file ... metrics_agent_port"), and ray.init reports it after 30 s with these words
RAYLET_TIMED_OUT = "timed out during startup"
STOP_WAIT_S = 5.0  # for the processes of a start that failed to end on SIGTERM, before SIGKILL


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Connect to the cluster at `address` (or $RAY_ADDRESS), else start a local Ray; shut it
    down on the way out, so the command's workers end with it."""
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        use_cluster_token()  # a cluster started by `sweep cluster head` refuses clients without it
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        start_local()
    rays_own = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        ray.shutdown()
        sigterm_again(rays_own)


def start_local() -> None:
    """A local Ray for this process: address="local", never a stale cluster record
    (docs/platform.md); no dashboard; this machine's cards declared as a cluster node would, for
    placement by card. A start whose raylet timed out is cleaned up and made once more."""
    use_token_mode()  # Ray's own default, chosen here: Ray warns at every start where it is not
    labels = node_labels(detect_cards())
    for attempt in (1, 2):
        ours = _descendants()
        try:
            ray.init(
                address="local",
                include_dashboard=False,
                labels=labels,
                logging_level=logging.WARNING,
                _system_config=dict(RAY_SYSTEM_CONFIG),  # Ray adds to the dict it is given
            )
            return
        except Exception as err:  # Ray raises a bare Exception for it
            if RAYLET_TIMED_OUT not in str(err):
                raise
            _end_new(ours)  # what the failed start left running: its GCS, API server, monitors
            if attempt == 2:
                err.add_note(
                    "The local Ray's start timed out twice: its raylet.out says why (logs/ of the newest session in Ray's temp folder, /tmp/ray by default)."
                )
                raise
            print("The local Ray's start timed out (a busy machine); starting it again.", file=sys.stderr, flush=True)


def _descendants() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def _end_new(before: set[int]) -> None:
    """SIGTERM, then SIGKILL, for the processes below this one that were not there before."""
    new = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
    for child in new:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(new, timeout=STOP_WAIT_S)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=STOP_WAIT_S)
