"""One `celery -A workers worker -B` consuming every queue (inbound, events,
deliveries) with an embedded beat: the whole pipeline in one process group, which a
test may SIGKILL, stop and start again. The Procfile splits the same work over the
worker, deliveries and beat lines (devtools.processes.Stack runs those).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from devtools.processes import signal_group, spawn, stop
from devtools.waiting import wait_for


class WorkerProcess:
    """The worker with Celery's pool `pool`, its log (every run) in `log_path`."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, pool: str = "prefork"):
        self.env = env
        self.concurrency = concurrency
        self.pool = pool
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="tally-worker-"))
        self.log_path = self.dir / "worker.log"
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n==== run {self.runs} ====\n".encode())
            log.flush()
            self._offset = self.log_path.stat().st_size
            self.proc = spawn(
                [sys.executable, "-m", "celery", "-A", "workers", "worker", "-B",
                 "--schedule", str(self.dir / "beat-schedule"), "--pool", self.pool,
                 "--concurrency", str(self.concurrency), "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-n", f"tally-test-{os.getpid()}-{self.runs}@%h"],
                self.env, log,
            )  # fmt: skip
        wait_for(self._ready, 30, "the celery worker to be ready")

    def _ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"celery worker exited early:\n{self.log()}")
        with self.log_path.open("rb") as f:
            f.seek(self._offset)
            return b" ready." in f.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker: main process, pool children and beat."""
        if self.proc is not None:
            signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self, *, group: bool = True) -> None:
        """SIGTERM to the whole process group (as a platform stopping a container does:
        prefork children then die at once and their tasks are redelivered), or with
        group=False to the main process only: Celery's warm shutdown, which lets the
        pool finish the tasks in hand."""
        if self.proc is None:
            return
        if group:
            stop(self.proc)
        else:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def ensure_running(self) -> None:
        if not self.running:
            self.start()
