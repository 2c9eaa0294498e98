"""Every stop a clean stop: `sweep run` sent SIGTERM or SIGHUP (kill, systemd, docker stop, a batch
scheduler, a hang-up) stops as Ctrl-C does, and a second signal ends it at once; `sweep resume`
then finishes the sweep with every epoch in MLflow exactly once. The stop-signal handling itself is
checked in-process first, with Ray Tune's own signal set-up and a stand-in for the Tuner."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from helpers.figures import logged_epochs
from helpers.processes import processes_in
from helpers.servers import MlflowServer
from sweep.cli.sweeps import _finish
from sweep.tracking.journal_files import JOURNAL
from sweep.tuning.signals import EXIT_STATUS, TUNE_SIGINT_ENV, StopNow, StopSignals

pytestmark = pytest.mark.slow

EPOCHS = 3
SPEC = f"""\
name: stop-me
dataset: digits
models: [small_cnn]
optimizers: [sgd, sam_gns]
train: {{epochs: {EPOCHS}, batch_size: 64, model_options: {{width: 4}}}}
search:
  method: optuna
  trials_per_arm: 2
  space:
    lr: {{low: 0.01, high: 0.5, log: true}}
    rho: {{low: 0.01, high: 0.2, log: true}}
max_concurrent: 1
"""
HINT = "Continue with: sweep resume stop-me"
# what Ray's native failure handler and Python's faulthandler print, and Python's own traceback
DUMPS = ("received at time=", "*** SIGTERM", "*** SIGHUP", "Fatal Python error", "Stack trace", "Traceback", "Aborted")
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)
RAY_WORKER_LINE = re.compile(r"^(\x1b\[\d+m)?\([\w.]+ pid=\d+(, ip=[\d.]+)?\)")


# -- in-process: the handlers, with Tune's real set-up and a stand-in for the Tuner ---------------


class TuneStandIn:
    """Does what Tuner.fit does with signals: installs Tune's handlers (its own function) as its
    loop starts, then runs until Tune's stop event is set; sends itself `before` and `after` it."""

    def __init__(self, before=(), after=()):
        self.before, self.after = before, after

    def fit(self) -> bool:
        from ray.tune.tune import _setup_signal_catching

        for signum in self.before:  # while Tune is still setting up
            os.kill(os.getpid(), signum)
            time.sleep(0.2)
        stop = _setup_signal_catching()
        for signum in self.after:
            os.kill(os.getpid(), signum)
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return stop.is_set()


@pytest.fixture
def handlers():
    """The handlers before the test; it fails unless they are all back afterwards (pytest runs
    tests in the main thread, the only one where Python lets handlers be set). A suite started as
    a background job of a shell without job control inherits SIGINT ignored (POSIX), which
    StopSignals rightly leaves ignored: these tests get Python's own handler, and it back after."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    before = {signum: signal.getsignal(signum) for signum in STOPS}
    env = os.environ.get(TUNE_SIGINT_ENV)
    yield
    assert {signum: signal.getsignal(signum) for signum in STOPS} == before
    assert os.environ.get(TUNE_SIGINT_ENV) == env
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_reaches_tune_as_its_own_stop(handlers, signum):
    with StopSignals() as stops:
        assert stops.fit(TuneStandIn(after=[signum])) is True
    assert stops.received == signum


def test_a_signal_while_tune_sets_up_waits_for_its_handler(handlers):
    with StopSignals() as stops:
        assert stops.fit(TuneStandIn(before=[signal.SIGTERM])) is True
    assert stops.received == signal.SIGTERM


def test_a_second_signal_or_one_after_tune_ends_the_command_at_once(handlers):
    with StopSignals() as stops, pytest.raises(StopNow):
        stops.fit(TuneStandIn(after=[signal.SIGTERM, signal.SIGINT]))
    assert stops.received == signal.SIGTERM  # the first one sets the exit status
    with StopSignals() as stops, pytest.raises(StopNow):
        os.kill(os.getpid(), signal.SIGHUP)  # Tune has finished: nothing left to stop gracefully
        time.sleep(1)
    assert stops.received == signal.SIGHUP


# A shutdown that does what Ray's does part way in: SIGTERM's action back to the default at the OS
# level (sigaction from C, so Python still reports its handler), then a second SIGTERM before it
# returns. Run as its own process: unarmed, the signal kills it.
SHUTDOWN_RESETS_SIGTERM = """
import ctypes, os, signal, sys, time
from sweep.tuning.signals import StopNow, armed

libc = ctypes.CDLL(None, use_errno=True)

class Action(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int), ("restorer", ctypes.c_void_p)]

def shutdown():
    assert libc.sigaction(signal.SIGTERM, ctypes.byref(Action()), None) == 0  # SIG_DFL, as Ray's core worker
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)

def second(signum, frame):
    raise StopNow

signal.signal(signal.SIGTERM, second)
try:
    armed(shutdown) if sys.argv[1] == "armed" else shutdown()
except StopNow:
    print("stopped at once", flush=True)
print("handler kept" if signal.getsignal(signal.SIGTERM) is second else "handler lost", flush=True)
"""


@pytest.mark.parametrize("case, status, printed", [("armed", 0, ["stopped at once", "handler kept"]), ("bare", -15, [])])
def test_a_second_sigterm_while_ray_shuts_down_reaches_the_handler(case, status, printed):
    done = subprocess.run([sys.executable, "-c", SHUTDOWN_RESETS_SIGTERM, case], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.splitlines()) == (status, printed), done.stderr[-2000:]


def test_a_second_signal_landing_in_a_finalizer_still_ends_the_command(handlers, capsys):
    # the garbage collector runs weakref callbacks between any two bytecodes, Ray's shutdown too:
    # a StopNow raised in one cannot leave it, and Python would only print it and carry on
    def callback(_):
        os.kill(os.getpid(), signal.SIGTERM)  # the second signal, while the callback runs
        time.sleep(0.5)

    class Held:
        pass

    with StopSignals() as stops:
        with pytest.raises(StopNow):  # the first one, after Tune: at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        held = Held()
        watch = weakref.ref(held, callback)
        with pytest.raises(StopNow):
            del held
            time.sleep(1)
    assert watch() is None and "Exception ignored" not in capsys.readouterr().err
    assert stops.received == signal.SIGTERM


LATE_STOP = """
import os, signal, sys, time
from sweep.tuning.signals import StopNow, StopSignals, as_command
import contextlib
with as_command() if sys.argv[1] == "command" else contextlib.nullcontext():
    with StopSignals() as stops:
        try:
            os.kill(os.getpid(), signal.SIGHUP)  # the sweep stopped by a first signal
            time.sleep(5)
        except StopNow:
            pass
print("given back", flush=True)
os.kill(os.getpid(), signal.SIGTERM)  # a second one in the command's last lines
time.sleep(5)
print("carried on", flush=True)
"""


@pytest.mark.parametrize("role, status", [("command", 129), ("in-process", -signal.SIGTERM)])
def test_after_a_stopped_sweep_the_command_ends_with_the_first_signals_status(role, status):
    # the command keeps a stop's meaning to its end (SIGHUP's status, 129); an in-process caller
    # gets the handlers it had, here the default: killed by the SIGTERM
    done = subprocess.run([sys.executable, "-c", LATE_STOP, role], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (status, "given back\n"), done.stderr


def test_an_ignored_signal_stays_ignored(handlers):
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_the_exit_status_and_the_hint_name_the_signal_and_the_folder(tmp_path, capsys):
    stopped = {"name": "stop-me", "interrupted": True, "storage": tmp_path / "elsewhere", "requested": False}
    for signum, status in EXIT_STATUS.items():
        assert _finish(SimpleNamespace(**stopped, at_once=False, signal=signum)) == status
        assert capsys.readouterr().out == f"Interrupted; finished trials are kept. {HINT} --storage {tmp_path / 'elsewhere'}\n"
    assert _finish(SimpleNamespace(**stopped, at_once=True, signal=signal.SIGTERM)) == 143
    out = capsys.readouterr().out
    assert f"{HINT} --storage {tmp_path / 'elsewhere'}" in out and "sweep sync stop-me --storage" in out
    asked = {**stopped, "requested": True}  # `sweep stop`: SIGTERM's status, and said so
    assert _finish(SimpleNamespace(**asked, at_once=False, signal=signal.SIGTERM)) == 143
    assert capsys.readouterr().out.startswith("Stopped by `sweep stop`; finished trials are kept.")


# -- the command, as a scheduler stops it -------------------------------------------------------


def sweep(*args):
    return [sys.executable, "-m", "sweep.cli", *args]


def journal_epochs(folder: Path) -> int:
    path = folder / JOURNAL
    if not path.exists():
        return 0
    lines = path.read_bytes().split(b"\n")[:-1]  # whole lines only
    return sum(json.loads(line)["kind"] == "epoch" for line in lines)


class Driver:
    """`sweep run` in a session of its own (a scheduler's job), its output in files."""

    def __init__(self, tmp_path: Path, spec: str):
        (tmp_path / "spec.yaml").write_text(spec)
        self.tmp_path, self.folder = tmp_path, tmp_path / "sweeps" / "stop-me"
        self.out, self.err = tmp_path / "run.out", tmp_path / "run.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(sweep("run", "spec.yaml"), cwd=tmp_path, stdout=out, stderr=err, start_new_session=True)

    def wait_for(self, ready, what: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.proc.poll() is None, f"the sweep ended before {what}: {self.output()}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s: {self.output()}"
            time.sleep(0.1)

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)  # the driver only, as `kill PID` or systemd's KillMode=mixed

    def wait(self, timeout: float = 180) -> float:
        started = time.monotonic()
        self.proc.wait(timeout=timeout)
        return time.monotonic() - started

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def group(self) -> list[int]:
        """Processes left in the driver's process group (its local Ray's GCS and raylet live there)."""
        return processes_in([self.proc.pid])

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a last resort: what the driver did not stop

    def check_clean_stop(self, signum: int) -> None:
        assert self.proc.returncode == EXIT_STATUS[signum], self.output()
        err = self.err.read_text()
        # The command's own output: Ray forwards its workers' lines with a "(name pid=N)" prefix,
        # and an idle trial actor that Ray's shutdown terminates may print Ray's own SystemExit
        # from its SIGTERM handler (seen once when a second signal cut the shutdown short).
        own = "\n".join(line for line in err.splitlines() if not RAY_WORKER_LINE.match(line))
        assert not [dump for dump in DUMPS if dump in own], err
        deadline = time.monotonic() + 30
        while self.group() and time.monotonic() < deadline:  # Ray's processes exit as they notice
            time.sleep(0.5)
        assert self.group() == [], "the local Ray outlived the command"


def resume_and_count(tmp_path: Path, uri: str) -> None:
    """`sweep resume` to the end; every trial's run holds each epoch exactly once."""
    resumed = subprocess.run(sweep("resume", "stop-me"), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("stop-me")
    runs = [r for r in client.search_runs([experiment.experiment_id]) if "ray.trial_id" in r.data.tags]
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "test_acc")) == list(range(1, EPOCHS + 1))
    assert logged_epochs(client, runs, EPOCHS, "test_acc") == (4 * EPOCHS, 0, 0)  # (logged, lost, doubled)


@pytest.mark.parametrize(
    "signals, second_when",
    [
        ([signal.SIGTERM], None),
        ([signal.SIGHUP], None),
        ([signal.SIGTERM, signal.SIGTERM], None),
        ([signal.SIGTERM, signal.SIGTERM], "status stop-me: stopped"),
    ],
    ids=["sigterm", "sighup", "sigterm-twice", "sigterm-while-ray-shuts-down"],
)
def test_a_stop_signal_stops_the_sweep_cleanly_and_one_cut_short_resumes(tmp_path, signals, second_when):
    driver = Driver(tmp_path, SPEC)
    try:
        driver.wait_for(lambda: journal_epochs(driver.folder) >= 1, "finished epoch")
        for signum in signals:
            driver.signal(signum)
            if second_when:  # the sweep has ended; its local Ray takes seconds to shut down
                driver.wait_for(lambda: second_when in driver.out.read_text(), repr(second_when))
            else:
                time.sleep(0.1)  # the second one lands while Tune stops its trials and saves its state
        took = driver.wait()
        driver.check_clean_stop(signals[0])
    finally:
        driver.cleanup()
    out = driver.out.read_text()
    if len(signals) == 1:
        assert f"Interrupted; finished trials are kept. {HINT}\n" in out
    else:  # unless Tune had already stopped when the second one came
        assert "Stopped at once; the journal keeps the rest." in out or "Interrupted;" in out
        assert took < 30, out
    # A resume after one stop signal is Ctrl-C's, the same path (tests/test_sweep_resume.py); after
    # a second one, Tune's last save was cut short: that sweep must resume as well
    if len(signals) == 2 and not second_when:
        resume_and_count(tmp_path, f"sqlite:///{tmp_path}/mlflow.db")


def test_a_second_signal_ends_the_wait_for_a_gone_mlflow_and_resume_sends_the_rest(tmp_path):
    (tmp_path / "server").mkdir()
    server = MlflowServer(tmp_path / "server").start()
    driver = Driver(tmp_path, SPEC + f"tracking: {{mlflow_uri: '{server.uri}'}}\n")
    try:
        driver.wait_for(lambda: journal_epochs(driver.folder) >= 1, "finished epoch")
        server.stop()  # MLflow goes away: the end of the sweep would wait a minute for it
        seen = journal_epochs(driver.folder)
        driver.wait_for(lambda: journal_epochs(driver.folder) > seen, "epoch after the server went")
        driver.signal(signal.SIGTERM)
        driver.wait_for(lambda: "Waiting for MLflow" in driver.out.read_text(), "wait for MLflow")
        driver.signal(signal.SIGTERM)
        took = driver.wait(timeout=60)
        driver.check_clean_stop(signal.SIGTERM)
    finally:
        driver.cleanup()
        server.stop()
    out = driver.out.read_text()
    assert f"Stopped at once; the journal keeps the rest. {HINT} (or sweep sync stop-me, for MLflow only)" in out
    assert took < 20, out
    server.start()  # same port and store: the resumed sweep applies what the journal kept
    try:
        resume_and_count(tmp_path, server.uri)
    finally:
        server.stop()
