"""Stop signals of the sweep driver: Ctrl-C (SIGINT), SIGTERM (kill, systemd, docker stop, batch
schedulers) and SIGHUP (a hang-up, `kill -HUP`) all stop a sweep the same clean way.

Left alone, only SIGINT would: Ray Tune stops its run gracefully on SIGINT or SIGUSR1 (running
trials stopped, its state saved), but Ray's core worker installs a native failure handler for
SIGTERM in the driver that prints a stack dump and aborts (exit 134), and SIGHUP kills the driver
on the spot. Around Tuner.fit and the end of the sweep this module takes all three itself: the
first one is recorded and handed to Tune's own stop (SIGUSR1), a second one raises StopNow, which
ends the command without waiting for Tune or MLflow. The journal is fsync'd per event, so what the
trials reported is kept either way (docs/platform.md, Ray Tune).

`sweep stop NAME` asks the same from another terminal or machine: it writes a stop request
(defaults.STOP_FILE) into the sweep's folder, which the helper thread polls for; the driver then
stops exactly as for a first SIGTERM, and exits with SIGTERM's status, 143.

In the `sweep` command (as_command) a stopped sweep keeps a stop signal's meaning to the end of
the process: the handlers that would come back after the sweep are Ray's (a `sys.exit` with the
signal's number) or, once Ray has shut down, the default, and a second SIGTERM in the command's
last lines would end it with neither the first one's status nor its last lines. ray.shutdown()
also resets SIGTERM under Python's handler, part way into its shutdown (armed, sigterm_again;
docs/platform.md, Ray Tune).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# What the command exits with after each stop signal: 128 + its number, as a shell reports a
# process the signal killed, so scripts and schedulers read the cause the usual way.
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
# Tune's own SIGINT handler stays off while this module's handlers are in place: one handler counts
# the first and the second stop signal, whichever they are.
TUNE_SIGINT_ENV = "TUNE_DISABLE_SIGINT_HANDLER"
POLL_S = 1.0  # how often the helper looks for a stop request: one stat a second
RESEND_S = 0.05  # a stop lost in a finalizer is sent again this much later (StopSignals._stop_in_finalizer)
ARM_S = 0.002  # while Ray shuts down, SIGTERM's handler is set again this often (armed)
_command = False  # within as_command(): the sweep is this process's whole job


class StopNow(BaseException):
    """A second stop signal, or one after Tune has finished: end the command now. Not an Exception,
    so that no `except Exception` in Tune or Ray takes it for a trial's error."""


def exit_status(signum: int | None) -> int:
    """The exit status of a sweep stopped by `signum`; 130 (Ctrl-C's) when no signal was seen."""
    return EXIT_STATUS.get(signum, EXIT_STATUS[signal.SIGINT])


@contextlib.contextmanager
def as_command() -> Iterator[None]:
    """The block is the `sweep` command, which ends with its sweep: once a stop signal has stopped
    a sweep, a further one after StopSignals has ended exits at once with the first one's status,
    to the end of the process, instead of the handlers that were there (in-process callers, the
    Python API and the tests' calls of the command's `main`, get theirs back)."""
    global _command
    _command = True
    try:
        yield
    finally:
        _command = False


def sigterm_again(rays_own=None) -> None:
    """Call after ray.shutdown(): it puts SIGTERM's action back, at the OS level, to what it was
    before ray.init (by default: the process is killed), while Python still reports the handler
    it had, and a SIGTERM then kills the command under it (seen: a second signal once a stopped
    sweep's Ray had shut down). Set that handler again; where it is Ray's own (`rays_own`, the
    handler ray.init left), the default, which is what the OS now has."""
    if threading.current_thread() is not threading.main_thread():
        return
    handler = signal.getsignal(signal.SIGTERM)
    if handler is not None:  # None: not set from Python, which Python cannot set again
        signal.signal(signal.SIGTERM, signal.SIG_DFL if handler is rays_own else handler)


def armed(shutdown: Callable[[], None]) -> None:
    """Call `shutdown` (ray.shutdown) with SIGTERM's handler kept in place throughout. Ray's core
    worker sets SIGTERM's action back to the default at the OS level part way into its shutdown,
    a second or more before the shutdown returns, while Python still reports its handler: a
    second signal then killed the command instead of ending it at once with the first one's
    status (docs/platform.md, Ray Tune). The shutdown runs in a helper thread while this, the main
    thread, sets the handler again every ARM_S, so a second signal raises StopNow here as
    anywhere else; the helper is waited for either way, so no second shutdown runs beside it."""
    handler = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or handler is None:
        shutdown()  # no handler to keep: Python sets none outside the main thread, nor sets back a native one
        return
    done = threading.Event()

    def run() -> None:
        try:
            shutdown()
        finally:
            done.set()

    helper = threading.Thread(target=run, name="ray shutdown", daemon=True)
    helper.start()
    try:
        while not done.wait(ARM_S):
            signal.signal(signal.SIGTERM, handler)
    finally:
        helper.join()
        signal.signal(signal.SIGTERM, handler)


def _exit_now(status: int):
    def handler(signum: int, frame) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)  # at once, as a second signal during the sweep: nothing is left to save

    return handler


class StopSignals:
    """`with StopSignals() as stops: stops.fit(tuner) ...`: SIGINT, SIGTERM and SIGHUP stop the
    Tuner as Ctrl-C does, and the handlers that were there come back on the way out (run_sweep is
    also called in-process, by the Python API and the tests). Outside the main thread, where
    Python allows no handler, it changes nothing and Tune installs none either."""

    def __init__(self, stop_file: Path | None = None) -> None:
        self.received: signal.Signals | None = None  # the first stop signal
        self.requested = False  # the stop came from `sweep stop` (a request in stop_file)
        self._stop_file = stop_file
        self._saved: dict[int, object] = {}
        self._fitting = threading.Event()
        self._stop_requested = threading.Event()  # set by the first signal, read by the helper thread
        self._unraisable = None  # the hook this object's stands in front of, while in place
        self._again: threading.Timer | None = None  # a stop being sent again (_stop_in_finalizer)

    def __enter__(self) -> StopSignals:
        # After ray.init: the core worker's native SIGTERM handler, installed when the driver
        # connects, gives way to a Python one installed later.
        if threading.current_thread() is threading.main_thread():
            self._saved = {signum: signal.getsignal(signum) for signum in (*EXIT_STATUS, signal.SIGUSR1)}
            for signum in EXIT_STATUS:
                # an ignored signal stays ignored: `nohup sweep run`, a background job's Ctrl-C
                if self._saved[signum] is not signal.SIG_IGN:
                    signal.signal(signum, self._handle)
            self._unraisable, sys.unraisablehook = sys.unraisablehook, self._stop_in_finalizer
        return self

    def __exit__(self, *exc) -> None:
        if self._again is not None:
            self._again.cancel()  # not after the handlers are gone: the default would kill the command
        stopped = _exit_now(exit_status(self.received)) if _command and self.received is not None else None
        for signum, handler in self._saved.items():
            if stopped and signum in EXIT_STATUS and handler is not signal.SIG_IGN:
                handler = stopped
            # None: a handler not set from Python, which Python cannot set back
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._saved = {}
        if self._unraisable is not None:
            sys.unraisablehook, self._unraisable = self._unraisable, None

    def fit(self, tuner):
        """tuner.fit() with this object in charge of SIGINT; Tune still handles SIGUSR1 itself."""
        if not self._saved:
            return tuner.fit()
        users = os.environ.get(TUNE_SIGINT_ENV)
        os.environ[TUNE_SIGINT_ENV] = "1"
        self._fitting.set()
        # The helper that hands the first signal to Tune starts here, not in the handler: a second
        # signal landing while the handler started a thread re-entered it inside Thread.start.
        helper = threading.Thread(target=self._stop_tune, name="stop signal", daemon=True)
        helper.start()
        try:
            return tuner.fit()
        except SystemError as error:
            # A second signal's StopNow raised while Ray's core worker waits (ray.wait checks for
            # signals from C) comes back as a SystemError caused by it.
            if isinstance(error.__cause__, StopNow):
                raise error.__cause__ from None
            raise
        finally:
            self._fitting.clear()
            self._stop_requested.set()  # lets the helper end when no signal came
            if users is None:
                os.environ.pop(TUNE_SIGINT_ENV, None)
            else:
                os.environ[TUNE_SIGINT_ENV] = users
            helper.join()  # before __exit__ takes back SIGUSR1, which Tune leaves set

    def _handle(self, signum: int, frame) -> None:
        # Only flag and event here: a handler runs between any two bytecodes of the main thread,
        # and a second signal can run it again before it returns.
        if self.received is not None or not self._fitting.is_set():
            self.received = self.received or signal.Signals(signum)
            raise StopNow
        self.received = signal.Signals(signum)
        self._stop_requested.set()

    def _stop_in_finalizer(self, unraisable) -> None:
        """A StopNow raised while the main thread ran a finalizer or a weakref callback (the
        garbage collector runs them between any two bytecodes) cannot leave it: Python would
        print it as "Exception ignored" and carry on. The signal is sent again instead, from a
        thread a moment later (sent from here, its handler would run in this hook, as stuck), and
        lands in the code the finalizer interrupted."""
        if isinstance(unraisable.exc_value, StopNow) and self.received is not None:
            self._again = threading.Timer(RESEND_S, os.kill, (os.getpid(), self.received))
            self._again.daemon = True
            self._again.start()
            return
        self._unraisable(unraisable)

    def _stop_tune(self) -> None:
        """Once a stop signal came, send Tune its stop signal as soon as its handler is in place:
        Tune installs it as its loop starts, so a signal during its setup waits for it (or for fit
        to end). A stop request in the sweep's folder counts as a SIGTERM."""
        while not self._stop_requested.wait(POLL_S if self._stop_file else None):
            if self._stop_file.exists():
                self.requested, self.received = True, self.received or signal.SIGTERM
                break
        while self._fitting.is_set():
            if signal.getsignal(signal.SIGUSR1) is not self._saved[signal.SIGUSR1]:
                os.kill(os.getpid(), signal.SIGUSR1)
                return
            time.sleep(0.05)
