"""Real servers for the tests and benchmarks, on free loopback ports: `mlflow server` in the
embedded (SQLite) or the cluster (basic-auth, PostgreSQL) shape, and a wait for any HTTP server."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MLFLOW = str(Path(sys.executable).parent / "mlflow")


def free_port() -> int:
    """A TCP port nothing on 127.0.0.1 listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Until `url` answers 200; fails with the server's log if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, http.client.HTTPException):  # not up yet, or another program's port (below)
            pass
        if process.poll() is not None:
            break
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer: {log.read_text()[-2000:] if log.exists() else 'no log'}")


class MlflowServer:
    """`mlflow server` with its store and artifacts under `root`, on one port for its whole life:
    stopped (killed, as a crash would) and started again on the same port and store. `{port}` in
    an argument is the port it listens on."""

    def __init__(self, root: Path, backend: str | None = None, args: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.root, self.port = Path(root), free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.backend = backend or f"sqlite:///{self.root}/mlflow.db"
        self.args, self.env = args, env or {}
        self.process: subprocess.Popen | None = None
        self.started = False  # once it has run, its port is its own: a restart keeps it

    def start(self) -> MlflowServer:
        """Start the server; its first start moves to another free port when the one chosen was
        taken in the meantime (another test's Ray or server, between free_port and the bind)."""
        assert self.process is None, "already running"
        for _ in range(3 if not self.started else 1):
            log = self.root / "server.log"
            before = log.stat().st_size if log.exists() else 0
            try:
                self._run(log)
                self.started = True
                return self
            except RuntimeError:
                said = log.read_bytes()[before:].lower() if log.exists() else b""
                if self.started or b"address already in use" not in said:
                    raise
                self.process = None
                self.port = free_port()
                self.uri = f"http://127.0.0.1:{self.port}"
        raise RuntimeError(f"no free port for mlflow server after 3 tries: {log.read_text()[-2000:]}")

    def _run(self, log: Path) -> None:
        command = [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        command += ["--backend-store-uri", self.backend, *(arg.replace("{port}", str(self.port)) for arg in self.args)]
        if "--artifacts-destination" not in self.args:
            command += ["--default-artifact-root", str(self.root / "artifacts")]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **self.env}
        with open(log, "ab") as out:  # the child keeps its own handle
            self.process = subprocess.Popen(command, stdout=out, stderr=out, env=env, start_new_session=True)
        wait_for_http(f"{self.uri}/health", self.process, log)

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)  # the whole group: uvicorn's worker too
            self.process.wait(timeout=30)
        self.process = None
