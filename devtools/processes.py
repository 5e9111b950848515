"""Processes of a local stack: each in a session (process group) of its own, so that
stopping one stops everything it started; and `Stack`, the Procfile's lines run by
role, each logging to <run_dir>/<role>.log, all stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from devtools.localenv import free_port
from devtools.procfile import ROOT, LocalProcfile
from devtools.waiting import wait_port

# application_name of the PostgreSQL backends serving a role's process: `tally-<role>`.
APP_PREFIX = "tally-"
TALLY_APP = "'service.app:create_app()'"


def spawn(
    argv: list[str], env: Mapping[str, str], output: IO[bytes] | int
) -> subprocess.Popen[bytes]:
    """`argv` in a session of its own, run from the checkout, its output to `output`."""
    return subprocess.Popen(  # noqa: S603 -- a Procfile line or this Python, never user input
        argv, cwd=ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=output,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM to the process's group (as a platform stopping a container does), then
    SIGKILL to what is left after `grace` seconds."""
    signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait(10)


def service_env(database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    """This machine's environment without Tally's own settings, plus the servers, test
    mode's `settings` (TALLY_API_KEYS=...) and private webhook URLs allowed."""
    drop = ("TALLY_", "STRIPE_", "DATABASE_URL", "REDIS_URL", "PORT", "PROCFILE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TALLY_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(settings)
    return env


class Stack:
    """Procfile processes by role, so that all of them are stopped at the end. A role
    is a Procfile line, or one with edits ("reference" runs the web line serving
    another app): `replace` maps each text of the line to its replacement."""

    def __init__(self, env: dict[str, str], run_dir: Path) -> None:
        self.procfile = LocalProcfile(run_dir)
        self.env = self.procfile.env(env)
        self.run_dir = run_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, role: str, process: str, *, replace: dict[str, str] | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
        line = self.procfile.lines[process]
        for old, new in (replace or {}).items():
            if old not in line:
                raise ValueError(f"Procfile {process!r} line has no {old!r}: {line}")
            line = line.replace(old, new)
        if line != self.procfile.lines.get(role):
            self.procfile.add(role, line)
        with (self.run_dir / f"{role}.log").open("ab") as log:
            # PGAPPNAME (libpq): PostgreSQL's backends say which process they serve.
            env = {**self.env, "PGAPPNAME": f"{APP_PREFIX}{role}", **(env or {})}
            self.procs[role] = spawn(self.procfile.argv(role), env, log)
        return self.procs[role]

    def start_web(self, role: str, app: str = TALLY_APP) -> str:
        """The web line serving `app` under `role` on a free port; its base URL."""
        port = free_port()
        self.start(role, "web", replace={TALLY_APP: app}, env={"PORT": str(port)})
        wait_port(port)
        return f"http://127.0.0.1:{port}"

    def stop(self, role: str) -> None:
        proc = self.procs.pop(role, None)
        if proc is not None:
            stop(proc, grace=20)

    def stop_all(self) -> None:
        for role in list(self.procs):
            self.stop(role)
